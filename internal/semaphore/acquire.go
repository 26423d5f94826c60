package semaphore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Status is a slot's state, as Acquire reports it. The values match
// zkcoord.v1.AcquireSemaphoreResponse.Status.
type Status int

// The states of a slot.
const (
	// Queued: waiting; Position says how many waiters are ahead.
	Queued Status = iota + 1
	// Held: the slot holds a permit; Token identifies it. Sent again after
	// a Jeopardy when the permit went on.
	Held
	// Jeopardy: the gateway lost ZooKeeper while the slot held a permit;
	// the permit goes on but may end at Deadline.
	Jeopardy
	// Lost: the slot ended without a Release (its lease ended, or its
	// znode was removed). Acquire returns after it.
	Lost
	// Released: Release gave the slot up. Acquire returns after it.
	Released
)

func (s Status) String() string {
	if s < Queued || s > Released {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return [...]string{"queued", "held", "jeopardy", "lost", "released"}[s-1]
}

// Update is a change of a slot's state.
type Update struct {
	Status Status
	// Slot is the slot's znode name, s_<lease key>_<sequence>.
	Slot string
	// Position, when Queued, is the number of waiters ahead: 0 means the
	// next permit freed is this slot's.
	Position int
	// Token is the permit's token (the zxid that created the slot) when
	// Held or Jeopardy, and when Lost or Released if the slot held one.
	Token int64
	// Deadline, when Jeopardy, is when the permit may end.
	Deadline time.Time
	// Permits is the semaphore's N.
	Permits int
}

// holder is one slot followed by an Acquire.
type holder struct {
	s       *Semaphores
	sem     string
	id      string // placeID: its semaphore and its lease's key
	name    string // the slot's znode name
	path    string
	token   int64
	permits int
}

// Acquire queues for a permit of semaphore name, which has permits
// permits (its first acquirer creates it with them; another number is
// ErrPermitsMismatch), with a slot owned by leaseID that publishes value,
// and reports the slot's state to report: Queued (with its position)
// until a permit is free, then Held with the permit's token; Jeopardy and
// Held again while the gateway loses and regains ZooKeeper while it holds.
// It stays running while the slot lives, and returns nil after reporting
// Released (Release gave it up) or Lost (its lease ended, or its znode was
// removed otherwise). An error from report ends Acquire with that error.
//
// A lease has at most one slot per semaphore: if it has one already,
// Acquire resumes it (same place, same token, same value) instead of
// queueing again, so repeating an Acquire whose outcome is unknown never
// takes a second permit.
//
// Cancelling ctx ends Acquire with ctx's error but does not give the slot
// up: it lasts until Release (or Abandon) or the end of its lease. (The
// gRPC server abandons the slot of a client's lease when its stream
// ends, and revokes a stream's own lease.) If ctx ends while Acquire
// creates the slot (ZooKeeper slow), whether it was created is unknown
// (its write may still land): either way it is the lease's, as above.
// Acquire ends with ErrClosed when s is closed.
func (s *Semaphores) Acquire(ctx context.Context, name string, permits int, value, leaseID string, report func(Update) error) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	report, done := s.counted(report)
	defer done()
	err := s.acquire(cctx, name, permits, value, leaseID, report)
	if err != nil && ctx.Err() == nil && s.ctx.Err() != nil {
		return ErrClosed
	}
	return err
}

// acquire is Acquire with a ctx that also ends when s closes.
func (s *Semaphores) acquire(ctx context.Context, name string, permits int, value, leaseID string, report func(Update) error) error {
	if err := s.left(ctx, name, leaseID); err != nil {
		return err
	}
	if err := s.ensure(ctx, name, permits); err != nil {
		return err
	}
	// Follow the slots before creating one, so the first listing that
	// shows it comes as soon as it can.
	f, err := s.feeds.join(name)
	if err != nil {
		return err
	}
	defer s.feeds.leave(f)
	h, err := s.enter(ctx, name, permits, value, leaseID)
	if err != nil {
		return err
	}
	s.log.Debug("semaphore: acquire", "semaphore", name, "slot", h.name, "token", h.token)
	defer s.unhold(h)
	return h.run(ctx, f, report)
}

