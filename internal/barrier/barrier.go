// Package barrier is the barrier recipe: participants join a named barrier
// with a threshold N and wait until N have arrived; then all are released.
// Waiters watch the barrier's children, and the participant that completes
// the count creates its ready znode: that one node wakes every waiter, with
// no polling, and no watch outlives the barrier.
package barrier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Errors returned by Barriers.
var (
	// ErrThresholdMismatch: the barrier is in use with another threshold.
	ErrThresholdMismatch = errors.New("barrier: in use with a different threshold")
	// ErrParticipantExists: the participant id is held by another lease.
	ErrParticipantExists = errors.New("barrier: participant id held by another lease")
	// ErrNotParticipant: no such participant.
	ErrNotParticipant = errors.New("barrier: no such participant")
	// ErrNotOwner: the participant belongs to another lease.
	ErrNotOwner = errors.New("barrier: participant owned by another lease")
	// ErrConflict: the barrier kept changing while joining; try again.
	ErrConflict = errors.New("barrier: kept changing while joining, try again")
	// ErrClosed: the Barriers is closed (the gateway is stopping).
	ErrClosed = errors.New("barrier: closed")
)

// RefKind is the kind of lease refs that name participants.
const RefKind = "participant"

// Barriers joins, waits on and leaves barriers.
type Barriers struct {
	sess    *zkx.Session
	lay     Layout
	leases  *lease.Manager
	log     *slog.Logger
	waiting waitCount // Awaits waiting (Stats)

	// ctx ends when Barriers closes: it bounds the leaves of participants
	// that gave up, which go on in the background.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	leaving map[string]chan struct{} // participant path → closed once its leave in the background is over
	feeds   map[feedKey]*feed        // what a barrier's Polls, and its Awaits, follow (poll.go)
}

// New returns Barriers under root, zkcoord's namespace (chroot included),
// and registers the participant release handler; or the error of a root
// it cannot work with. Close stops what goes on in the background.
func New(sess *zkx.Session, root string, leases *lease.Manager, log *slog.Logger) (*Barriers, error) {
	if err := zkx.CheckPath(root); err != nil {
		return nil, fmt.Errorf("barrier: root: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Barriers{sess: sess, lay: Layout{Root: root}, leases: leases, log: log, ctx: ctx, cancel: cancel, leaving: map[string]chan struct{}{},
		feeds: map[feedKey]*feed{}}
	leases.Handle(RefKind, b.releaseOps)
	return b, nil
}

// Close stops the leaves of participants that gave up that are still
// going on (ZooKeeper slow or unreachable), and the watches of Polls
// (ending them with ErrClosed), and waits for them to end. A participant
// they did not remove goes when its lease ends.
func (b *Barriers) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
}

// Progress reports arrivals: arrived of threshold, and whether the barrier
// has released. Returning an error ends Await with it.
type Progress func(arrived int, released bool) error

// Await joins barrier name as participant (owned by leaseID) and waits until
// threshold participants have arrived, reporting each change of the count to
// progress. It returns nil once released. Cancelling ctx before the release
// gives up: ctx's error is returned at once, and the participant's znode is
// removed (and the barrier's, when no one else waits) in the background,
// as soon as ZooKeeper allows (a later Await of the same participant on
// this Barriers waits for that). When the participant is removed while it
// waits (its lease ended), Await removes the barrier if nobody else is in
// it and returns lease.ErrNotFound.
//
// The Awaits of a barrier on this gateway share one ZooKeeper watch (await.go):
// a child watch on the barrier's znode, which every arrival and departure
// fires, and so does the creation of ready, so that one node wakes every
// waiter. The barrier's znode exists while anyone is in the barrier, and
// each way a participant goes (it leaves, its lease ends, the last one
// removes the barrier) changes its children, so the watch left behind when
// the last Await returns fires and no watch outlives the barrier.
// (go-zookeeper cannot remove a watch: a watch on a node that is never
// created would stay until the session ends.)
func (b *Barriers) Await(ctx context.Context, name string, threshold int, participant, leaseID string, progress Progress) error {
	defer b.counted()()
	if err := b.left(ctx, name, participant); err != nil {
		return err
	}
	released, err := b.join(ctx, name, threshold, participant, leaseID)
	if err != nil {
		if ctx.Err() != nil { // the participant may have been created, or may yet be
			return b.giveUp(ctx, name, participant, leaseID)
		}
		return err
	}
	if released {
		return progress(threshold, true)
	}
	return b.wait(ctx, name, threshold, participant, leaseID, progress)
}

