package chaosrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/zkcoord/zkcoord/client"
	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/checker"
	leasepkg "github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
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

// registrant holds a lease of its own (generated stubs: it records every
// keepalive) and registers, deregisters and looks up members under it.
type registrant struct {
	r   *run
	id  string
	rng *rand.Rand
}

// probeLater checks in ZooKeeper, TTL + 1.2 s from now and again TTL +
// session timeout + 1.2 s from now, that the members of a lease that just
// ended are gone (the second probe is the one CheckExpiry reads when the
// lease's owner failed meanwhile).
func (r *run) probeLater(members []string) {
	if len(members) == 0 {
		return
	}
	r.probes.Add(1)
	go func() {
		defer r.probes.Done()
		if sleep(r.ctx, r.cfg.LeaseTTL+1200*time.Millisecond) != nil {
			return
		}
		r.probe(members)
		if sleep(r.ctx, r.cfg.SessionTimeout) != nil {
			return
		}
		r.probe(members)
	}()
}

// abandoned records that client stopped keeping lease alive at, with the
// replica that owns it. A zero at means once the owner is read: a client
// whose session renews in the background is still renewing until then.
func (r *run) abandoned(client, lease string, ttl time.Duration, at time.Time) {
	owner := r.owner(lease)
	if at.IsZero() {
		at = time.Now()
	}
	r.h.Record(checker.Event{Kind: checker.KindLeaseAbandoned, Time: at, Client: client, Lease: lease, TTL: ttl, Replica: owner})
}

// owner reads the replica that owns lease from its record in ZooKeeper, ""
// when it cannot tell.
func (r *run) owner(lease string) string {
	ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
	defer cancel()
	var data []byte
	err := zkx.Retry(ctx, func() error {
		var err error
		data, _, err = r.truth.Conn().Get(r.lay.Lease(leasepkg.KeyOf(lease)))
		return err
	})
	if err != nil {
		return ""
	}
	var rec struct {
		Owner string `json:"owner"`
	}
	if json.Unmarshal(data, &rec) != nil {
		return ""
	}
	return rec.Owner
}

// probe records whether each member exists in ZooKeeper now.
func (r *run) probe(members []string) {
	{
		seen := map[string]bool{}
		for _, m := range members {
			if seen[m] {
				continue
			}
			seen[m] = true
			var ok bool
			err := zkx.Retry(r.ctx, func() error {
				var err error
				ok, _, err = r.truth.Conn().Exists(r.lay.Member(r.group, m))
				return err
			})
			if err != nil {
				return
			}
			r.h.Record(checker.Event{Kind: checker.KindMemberProbe, Client: "probe", Group: r.group, Member: m, Present: ok})
		}
	}
}

func code(err error) string {
	if err == nil {
		return ""
	}
	return status.Code(err).String()
}