// enter finds the lease's slot in semaphore name or creates it.
func (s *Semaphores) enter(ctx context.Context, name string, permits int, value, leaseID string) (*holder, error) {
	data, _ := json.Marshal(record{Value: value, AcquiredAt: time.Now().UTC()})
	var backoff zkx.Backoff
	for conflicts := 0; ; {
		h, err := s.enterOnce(ctx, name, permits, leaseID, data, conflicts > 0)
		switch {
		case err == nil:
			return h, nil
		case errors.Is(err, ErrConflict) && conflicts < 5:
			conflicts++
		case !zkx.Transient(err): // a context error too: the outcome of a create is unknown then
			return nil, fmt.Errorf("semaphore: acquire %s: %w", name, err)
		}
		if !backoff.Wait(ctx) {
			return nil, ctx.Err()
		}
	}
}

// enterOnce creates the lease's slot (see createSlot), or resumes the one
// it has: the lease's ref makes the create fail then, and a listing finds
// the slot (a resume costs a failed transaction; a new place, none of the
// reads a listing first would take). dropRef removes a ref that outlived
// its slot (tried after a first conflict).
func (s *Semaphores) enterOnce(ctx context.Context, name string, permits int, leaseID string, data []byte, dropRef bool) (*holder, error) {
	h := &holder{s: s, sem: name, id: placeID(name, lease.KeyOf(leaseID)), permits: permits}
	if !dropRef {
		var err error
		h.name, h.token, err = s.createSlot(ctx, name, permits, leaseID, data, -1, false)
		if err == nil {
			h.path = s.lay.Slot(name, h.name)
			return h, nil
		} else if !errors.Is(err, ErrConflict) {
			return nil, err
		}
	}
	slots, _, err := s.list(ctx, name)
	if errors.Is(err, zk.ErrNoNode) {
		s.forget(name)
		return nil, s.recreate(ctx, name, permits)
	} else if err != nil {
		return nil, err
	}
	if i := find(slots, lease.KeyOf(leaseID)); i >= 0 {
		h.name = slots[i].name
		_, stat, err := s.sess.Get(ctx, s.lay.Slot(name, h.name))
		if errors.Is(err, zk.ErrNoNode) {
			return nil, ErrConflict // ended meanwhile
		} else if err != nil {
			return nil, err
		}
		h.token = stat.Czxid
	} else if !dropRef {
		return nil, ErrConflict // it ended meanwhile, or its ref outlived it: try again
	} else if h.name, h.token, err = s.createSlot(ctx, name, permits, leaseID, data, -1, true); err != nil {
		return nil, err
	}
	h.path = s.lay.Slot(name, h.name)
	return h, nil
}

// recreate creates again a semaphore whose znode was found missing
// (removed by hand), and asks the caller to look again.
func (s *Semaphores) recreate(ctx context.Context, name string, permits int) error {
	if err := s.ensure(ctx, name, permits); err != nil {
		return err
	}
	return ErrConflict
}

// createSlot creates the lease's slot in one transaction with the lease's
// ref to it (which doubles as a lock: a second create for the same lease
// and semaphore fails) and a write of the semaphore's znode with its own
// permits. That write moves the znode's version at every slot created, so
// a version read with a listing proves, in TryAcquire's transaction, that
// no slot was created since (version -1: any). It returns the slot's name
// and its token: the transaction's zxid, which created the slot. A
// conflict (a slot of this lease created concurrently, a version that
// moved, the semaphore removed) is ErrConflict.
func (s *Semaphores) createSlot(ctx context.Context, name string, permits int, leaseID string, data []byte, version int32, dropRef bool) (string, int64, error) {
	ref := lease.Ref(RefKind, name)
	if dropRef {
		if _, err := s.leases.Detach(ctx, leaseID, ref); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return "", 0, err
		}
	}
	dir := s.lay.Semaphore(name)
	res, err := s.leases.Attach(ctx, leaseID, ref,
		&zk.CreateRequest{Path: dir + "/s_" + lease.KeyOf(leaseID) + "_", Data: data, Acl: s.sess.ACL(), Flags: zk.FlagSequence},
		&zk.SetDataRequest{Path: dir, Data: []byte(strconv.Itoa(permits)), Version: version})
	switch {
	case errors.Is(err, zk.ErrNodeExists), errors.Is(err, zk.ErrBadVersion):
		return "", 0, ErrConflict
	case errors.Is(err, zk.ErrNoNode):
		s.forget(name)
		return "", 0, ErrConflict
	case err != nil:
		return "", 0, err
	}
	return path.Base(res[0].String), res[1].Stat.Mzxid, nil
}

