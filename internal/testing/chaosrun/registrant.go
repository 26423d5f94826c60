package chaosrun

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	leasepkg "github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/checker"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// registrant holds a lease of its own (generated stubs: it records every
// grant, keepalive and revoke, with call and answer times) and registers,
// deregisters, looks up (LINEARIZABLE and CACHED) and takes snapshots of
// the group under it.
type registrant struct {
	r     *run
	id    string
	rng   *rand.Rand
	snaps int // snapshot streams opened, to name each
}

func code(err error) string {
	if err == nil {
		return ""
	}
	return status.Code(err).String()
}

func (g *registrant) loop(ctx context.Context) {
	leases := pb.NewLeaseServiceClient(g.r.conn)
	for n := 0; ctx.Err() == nil; n++ {
		lease, ok := g.grant(ctx, leases)
		if !ok {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		from := time.Now()
		stopKeep := make(chan struct{})
		lost := make(chan struct{})
		var lastOK time.Time
		var kwg sync.WaitGroup
		kwg.Add(1)
		go func() {
			defer kwg.Done()
			lastOK = g.keepAlive(ctx, stopKeep, leases, lease, lost)
		}()
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
			// Member ids are unique to the lease: an ended lease's members
			// are never taken over, so their tenure is the lease's.
			g.op(ctx, lease, fmt.Sprintf("%s-l%d-%d", g.id, n, g.rng.IntN(3)))
		}
		// The keepalive in flight, if any, is answered before the lease
		// counts as abandoned: its outcome is recorded.
		close(stopKeep)
		kwg.Wait()
		select {
		case <-lost: // recorded by keepAlive
		default:
			g.r.h.Record(checker.Event{Kind: checker.KindLeaseKept, Client: g.id, Lease: lease, From: from, To: lastOK})
			g.r.abandoned(g.id, lease, g.r.cfg.LeaseTTL, time.Now())
			if ctx.Err() == nil && g.rng.IntN(3) == 0 {
				g.revoke(leases, lease)
			}
		}
	}
}

// grant grants a lease and records it as its first renewal.
func (g *registrant) grant(ctx context.Context, leases pb.LeaseServiceClient) (string, bool) {
	ttl := g.r.cfg.LeaseTTL
	call := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	gr, err := leases.Grant(cctx, &pb.GrantRequest{Ttl: durationpb.New(ttl)})
	cancel()
	ret := time.Now()
	if err != nil {
		return "", false
	}
	g.r.h.Record(checker.Event{Kind: checker.KindKeepAliveOK, Time: ret, Client: g.id, Lease: gr.LeaseId, TTL: ttl,
		Call: call, Return: ret, Deadline: gr.GetExpiresAt().AsTime(), OpID: "grant"})
	return gr.LeaseId, true
}

// revoke revokes the lease (the history still has it abandoned just
// before: the lease may end at any time after).
func (g *registrant) revoke(leases pb.LeaseServiceClient, lease string) {
	call := time.Now()
	cctx, cancel := context.WithTimeout(g.r.ctx, 2*time.Second)
	_, err := leases.Revoke(cctx, &pb.RevokeRequest{LeaseId: lease})
	cancel()
	g.r.h.Record(checker.Event{Kind: checker.KindRevoke, Time: call, Client: g.id, Lease: lease, Call: call, Return: time.Now(), Err: code(err)})
}