// join creates the barrier (or checks its threshold) and creates the
// participant znode. released reports that the barrier had released before
// this participant joined.
func (b *Barriers) join(ctx context.Context, name string, threshold int, participant, leaseID string) (released bool, err error) {
	c := b.sess
	dir := b.lay.Barrier(name)
	if err := c.EnsurePath(ctx, b.lay.Barrier("")); err != nil {
		return false, err
	}
	key := lease.KeyOf(leaseID)
	for attempt := 0; attempt < 8; attempt++ {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		want := []byte(strconv.Itoa(threshold))
		_, err := c.Create(ctx, dir, want, 0)
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return false, fmt.Errorf("barrier: create %s: %w", name, err)
		}
		data, stat, err := c.Get(ctx, dir)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		} else if err != nil {
			return false, err
		}
		kids, _, err := c.Children(ctx, dir)
		if err != nil {
			continue
		}
		n, ready := count(kids)
		ver := stat.Version
		if n == 0 {
			// Nobody is in the barrier: reset what a past round left.
			if ready {
				if err := c.Delete(ctx, b.lay.Ready(name), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
					continue
				}
				ready = false
			}
			if string(data) != string(want) {
				st, err := c.Set(ctx, dir, want, stat.Version)
				if err != nil {
					continue
				}
				ver = st.Version
			}
		} else if string(data) != string(want) {
			return false, fmt.Errorf("%w: %s has threshold %s", ErrThresholdMismatch, name, data)
		}
		// Join only if the threshold is still the one checked: two joiners of
		// an empty barrier with different thresholds cannot both get in.
		_, err = b.leases.Attach(ctx, leaseID, lease.Ref(RefKind, name, participant),
			&zk.CheckVersionRequest{Path: dir, Version: ver},
			&zk.CreateRequest{Path: b.lay.Participant(name, participant), Data: []byte(key), Acl: b.sess.ACL()})
		switch {
		case errors.Is(err, zk.ErrNoNode), errors.Is(err, zk.ErrBadVersion):
			continue // removed by its last leaver, or re-thresholded: start over
		case errors.Is(err, zk.ErrNodeExists):
			owner, _, gerr := c.Get(ctx, b.lay.Participant(name, participant))
			if zkx.Unknown(gerr) {
				return false, gerr
			}
			if gerr != nil || string(owner) != key {
				return false, fmt.Errorf("%w: %s/%s", ErrParticipantExists, name, participant)
			}
		case err != nil:
			return false, err
		}
		return ready, nil
	}
	return false, fmt.Errorf("%w: %s", ErrConflict, name)
}

// giveUp returns ctx's error at once for a participant that stopped
// waiting before the release, and removes it in a goroutine b owns: the
// Leave goes on, retried while ZooKeeper is unreachable, until it is done
// or b closes. It runs with ctx's values (the caller, whom the lease
// manager authorizes).
func (b *Barriers) giveUp(ctx context.Context, name, participant, leaseID string) error {
	p := b.lay.Participant(name, participant)
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.leaving[p]; ok || b.closed {
		return ctx.Err() // already leaving; or closed: it goes with its lease
	}
	done := make(chan struct{})
	b.leaving[p] = done
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(b.ctx, cancel)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() {
			stop()
			cancel()
			b.mu.Lock()
			delete(b.leaving, p)
			b.mu.Unlock()
			close(done)
		}()
		err := zkx.Retry(bg, func() error {
			_, err := b.Leave(bg, name, participant, leaseID)
			return err
		})
		switch {
		case err == nil:
		case errors.Is(err, ErrNotParticipant), errors.Is(err, lease.ErrNotFound):
			// Gone already, or going with its lease: remove the barrier
			// if nobody else is in it.
			b.cleanup(bg, name)
		case bg.Err() == nil:
			b.log.Warn("barrier: leave after giving up failed", "barrier", name, "participant", participant, "err", err)
		}
	}()
	return ctx.Err()
}

