package chaosrun

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/testing/checker"
)

// The semaphore workload: acquirers of one semaphore of two permits.
const (
	semaphoreName    = "jobs"
	semaphorePermits = 2
)

// acquirer takes a permit of the semaphore through the Go client, uses it
// a while (it acts on the permit only while the Permit's context lives
// and, in jeopardy, until its deadline), then releases it, or now and
// then crashes: it closes its client without a release, so its stream
// ends (the gateway gives the place up) and its lease is left to lapse.
func (r *run) acquirer(ctx context.Context, id string, n uint64) {
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), 300+n))
	for ctx.Err() == nil {
		c, err := client.New(ctx, r.target, client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
		if err != nil {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		r.permit(ctx, c, id, rng)
		c.Close()
	}
}

// permit is one acquisition, recorded from the client's point of view.
func (r *run) permit(ctx context.Context, c *client.Client, id string, rng *rand.Rand) {
	s, err := c.NewSession(ctx, client.WithTTL(r.cfg.LeaseTTL))
	if err != nil {
		sleep(ctx, 100*time.Millisecond)
		return
	}
	p, err := s.AcquirePermit(ctx, semaphoreName, semaphorePermits, client.WithPermitValue(id))
	if err != nil {
		closeSession(s)
		return
	}
	rec := func(k checker.Kind, t, deadline time.Time) {
		r.h.Record(checker.Event{Kind: k, Time: t, Client: id, Semaphore: semaphoreName, Permits: semaphorePermits,
			Token: p.Token(), Deadline: deadline})
	}
	rec(checker.KindPermitHeld, time.Now(), time.Time{})
	hold := time.NewTimer(200*time.Millisecond + time.Duration(rng.Int64N(int64(800*time.Millisecond))))
	defer hold.Stop()
	state := p.State()
	for {
		select {
		case <-ctx.Done():
			// The run is over: give the permit up properly.
			rec(checker.KindPermitReleased, time.Now(), time.Time{})
			_ = p.Release(context.Background())
			closeSession(s)
			return
		case <-p.Context().Done():
			if cause := context.Cause(p.Context()); cause == client.ErrPermitLost { // LOST itself, not a broken stream
				rec(checker.KindPermitLost, time.Now(), time.Time{})
			} else if !errors.Is(cause, client.ErrReleased) {
				rec(checker.KindPermitEnded, time.Now(), time.Time{})
			}
			closeSession(s)
			return
		case <-state.Changed:
			state = p.State()
			if state.Jeopardy {
				rec(checker.KindPermitJeopardy, time.Now(), state.Deadline)
			} else if p.Context().Err() == nil {
				rec(checker.KindPermitHeld, time.Now(), time.Time{})
			}
		case <-hold.C:
			if rng.IntN(4) == 0 { // crash: stop acting, no release, no revoke
				rec(checker.KindPermitEnded, time.Now(), time.Time{})
				return // the caller closes the client: the stream ends, the lease lapses
			}
			rec(checker.KindPermitReleased, time.Now(), time.Time{})
			_ = p.Release(ctx)
			closeSession(s)
			return
		}
	}
}
