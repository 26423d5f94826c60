package lock

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// follower is one hold followed by an Acquire.
type follower struct {
	l     *Locks
	lock  string
	node  string // the lease's node
	path  string
	hold  string
	mode  Mode
	token int64 // the node's czxid, once read
	holds int   // the node's holds, as last read
}

// standing is where a hold stands after a listing, with the watch that
// tells when it may have changed.
type standing struct {
	gone  bool
	ahead int
	watch <-chan zk.Event // the node that blocks it; its own node while held
	self  <-chan zk.Event // its own node while queued, when asked for
}

// check lists the lock and arms the hold's one watch: on the node that
// blocks it (a data watch: unlike an exists watch, it is not left behind
// when that node is already gone), or on its own node while it holds the
// lock (which also tells when the hold is released while other holds of
// the lease stay). watchSelf also watches its own node while queued: its
// lease is ending, or a hold of it is being released.
func (f *follower) check(ctx context.Context, watchSelf bool) (standing, error) {
	sess := f.l.sess
	dir := f.l.lay.Lock(f.lock)
	gone := standing{gone: true}
	own := func(get func(context.Context, string) ([]byte, *zk.Stat, <-chan zk.Event, error)) (<-chan zk.Event, bool, error) {
		data, stat, ch, err := get(ctx, f.path)
		if errors.Is(err, zk.ErrNoNode) {
			return nil, false, nil
		} else if err != nil {
			return nil, false, err
		}
		rec := decode(data)
		f.holds, f.token = len(rec.Holds), stat.Czxid
		return ch, rec.has(f.hold), nil
	}
	for {
		q, _, err := f.l.list(ctx, f.lock)
		if errors.Is(err, zk.ErrNoNode) {
			return gone, nil
		} else if err != nil {
			return standing{}, err
		}
		i := q.index(f.node)
		if i < 0 {
			return gone, nil
		}
		b := q.blocker(i)
		if b < 0 {
			ch, ok, err := own(sess.GetW)
			if err != nil || !ok {
				return gone, err
			}
			return standing{watch: ch}, nil
		}
		_, _, ch, err := sess.GetW(ctx, dir+"/"+q[b].name)
		if errors.Is(err, zk.ErrNoNode) {
			continue // the one ahead just left
		} else if err != nil {
			return standing{}, err
		}
		s := standing{ahead: b + 1, watch: ch}
		if watchSelf {
			self, ok, err := own(sess.GetW)
			if err != nil || !ok {
				return gone, err
			}
			s.self = self
		}
		return s, nil
	}
}

// run follows the hold, reporting each change, until it ends.
func (f *follower) run(ctx context.Context, wake <-chan struct{}, report func(Update) error) error {
	sess := f.l.sess
	st, sessCh := sess.Watch()
	epoch := st.Epoch
	var (
		last      Update
		held      bool
		s         standing
		stale     = true // list again
		watchSelf bool   // woken: the lease is ending, or a hold is released
		backoff   zkx.Backoff
	)
	send := func(u Update) error {
		u.Node, u.Hold, u.Mode, u.Holds = f.node, f.hold, f.mode, f.holds
		if u.Status == last.Status && u.Position == last.Position && u.Holds == last.Holds {
			return nil
		}
		last = u
		return report(u)
	}
	for {
		if stale {
			next, err := f.check(ctx, watchSelf && s.self == nil)
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case err == nil:
				stale = false
				backoff.Reset()
				if next.self == nil {
					next.self = s.self // keep the one armed before
				}
				s = next
				if s.gone {
					return report(f.ended(held))
				}
				held = held || s.ahead == 0
				if err := send(f.update(s)); err != nil {
					return err
				}
			case zkx.Transient(err):
				switch sess.Status().State {
				case zkx.StateClosed:
					return fmt.Errorf("lock: acquire %s: %w", f.lock, zkx.ErrClosed)
				case zkx.StateConnected: // a blip: retry soon
					if !backoff.Wait(ctx) {
						return ctx.Err()
					}
					continue
				}
				// No ZooKeeper: the session's next change says when to retry.
			default:
				return fmt.Errorf("lock: acquire %s: %w", f.lock, err)
			}
		}
		select {
		case <-ctx.Done(): // Acquire's: it ends when l closes too
			return ctx.Err()
		case ev := <-s.watch: // a change, or the watch was lost with the session
			if last.Status == Queued && ev.Type != zk.EventNotWatching {
				f.l.queuedWakes.Add(1)
			}
			s.watch, stale = nil, true
		case <-s.self:
			s.self, stale = nil, true
		case <-wake:
			watchSelf, stale = true, true
		case <-sessCh:
			st, sessCh = sess.Watch()
			switch st.State {
			case zkx.StateClosed:
				return fmt.Errorf("lock: acquire %s: %w", f.lock, zkx.ErrClosed)
			case zkx.StateConnected:
				if st.Epoch != epoch { // a new session: the old one's watches are gone
					epoch, s.watch, s.self, stale = st.Epoch, nil, nil, true
				}
				if last.Status == Jeopardy {
					stale = true // still there, still holding?
				}
			default:
				if last.Status == Held {
					if err := send(Update{Status: Jeopardy, Token: f.token, Deadline: sess.ExpiryBound(st.Since)}); err != nil {
						return err
					}
				}
			}
		}
	}
}

// update reports where a hold that is still there stands.
func (f *follower) update(s standing) Update {
	if s.ahead == 0 {
		return Update{Status: Held, Token: f.token}
	}
	return Update{Status: Queued, Position: s.ahead}
}

// ended is the last update of a hold that is gone.
func (f *follower) ended(held bool) Update {
	u := Update{Status: Lost, Node: f.node, Hold: f.hold, Mode: f.mode}
	if f.l.released.Has(f.path + "#" + f.hold) {
		u.Status = Released
	}
	if held {
		u.Token = f.token
	}
	f.l.log.Debug("lock: hold ended", "lock", f.lock, "node", f.node, "hold", f.hold, "status", u.Status.String())
	return u
}