// left waits until a leave of the participant that gave up earlier, still
// going on in the background, is over, or ctx ends: a new Await of it
// joins after that leave, not before it.
func (b *Barriers) left(ctx context.Context, name, participant string) error {
	b.mu.Lock()
	done := b.leaving[b.lay.Participant(name, participant)]
	b.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Leave removes the participant; when it was the last one, the barrier's
// znodes are removed too, so the name can be used again. wasReleased says
// whether the barrier had released. When ctx ends first, it returns ctx's
// error at once, and if the delete was sent it may still take effect
// (repeat the Leave: ErrNotParticipant once it is gone).
func (b *Barriers) Leave(ctx context.Context, name, participant, leaseID string) (bool, error) {
	c := b.sess
	p := b.lay.Participant(name, participant)
	owner, stat, err := c.Get(ctx, p)
	if errors.Is(err, zk.ErrNoNode) {
		return false, fmt.Errorf("%w: %s/%s", ErrNotParticipant, name, participant)
	} else if err != nil {
		return false, err
	}
	if string(owner) != lease.KeyOf(leaseID) {
		return false, fmt.Errorf("%w: %s/%s", ErrNotOwner, name, participant)
	}
	released, _, err := c.Exists(ctx, b.lay.Ready(name))
	if err != nil {
		return false, err
	}
	_, err = b.leases.Detach(ctx, leaseID, lease.Ref(RefKind, name, participant),
		&zk.DeleteRequest{Path: p, Version: stat.Version})
	if errors.Is(err, zk.ErrNoNode) { // left meanwhile (a concurrent Leave, or its lease ended)
		return false, fmt.Errorf("%w: %s/%s", ErrNotParticipant, name, participant)
	} else if err != nil {
		return false, err
	}
	b.cleanup(ctx, name)
	return released, nil
}

// cleanup removes the barrier when no participant is left in it, unless
// ctx ends first.
func (b *Barriers) cleanup(ctx context.Context, name string) {
	c := b.sess
	kids, _, err := c.Children(ctx, b.lay.Barrier(name))
	if err != nil {
		return
	}
	n, ready := count(kids)
	if n > 0 {
		return
	}
	ops := []any{}
	if ready {
		ops = append(ops, &zk.DeleteRequest{Path: b.lay.Ready(name), Version: -1})
	}
	ops = append(ops, &zk.DeleteRequest{Path: b.lay.Barrier(name), Version: -1})
	_, _ = c.Multi(ctx, ops...) // NotEmpty: someone joined meanwhile; they own it now
}

// releaseOps removes a participant when its lease ends (lease.ReleaseFunc).
func (b *Barriers) releaseOps(ctx context.Context, leaseKey string, parts []string) ([]any, error) {
	if len(parts) != 2 {
		return nil, nil
	}
	p := b.lay.Participant(parts[0], parts[1])
	owner, stat, err := b.sess.Get(ctx, p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if string(owner) != leaseKey {
		return nil, nil
	}
	return []any{&zk.DeleteRequest{Path: p, Version: stat.Version}}, nil
}

func count(kids []string) (participants int, ready bool) {
	for _, k := range kids {
		switch {
		case k == "ready":
			ready = true
		case strings.HasPrefix(k, "p-"):
			participants++
		}
	}
	return participants, ready
}