// op does one random operation on member m under lease.
func (g *registrant) op(ctx context.Context, lease, m string) {
	reg := pb.NewRegistryServiceClient(g.r.conn)
	group := g.r.group
	call := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	switch g.rng.IntN(6) {
	case 0, 1:
		v := fmt.Sprintf("v%d", g.rng.IntN(1000))
		resp, err := reg.Register(cctx, &pb.RegisterRequest{Group: group, MemberId: m, Value: v, LeaseId: lease})
		g.r.h.Record(checker.Event{Kind: checker.KindRegister, Time: call, Client: g.id, Group: group, Member: m,
			Value: v, Lease: lease, Call: call, Return: time.Now(), Err: code(err), Revision: resp.GetRevision()})
	case 2:
		resp, err := reg.Deregister(cctx, &pb.DeregisterRequest{Group: group, MemberId: m, LeaseId: lease})
		g.r.h.Record(checker.Event{Kind: checker.KindDeregister, Time: call, Client: g.id, Group: group, Member: m,
			Lease: lease, Call: call, Return: time.Now(), Err: code(err), Revision: resp.GetRevision()})
	case 3, 4:
		kind, cons := checker.KindLookup, pb.Consistency_CONSISTENCY_LINEARIZABLE
		if g.rng.IntN(2) == 0 {
			kind, cons = checker.KindCachedLookup, pb.Consistency_CONSISTENCY_CACHED
		}
		resp, err := reg.Lookup(cctx, &pb.LookupRequest{Group: group, Consistency: cons})
		g.r.h.Record(checker.Event{Kind: kind, Time: call, Client: g.id, Group: group, Members: values(resp.GetMembers()),
			Revision: resp.GetRevision(), Call: call, Return: time.Now(), Err: code(err)})
	case 5:
		g.snapshot(cctx, reg)
	}
}

// snapshot opens a new WatchGroup stream and records its first message,
// the snapshot, as a stream of its own.
func (g *registrant) snapshot(ctx context.Context, reg pb.RegistryServiceClient) {
	g.snaps++
	s, err := reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: g.r.group})
	if err != nil {
		return
	}
	msg, err := s.Recv()
	if err != nil || msg.GetType() != pb.WatchGroupResponse_TYPE_SNAPSHOT {
		return
	}
	g.r.h.Record(checker.Event{Kind: checker.KindWatchEvent, Client: fmt.Sprintf("%s-snap%d", g.id, g.snaps), Group: g.r.group,
		Type: checker.WatchSnapshot, Revision: msg.GetRevision(), Members: values(msg.GetMembers()), Resync: msg.GetResync()})
}

// values maps members' ids to their values.
func values(ms []*pb.Member) map[string]string {
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		out[m.GetId()] = m.GetValue()
	}
	return out
}

// keepAlive renews the lease every third of its TTL until stop is closed
// or ctx ends, or the gateway says the lease is gone (then it closes
// lost), recording each attempt. A call in flight when stop closes is
// answered (its timeout is its own), so every renewal the gateway may have
// made is in the history. It returns the time of the last renewal.
func (g *registrant) keepAlive(ctx context.Context, stop <-chan struct{}, leases pb.LeaseServiceClient, lease string, lost chan struct{}) time.Time {
	last := time.Now()
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-stop:
			return false
		case <-t.C:
			return true
		}
	}
	for {
		if !wait(g.r.cfg.LeaseTTL / 3) {
			return last
		}
		for {
			call := time.Now()
			cctx, cancel := context.WithTimeout(g.r.ctx, time.Second)
			resp, err := leases.KeepAlive(cctx, &pb.KeepAliveRequest{LeaseId: lease})
			cancel()
			ret := time.Now()
			ev := checker.Event{Time: ret, Client: g.id, Lease: lease, Call: call, Return: ret, Err: code(err)}
			switch {
			case err == nil:
				last = ret
				ev.Kind, ev.TTL, ev.Deadline = checker.KindKeepAliveOK, resp.GetTtl().AsDuration(), resp.GetExpiresAt().AsTime()
				g.r.h.Record(ev)
			case status.Code(err) == codes.NotFound:
				ev.Kind = checker.KindLeaseLost
				g.r.h.Record(ev)
				close(lost)
				return last
			default:
				ev.Kind = checker.KindKeepAliveFailed
				g.r.h.Record(ev)
			}
			if err == nil {
				break
			}
			if !wait(100 * time.Millisecond) {
				return last
			}
		}
	}
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