// run follows the slot through the semaphore's feed, reporting each
// change, until it ends.
func (h *holder) run(ctx context.Context, f *feed, report func(Update) error) error {
	sess := h.s.sess
	st, sessCh := sess.Watch()
	epoch := st.Epoch
	down := st // the session's state when it was last not connected
	var (
		last     Update
		cur      view // the latest listing seen: the feed's, or a read of our own
		held     bool
		jeopardy bool // reported Jeopardy; only a read after reconnecting says Held again
		confirm  bool // read the slots ourselves: reconnected
		backoff  zkx.Backoff
	)
	send := func(u Update) error {
		u.Slot, u.Permits = h.name, h.permits
		if u.Status == last.Status && u.Position == last.Position {
			return nil
		}
		last = u
		return report(u)
	}
	for {
		v, ch := f.current()
		if v.err != nil {
			return v.err
		}
		if v.rev > cur.rev {
			cur = v
		}
		if confirm {
			slots, stat, err := h.s.list(ctx, h.sem)
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case err == nil:
				confirm, jeopardy = false, false
				if stat.Pzxid >= cur.rev {
					cur = view{loaded: true, slots: slots, rev: stat.Pzxid}
				}
				backoff.Reset()
			case errors.Is(err, zk.ErrNoNode):
				confirm, jeopardy = false, false
				cur = view{loaded: true, rev: math.MaxInt64}
			case !zkx.Transient(err):
				return fmt.Errorf("semaphore: acquire %s: %w", h.sem, err)
			case sess.Status().State == zkx.StateConnected: // a blip: read again soon
				if !backoff.Wait(ctx) {
					return ctx.Err()
				}
				continue
			}
		}
		if cur.loaded && cur.rev >= h.token {
			i := slices.IndexFunc(cur.slots, func(x slot) bool { return x.name == h.name })
			switch {
			case i < 0:
				return report(h.ended(held))
			case jeopardy: // Held again only from a read after the reconnection
			case i < h.permits:
				if !held {
					held = true
					h.s.hold(h)
				}
				if err := send(Update{Status: Held, Token: h.token}); err != nil {
					return err
				}
				if st.State != zkx.StateConnected { // held as of a listing before the connection went
					jeopardy = true
					if err := send(Update{Status: Jeopardy, Token: h.token, Deadline: sess.ExpiryBound(down.Since)}); err != nil {
						return err
					}
				}
			default:
				if err := send(Update{Status: Queued, Position: i - h.permits}); err != nil {
					return err
				}
			}
		}
		select {
		case <-ctx.Done(): // Acquire's: it ends when s closes too
			return ctx.Err()
		case <-ch:
		case <-sessCh:
			st, sessCh = sess.Watch()
			switch st.State {
			case zkx.StateClosed:
				return fmt.Errorf("semaphore: acquire %s: %w", h.sem, zkx.ErrClosed)
			case zkx.StateConnected:
				if jeopardy || st.Epoch != epoch {
					epoch, confirm = st.Epoch, true
				}
			default:
				down = st
				if last.Status == Held {
					jeopardy = true
					if err := send(Update{Status: Jeopardy, Token: h.token, Deadline: sess.ExpiryBound(st.Since)}); err != nil {
						return err
					}
				}
			}
		}
	}
}

// ended is the last update of a slot whose znode is gone.
func (h *holder) ended(held bool) Update {
	u := Update{Status: Lost, Slot: h.name, Permits: h.permits}
	if h.s.released.Has(h.path) {
		u.Status = Released
	}
	if held {
		u.Token = h.token
	}
	h.s.log.Debug("semaphore: slot ended", "semaphore", h.sem, "slot", h.name, "status", u.Status.String())
	return u
}

// hold notes that h holds a permit: a Release of its lease here then
// deletes its slot without listing the semaphore to find it (a held slot
// keeps its permit until its znode goes).
func (s *Semaphores) hold(h *holder) {
	s.mu.Lock()
	s.holders[h.id] = h
	s.mu.Unlock()
}

// unhold forgets h when its Acquire ends.
func (s *Semaphores) unhold(h *holder) {
	s.mu.Lock()
	if s.holders[h.id] == h {
		delete(s.holders, h.id)
	}
	s.mu.Unlock()
}

// holderHere is the slot that an Acquire here follows for the lease key
// in semaphore name and has seen hold a permit, or nil.
func (s *Semaphores) holderHere(name, key string) *holder {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holders[placeID(name, key)]
}

// placeID names a lease's place in a semaphore, in Semaphores' maps:
// semaphore/key.
func placeID(name, key string) string { return name + "/" + key }
