package semaphore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Try is the outcome of TryAcquire.
type Try struct {
	// Acquired reports that the lease holds a permit.
	Acquired bool
	// Slot and Token name the permit when Acquired.
	Slot  string
	Token int64
	// Held is the number of permits held when the answer was read.
	Held int
	// Rev is the revision (zxid) of the semaphore's state the answer
	// reflects.
	Rev int64
}

// TryAcquire takes a permit of semaphore name (permits as for Acquire) for
// leaseID if one is free, and never waits: when every permit is held it
// answers at once, Acquired false, and creates nothing. A permit taken
// belongs to the lease until Release or the lease's end. A lease that
// holds a permit there already gets it again (Acquired, same token); one
// whose slot waits in the queue (an Acquire of it is running) gets
// Acquired false, and its slot stays.
//
// The create is one transaction with a check of the version of the
// semaphore's znode read with the listing that showed a free permit:
// every slot created moves that version (see createSlot), so a create that
// commits proves no one else queued in between, and the new slot is among
// the first N. It retries while others get in first, then fails with
// ErrConflict. When ctx ends first, TryAcquire returns ctx's error at once
// and whether the permit was taken is unknown (repeat it with the lease:
// it answers the permit if it was).
func (s *Semaphores) TryAcquire(ctx context.Context, name string, permits int, value, leaseID string) (Try, error) {
	t, err := s.tryAcquire(ctx, name, permits, value, leaseID)
	if err == nil {
		s.counters.Tried(t.Acquired)
	}
	return t, err
}

func (s *Semaphores) tryAcquire(ctx context.Context, name string, permits int, value, leaseID string) (Try, error) {
	if err := s.left(ctx, name, leaseID); err != nil {
		return Try{}, err
	}
	if err := s.ensure(ctx, name, permits); err != nil {
		return Try{}, err
	}
	data, _ := json.Marshal(record{Value: value, AcquiredAt: time.Now().UTC()})
	key := lease.KeyOf(leaseID)
	var backoff zkx.Backoff
	for attempt := 0; attempt < 8; attempt++ {
		if err := ctx.Err(); err != nil {
			return Try{}, err
		}
		slots, stat, err := s.list(ctx, name)
		switch {
		case errors.Is(err, zk.ErrNoNode):
			s.forget(name)
			if err := s.ensure(ctx, name, permits); err != nil {
				return Try{}, err
			}
			continue
		case zkx.Transient(err):
			if !backoff.Wait(ctx) {
				return Try{}, ctx.Err()
			}
			continue
		case err != nil:
			return Try{}, fmt.Errorf("semaphore: try %s: %w", name, err)
		}
		held := min(len(slots), permits)
		if i := find(slots, key); i >= 0 {
			if i >= permits {
				return Try{Held: held, Rev: stat.Pzxid}, nil // waiting: it stays so
			}
			_, st, err := s.sess.Get(ctx, s.lay.Slot(name, slots[i].name))
			if errors.Is(err, zk.ErrNoNode) {
				continue // released meanwhile
			} else if err != nil {
				return Try{}, fmt.Errorf("semaphore: try %s: %w", name, err)
			}
			return Try{Acquired: true, Slot: slots[i].name, Token: st.Czxid, Held: held, Rev: stat.Pzxid}, nil
		}
		if len(slots) >= permits {
			return Try{Held: held, Rev: stat.Pzxid}, nil
		}
		slotName, token, err := s.createSlot(ctx, name, permits, leaseID, data, stat.Version, attempt > 2)
		switch {
		case err == nil:
			return Try{Acquired: true, Slot: slotName, Token: token, Held: len(slots) + 1, Rev: token}, nil
		case errors.Is(err, ErrConflict): // someone queued first: look again
		case zkx.Transient(err): // it may have landed: the next listing tells (its rank is below N if it did)
			if !backoff.Wait(ctx) {
				return Try{}, ctx.Err()
			}
		default:
			return Try{}, fmt.Errorf("semaphore: try %s: %w", name, err)
		}
	}
	return Try{}, fmt.Errorf("%w: %s", ErrConflict, name)
}
