package chaosrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/zkcoord/zkcoord/client"
	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/checker"
)

const election = "lead"

// resource is the protected resource of the fencing check: it accepts a
// write only with a token at least as high as any it has accepted.
type resource struct {
	mu      sync.Mutex
	highest int64
}

func (r *resource) write(token int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if token < r.highest {
		return false
	}
	r.highest = token
	return true
}

// elector campaigns through the Go client, writes to the resource while it
// leads, then resigns, or crashes (abandons its lease) now and then.
func (r *run) elector(ctx context.Context, id string, res *resource, n uint64) {
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), 200+n))
	for ctx.Err() == nil {
		c, err := client.New(ctx, r.target, client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
		if err != nil {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		r.term(ctx, c, id, res, rng)
		c.Close()
	}
}

func (r *run) term(ctx context.Context, c *client.Client, id string, res *resource, rng *rand.Rand) {
	s, err := c.NewSession(ctx, client.WithTTL(r.cfg.LeaseTTL))
	if err != nil {
		sleep(ctx, 100*time.Millisecond)
		return
	}
	lead, err := s.Campaign(ctx, election, id)
	if err != nil {
		closeSession(s)
		return
	}
	token := lead.Token()
	rec := func(k checker.Kind, t time.Time, dl time.Time) {
		r.h.Record(checker.Event{Kind: k, Time: t, Client: id, Election: election, Token: token, Deadline: dl})
	}
	rec(checker.KindElected, time.Now(), time.Time{})
	hold := time.NewTimer(300*time.Millisecond + time.Duration(rng.Int64N(int64(1200*time.Millisecond))))
	defer hold.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	state := lead.State()
	for {
		select {
		case <-ctx.Done():
			// The run is over: step down properly.
			rec(checker.KindResigned, time.Now(), time.Time{})
			_ = lead.Resign(context.Background())
			closeSession(s)
			return
		case <-lead.Context().Done():
			if errors.Is(context.Cause(lead.Context()), client.ErrLost) {
				rec(checker.KindLost, time.Now(), time.Time{})
			} else {
				rec(checker.KindTermEnded, time.Now(), time.Time{})
			}
			closeSession(s)
			return
		case <-state.Changed:
			state = lead.State()
			if state.Jeopardy {
				rec(checker.KindJeopardy, time.Now(), state.Deadline)
			} else {
				rec(checker.KindElected, time.Now(), time.Time{})
			}
		case <-tick.C:
			if state.Jeopardy && time.Now().After(state.Deadline) {
				continue // past the deadline a careful leader stops writing
			}
			ok := res.write(token)
			r.h.Record(checker.Event{Kind: checker.KindResourceWrite, Client: id, Election: election, Token: token, Accepted: ok})
		case <-hold.C:
			if rng.IntN(5) == 0 { // crash: stop acting, abandon the lease
				rec(checker.KindTermEnded, time.Now(), time.Time{})
				r.abandoned(id, s.Lease(), r.cfg.LeaseTTL, time.Time{})
				return // the caller closes the client without revoking
			}
			rec(checker.KindResigned, time.Now(), time.Time{})
			_ = lead.Resign(ctx)
			closeSession(s)
			return
		}
	}
}

func closeSession(s *client.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Close(ctx)
}

// barriers runs a barrier round every second: three participants through
// stream-owned leases, each recording its arrival and its release.
func (r *run) barriers(ctx context.Context) {
	b := pb.NewBarrierServiceClient(r.conn)
	const n = 3
	var wg sync.WaitGroup
	defer wg.Wait()
	for round := 0; ctx.Err() == nil; round++ {
		if sleep(ctx, time.Second) != nil {
			return
		}
		name := fmt.Sprintf("b%d", round)
		for p := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				who := fmt.Sprintf("%s-p%d", name, p)
				call := time.Now()
				bctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				defer cancel()
				r.h.Record(checker.Event{Kind: checker.KindBarrierArrive, Time: call, Client: who, Barrier: name, Threshold: n})
				s, err := b.AwaitBarrier(bctx, &pb.AwaitBarrierRequest{Barrier: name, Threshold: n, ParticipantId: fmt.Sprint("p", p)})
				if err == nil {
					for {
						m, err := s.Recv()
						if err != nil {
							break
						}
						if m.Released {
							r.h.Record(checker.Event{Kind: checker.KindBarrierReleased, Client: who, Barrier: name, Arrived: int(m.Arrived), Threshold: n})
							return
						}
					}
				}
				r.h.Record(checker.Event{Kind: checker.KindBarrierGaveUp, Client: who, Barrier: name})
			}()
		}
	}
}

// valueOf reads the value out of a member znode's JSON.
func valueOf(data []byte) string {
	var rec struct {
		Value string `json:"value"`
	}
	_ = json.Unmarshal(data, &rec)
	return rec.Value
}