func (g *registrant) loop(ctx context.Context) {
	leases := pb.NewLeaseServiceClient(g.r.conn)
	reg := pb.NewRegistryServiceClient(g.r.conn)
	ttl := g.r.cfg.LeaseTTL
	for n := 0; ctx.Err() == nil; n++ {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		gr, err := leases.Grant(cctx, &pb.GrantRequest{Ttl: durationpb.New(ttl)})
		cancel()
		if err != nil {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		lease := gr.LeaseId
		from := time.Now()
		g.r.h.Record(checker.Event{Kind: checker.KindKeepAliveOK, Client: g.id, Lease: lease, TTL: ttl})
		kctx, stopKeep := context.WithCancel(ctx)
		lost := make(chan struct{})
		var lastOK time.Time
		var kwg sync.WaitGroup
		kwg.Add(1)
		go func() {
			defer kwg.Done()
			lastOK = g.keepAlive(kctx, leases, lease, lost)
		}()
		var members []string
		life := time.After(3*time.Second + time.Duration(g.rng.Int64N(int64(6*time.Second))))
	ops:
		for {
			select {
			case <-ctx.Done():
				break ops
			case <-lost:
				break ops
			case <-life:
				break ops
			case <-time.After(time.Duration(50+g.rng.IntN(150)) * time.Millisecond):
			}
			// Member ids are unique to the lease: an abandoned lease's
			// members are never taken over, so their removal can be probed.
			m := fmt.Sprintf("%s-l%d-%d", g.id, n, g.rng.IntN(3))
			switch g.rng.IntN(4) {
			case 0, 1:
				v := fmt.Sprintf("v%d", g.rng.IntN(1000))
				call := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				resp, err := reg.Register(cctx, &pb.RegisterRequest{Group: g.r.group, MemberId: m, Value: v, LeaseId: lease})
				cancel()
				g.r.h.Record(checker.Event{Kind: checker.KindRegister, Time: call, Client: g.id, Group: g.r.group, Member: m,
					Value: v, Lease: lease, Call: call, Return: time.Now(), Err: code(err), Revision: resp.GetRevision()})
				members = append(members, m)
			case 2:
				call := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := reg.Deregister(cctx, &pb.DeregisterRequest{Group: g.r.group, MemberId: m, LeaseId: lease})
				cancel()
				g.r.h.Record(checker.Event{Kind: checker.KindDeregister, Time: call, Client: g.id, Group: g.r.group, Member: m,
					Lease: lease, Call: call, Return: time.Now(), Err: code(err)})
			case 3:
				call := time.Now()
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				resp, err := reg.Lookup(cctx, &pb.LookupRequest{Group: g.r.group, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
				cancel()
				ms := map[string]string{}
				for _, x := range resp.GetMembers() {
					ms[x.Id] = x.Value
				}
				g.r.h.Record(checker.Event{Kind: checker.KindLookup, Time: call, Client: g.id, Group: g.r.group, Members: ms,
					Revision: resp.GetRevision(), Call: call, Return: time.Now(), Err: code(err)})
			}
		}
		stopKeep()
		kwg.Wait()
		select {
		case <-lost: // recorded by keepAlive
		default:
			g.r.h.Record(checker.Event{Kind: checker.KindLeaseKept, Client: g.id, Lease: lease, From: from, To: lastOK})
			if ctx.Err() == nil && g.rng.IntN(3) == 0 {
				// Revoke: the lease ends now (the history models an ended
				// lease as abandoned: it may end at any time after).
				g.r.abandoned(g.id, lease, ttl, time.Now())
				cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, _ = leases.Revoke(cctx, &pb.RevokeRequest{LeaseId: lease})
				cancel()
			} else {
				// Abandon: stop keeping it alive, as a crashed client does.
				g.r.abandoned(g.id, lease, ttl, time.Now())
			}
		}
		g.r.probeLater(members)
	}
}

// keepAlive renews the lease every third of its TTL until ctx ends or the
// gateway says the lease is gone (then it closes lost). It returns the time
// of the last renewal.
func (g *registrant) keepAlive(ctx context.Context, leases pb.LeaseServiceClient, lease string, lost chan struct{}) time.Time {
	last := time.Now()
	period := g.r.cfg.LeaseTTL / 3
	for {
		if sleep(ctx, period) != nil {
			return last
		}
		for {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			resp, err := leases.KeepAlive(cctx, &pb.KeepAliveRequest{LeaseId: lease})
			cancel()
			if err == nil {
				last = time.Now()
				g.r.h.Record(checker.Event{Kind: checker.KindKeepAliveOK, Client: g.id, Lease: lease, TTL: resp.Ttl.AsDuration()})
				break
			}
			if status.Code(err) == codes.NotFound {
				g.r.h.Record(checker.Event{Kind: checker.KindLeaseLost, Client: g.id, Lease: lease})
				close(lost)
				return last
			}
			if sleep(ctx, 100*time.Millisecond) != nil {
				return last
			}
		}
	}
}

// watcher follows the group through the Go client and records each event.
type watcher struct {
	r  *run
	id string

	mu   sync.Mutex
	last checker.Observation
}

func (w *watcher) loop(ctx context.Context) {
	c, err := client.New(ctx, w.r.target, client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		return
	}
	defer c.Close()
	types := map[pb.WatchGroupResponse_Type]checker.WatchType{
		pb.WatchGroupResponse_TYPE_SNAPSHOT: checker.WatchSnapshot,
		pb.WatchGroupResponse_TYPE_JOINED:   checker.WatchJoined,
		pb.WatchGroupResponse_TYPE_LEFT:     checker.WatchLeft,
		pb.WatchGroupResponse_TYPE_UPDATED:  checker.WatchUpdated,
	}
	for st := range c.WatchGroup(ctx, w.r.group) {
		if st.Err != nil || st.Event == nil {
			continue
		}
		ev := checker.Event{Kind: checker.KindWatchEvent, Client: w.id, Group: w.r.group, Type: types[st.Event.Type], Revision: st.Revision}
		if m := st.Event.GetMember(); m != nil {
			ev.Member = m.Id
		}
		w.r.h.Record(ev)
		ms := map[string]string{}
		for id, m := range st.Members {
			ms[id] = m.Value
		}
		w.mu.Lock()
		w.last = checker.Observation{Source: w.id, Time: time.Now(), Group: w.r.group, Members: ms, Revision: st.Revision}
		w.mu.Unlock()
	}
}

// observation is the watcher's state, as of now (its last state still
// holds when nothing changed since).
func (w *watcher) observation() checker.Observation {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := w.last
	o.Time = time.Now()
	return o
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
