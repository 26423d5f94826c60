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
	"slices"
	"strconv"
	"strings"
	"time"

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
)

// RefKind is the kind of lease refs that name participants.
const RefKind = "participant"

// Barriers joins, waits on and leaves barriers.
type Barriers struct {
	sess   *zkx.Session
	lay    zkx.Layout
	leases *lease.Manager
	log    *slog.Logger
}

// New returns Barriers and registers the participant release handler.
func New(sess *zkx.Session, lay zkx.Layout, leases *lease.Manager, log *slog.Logger) *Barriers {
	b := &Barriers{sess: sess, lay: lay, leases: leases, log: log}
	leases.Handle(RefKind, b.releaseOps)
	return b
}

// Progress reports arrivals: arrived of threshold, and whether the barrier
// has released. Returning an error ends Await with it.
type Progress func(arrived int, released bool) error

// Await joins barrier name as participant (owned by leaseID) and waits until
// threshold participants have arrived, reporting each change of the count to
// progress. It returns nil once released. Cancelling ctx before the release
// gives up: the participant's znode is removed (and the barrier's, when no
// one else waits), and ctx's error is returned. When the participant is
// removed while it waits (its lease ended), Await removes the barrier if
// nobody else is in it and returns lease.ErrNotFound.
//
// Await's one ZooKeeper watch is a child watch on the barrier's znode:
// every arrival and departure fires it, and so does the creation of ready,
// so that one node wakes every waiter. The barrier's znode exists while
// anyone is in the barrier, and each way a participant goes (it leaves, its
// lease ends, the last one removes the barrier) changes its children, so
// the watch a returning Await leaves behind fires and no watch outlives the
// barrier. (go-zookeeper cannot remove a watch: a watch on a node that is
// never created would stay until the session ends.)
func (b *Barriers) Await(ctx context.Context, name string, threshold int, participant, leaseID string, progress Progress) error {
	released, err := b.join(ctx, name, threshold, participant, leaseID)
	if err != nil {
		return err
	}
	if released {
		return progress(threshold, true)
	}
	c := b.sess.Conn()
	dir := b.lay.Barrier(name)
	removed := fmt.Errorf("%w: participant %s/%s was removed", lease.ErrNotFound, name, participant)
	last, attempt := -1, 0
	for {
		kids, _, childCh, err := c.ChildrenW(dir)
		if errors.Is(err, zk.ErrNoNode) {
			return removed // the barrier went, and this participant with it
		} else if err != nil {
			if !zkx.Transient(err) {
				return fmt.Errorf("barrier: watch arrivals: %w", err)
			}
			if !zkx.Backoff(ctx, attempt) {
				return b.giveUp(ctx, name, participant, leaseID)
			}
			attempt++
			continue
		}
		attempt = 0
		n, ready := count(kids)
		in := slices.Contains(kids, "p-"+participant)
		if !in {
			// Removed under us (the lease ended, or a Leave raced): the
			// watch just set fires only with the next change, so remove
			// the barrier if nobody else is in it.
			b.cleanup(name)
			if !ready {
				return removed
			}
		}
		if n >= threshold && !ready {
			_, err := c.Create(b.lay.Ready(name), nil, 0, b.sess.ACL())
			ready = err == nil || errors.Is(err, zk.ErrNodeExists)
		}
		if ready {
			return progress(max(n, threshold), true)
		}
		if n != last {
			last = n
			if err := progress(n, false); err != nil {
				return err
			}
		}
		select {
		case <-childCh: // a change, or the watch was lost with the session
		case <-ctx.Done():
			return b.giveUp(ctx, name, participant, leaseID)
		}
	}
}

// join creates the barrier (or checks its threshold) and creates the
// participant znode. released reports that the barrier had released before
// this participant joined.
func (b *Barriers) join(ctx context.Context, name string, threshold int, participant, leaseID string) (released bool, err error) {
	c := b.sess.Conn()
	dir := b.lay.Barrier(name)
	if err := zkx.EnsurePath(c, b.lay.Barrier(""), b.sess.ACL()); err != nil {
		return false, err
	}
	key := lease.KeyOf(leaseID)
	for attempt := 0; attempt < 8; attempt++ {
		want := []byte(strconv.Itoa(threshold))
		_, err := c.Create(dir, want, 0, b.sess.ACL())
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return false, fmt.Errorf("barrier: create %s: %w", name, err)
		}
		data, stat, err := c.Get(dir)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		} else if err != nil {
			return false, err
		}
		kids, _, err := c.Children(dir)
		if err != nil {
			continue
		}
		n, ready := count(kids)
		ver := stat.Version
		if n == 0 {
			// Nobody is in the barrier: reset what a past round left.
			if ready {
				if err := c.Delete(b.lay.Ready(name), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
					continue
				}
				ready = false
			}
			if string(data) != string(want) {
				st, err := c.Set(dir, want, stat.Version)
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
			owner, _, gerr := c.Get(b.lay.Participant(name, participant))
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

// giveUp removes a participant that stopped waiting before the release.
func (b *Barriers) giveUp(ctx context.Context, name, participant, leaseID string) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := b.Leave(cctx, name, participant, leaseID); err != nil && !errors.Is(err, ErrNotParticipant) {
		b.log.Warn("barrier: leave after giving up failed", "barrier", name, "participant", participant, "err", err)
	}
	return ctx.Err()
}

// Leave removes the participant; when it was the last one, the barrier's
// znodes are removed too, so the name can be used again. wasReleased says
// whether the barrier had released.
func (b *Barriers) Leave(ctx context.Context, name, participant, leaseID string) (bool, error) {
	c := b.sess.Conn()
	p := b.lay.Participant(name, participant)
	owner, stat, err := c.Get(p)
	if errors.Is(err, zk.ErrNoNode) {
		return false, fmt.Errorf("%w: %s/%s", ErrNotParticipant, name, participant)
	} else if err != nil {
		return false, err
	}
	if string(owner) != lease.KeyOf(leaseID) {
		return false, fmt.Errorf("%w: %s/%s", ErrNotOwner, name, participant)
	}
	released, _, err := c.Exists(b.lay.Ready(name))
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
	b.cleanup(name)
	return released, nil
}

// cleanup removes the barrier when no participant is left in it.
func (b *Barriers) cleanup(name string) {
	c := b.sess.Conn()
	kids, _, err := c.Children(b.lay.Barrier(name))
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
	_, _ = c.Multi(ops...) // NotEmpty: someone joined meanwhile; they own it now
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
