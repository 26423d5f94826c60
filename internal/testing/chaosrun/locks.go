package chaosrun

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/testing/checker"
)

// The lock workload: Lockers clients per lock take it through the Go
// client's Session.Lock, operate on a resource fenced by their tokens
// while they hold it, then unlock, or crash (close their client without
// unlocking) now and then. Lock "mutex" is taken exclusive by all; lock
// "rw" shared by all but its first locker, which takes it exclusive.
var lockNames = []string{"mutex", "rw"}

// fenced is the resource a lock protects: a client.Fence, whose every
// decision is recorded under one lock, so Time orders them.
type fenced struct {
	mu    sync.Mutex
	fence client.Fence
}

func (f *fenced) op(h *checker.History, who string, seq client.Sequencer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ok := f.fence.Admit(seq) == nil
	h.Record(checker.Event{Kind: checker.KindLockWrite, Client: who, Lock: seq.Lock, Token: seq.Token, Shared: seq.Shared, Accepted: ok})
}

// lockers starts the lock workload's clients with spawn.
func (r *run) lockers(spawn func(func(ctx context.Context))) {
	for li, name := range lockNames {
		res := &fenced{}
		for i := range r.cfg.Lockers {
			shared := name == "rw" && i > 0
			id := fmt.Sprintf("%s-%d", name, i)
			seed := uint64(300 + 10*li + i)
			spawn(func(ctx context.Context) { r.locker(ctx, name, id, shared, res, seed) })
		}
	}
}

// locker takes its lock again and again, each time with a new client and
// session.
func (r *run) locker(ctx context.Context, name, id string, shared bool, res *fenced, seed uint64) {
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), seed))
	for ctx.Err() == nil {
		c, err := client.New(ctx, r.target, client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
		if err != nil {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		r.holdLock(ctx, c, name, id, shared, res, rng)
		c.Close()
	}
}

// holdLock takes the lock once, operates on the resource while it holds
// it (not past a jeopardy deadline), then unlocks or crashes.
func (r *run) holdLock(ctx context.Context, c *client.Client, name, id string, shared bool, res *fenced, rng *rand.Rand) {
	s, err := c.NewSession(ctx, client.WithTTL(r.cfg.LeaseTTL))
	if err != nil {
		sleep(ctx, 100*time.Millisecond)
		return
	}
	var opts []client.LockOption
	if shared {
		opts = append(opts, client.Shared())
	}
	l, err := s.Lock(ctx, name, opts...)
	if err != nil {
		closeSession(s)
		return
	}
	seq := l.Sequencer()
	rec := func(k checker.Kind, dl time.Time) {
		r.h.Record(checker.Event{Kind: k, Client: id, Lock: name, Token: seq.Token, Shared: shared, Deadline: dl})
	}
	rec(checker.KindLockHeld, time.Time{})
	hold := time.NewTimer(200*time.Millisecond + time.Duration(rng.Int64N(int64(800*time.Millisecond))))
	defer hold.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	state := l.State()
	for {
		select {
		case <-ctx.Done(): // the run is over: unlock properly
			rec(checker.KindLockReleased, time.Time{})
			_ = l.Unlock(context.Background())
			closeSession(s)
			return
		case <-l.Context().Done():
			if errors.Is(context.Cause(l.Context()), client.ErrLockLost) {
				rec(checker.KindLockLost, time.Time{})
			} else {
				rec(checker.KindLockEnded, time.Time{})
			}
			closeSession(s)
			return
		case <-state.Changed:
			state = l.State()
			if state.Jeopardy {
				rec(checker.KindLockJeopardy, state.Deadline)
			} else if l.Context().Err() == nil {
				rec(checker.KindLockHeld, time.Time{})
			}
		case <-tick.C:
			if state.Jeopardy && time.Now().After(state.Deadline) {
				continue // past the deadline a careful holder stops
			}
			res.op(r.h, id, seq)
		case <-hold.C:
			if rng.IntN(5) == 0 { // crash: stop acting; the client closes without unlocking
				r.h.Record(checker.Event{Kind: checker.KindLockEnded, Client: id, Lock: name, Token: seq.Token, Shared: shared, OpID: "crash"})
				return
			}
			rec(checker.KindLockReleased, time.Time{})
			_ = l.Unlock(ctx)
			closeSession(s)
			return
		}
	}
}

// LockFigures counts the lock workload's holds (distinct tokens), how
// they ended, and the resource's decisions.
type LockFigures struct {
	Holds, Unlocks, Crashes, Lost, Ended, Admitted, Refused int
}

func (f LockFigures) String() string {
	return fmt.Sprintf("lock holds: %d (unlocks %d, client crashes %d, lost %d, ended otherwise %d); fenced operations admitted %d, refused %d",
		f.Holds, f.Unlocks, f.Crashes, f.Lost, f.Ended, f.Admitted, f.Refused)
}

func countLocks(evs []checker.Event) LockFigures {
	var f LockFigures
	tokens := map[string]bool{}
	for _, e := range evs {
		switch e.Kind {
		case checker.KindLockHeld:
			tokens[fmt.Sprint(e.Lock, "/", e.Token)] = true
		case checker.KindLockReleased:
			f.Unlocks++
		case checker.KindLockEnded:
			if e.OpID == "crash" {
				f.Crashes++
			} else {
				f.Ended++
			}
		case checker.KindLockLost:
			f.Lost++
		case checker.KindLockWrite:
			if e.Accepted {
				f.Admitted++
			} else {
				f.Refused++
			}
		}
	}
	f.Holds = len(tokens)
	return f
}
