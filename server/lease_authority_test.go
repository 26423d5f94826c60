package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/server"
)

// authReplicas serves n replicas on one root with the test policy, the
// replicas reaching each other with the ops token; dial(token, i) connects
// to replica i with a bearer token.
func authReplicas(t *testing.T, n int) (dial func(token string, i int) *grpc.ClientConn) {
	t.Helper()
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = "ops-token-0123456789"
	}
	return authReplicasWith(t, tokens...)
}

// authReplicasWith is authReplicas with replica i presenting peerTokens[i]
// to the others (replica ids r0, r1, ...).
func authReplicasWith(t *testing.T, peerTokens ...string) (dial func(token string, i int) *grpc.ClientConn) {
	t.Helper()
	policy := writePolicy(t)
	root := zktest.Root(t)
	var addrs []string
	for i, peerToken := range peerTokens {
		src, err := auth.LoadSource(policy, nil)
		if err != nil {
			t.Fatal(err)
		}
		sess, _ := zktest.Session(t)
		addrs = append(addrs, testenv.ServeAddr(t, sess, server.WithRoot(root), server.WithReplicaID(fmt.Sprint("r", i)),
			server.WithAuth(auth.Config{Source: src}), server.WithPeerToken(auth.Bearer(peerToken, false))))
	}
	return func(token string, i int) *grpc.ClientConn {
		cc, err := grpc.NewClient(addrs[i], grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(auth.Bearer(token, false)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
}

// TestHostileLeaseIDs: principals that know another principal's lease id,
// with rights over the names involved or none, try every call that names a
// lease, on the replica that owns it and on another (which forwards or
// takes over). Each is refused with PERMISSION_DENIED, ZooKeeper's tree is
// unchanged, and the victim's lease was not even renewed. (Before lease
// authority, a lease id was a bearer capability: all of these succeeded.)
func TestHostileLeaseIDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dial := authReplicas(t, 2)
	const (
		web    = "web-token-0123456789"    // read, register on app.
		other  = "other-token-0123456789"  // the same rights as web
		leader = "leader-token-0123456789" // campaign on jobs., barrier everywhere
		rival  = "rival-token-0123456789"  // the same rights as leader
		reader = "reader-token-0123456789" // read everywhere, no lease
		ops    = "ops-token-0123456789"    // admin
	)
	// The victims: web's lease with a leased and a persistent member;
	// leader's lease with a candidacy and a barrier place; all on r0.
	victim := dial(web, 0)
	wg, err := pb.NewLeaseServiceClient(victim).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	wl := wg.GetLeaseId()
	reg := pb.NewRegistryServiceClient(victim)
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "app.v", MemberId: "m", Value: "v", LeaseId: wl}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "app.v", MemberId: "p", Value: "v", Persistent: true}); err != nil {
		t.Fatal(err)
	}
	lc := dial(leader, 0)
	lg, err := pb.NewLeaseServiceClient(lc).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	ll := lg.GetLeaseId()
	cctx, stopCampaign := context.WithCancel(ctx)
	defer stopCampaign()
	if err := recvErr(pb.NewElectionServiceClient(lc).Campaign(cctx, &pb.CampaignRequest{Election: "jobs.v", Value: "v", LeaseId: ll})); err != nil {
		t.Fatal(err)
	}
	bctx, stopBarrier := context.WithCancel(ctx)
	defer stopBarrier()
	if err := recvErr(pb.NewBarrierServiceClient(lc).AwaitBarrier(bctx, &pb.AwaitBarrierRequest{Barrier: "b.v", Threshold: 5, ParticipantId: "p", LeaseId: ll})); err != nil {
		t.Fatal(err)
	}
	held, err := pb.NewLockServiceClient(lc).TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: "jobs.l", LeaseId: ll})
	if err != nil || !held.Acquired {
		t.Fatalf("TryAcquire: %v, %v", held, err)
	}
	expiries := func() (time.Time, time.Time) {
		w, err := pb.NewLeaseServiceClient(victim).GetLease(ctx, &pb.GetLeaseRequest{LeaseId: wl})
		if err != nil {
			t.Fatal(err)
		}
		l, err := pb.NewLeaseServiceClient(lc).GetLease(ctx, &pb.GetLeaseRequest{LeaseId: ll})
		if err != nil {
			t.Fatal(err)
		}
		return w.GetExpiresAt().AsTime(), l.GetExpiresAt().AsTime()
	}
	wExp, lExp := expiries()
	truth, _ := zktest.Session(t)
	before := tree(t, truth.Conn())

	checked := 0
	for _, replica := range []int{0, 1} {
		for _, attacker := range []struct{ name, token, lease string }{
			{"other (register on app.) with web's lease", other, wl},
			{"rival (campaign on jobs.) with leader's lease", rival, ll},
			{"reader (no lease right) with web's lease", reader, wl},
			{"other with leader's lease", other, ll},
		} {
			cc := dial(attacker.token, replica)
			ls, rg := pb.NewLeaseServiceClient(cc), pb.NewRegistryServiceClient(cc)
			el, br := pb.NewElectionServiceClient(cc), pb.NewBarrierServiceClient(cc)
			id := attacker.lease
			denied := func(what string, err error) {
				t.Helper()
				checked++
				if status.Code(err) != codes.PermissionDenied {
					t.Errorf("r%d: %s: %s: %v, want PermissionDenied", replica, attacker.name, what, err)
				}
			}
			_, err := ls.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: id})
			denied("KeepAlive", err)
			ks, err := ls.KeepAliveStream(ctx)
			if err == nil {
				_ = ks.Send(&pb.KeepAliveStreamRequest{LeaseId: id})
				_, err = ks.Recv()
			}
			denied("KeepAliveStream", err)
			_, err = ls.GetLease(ctx, &pb.GetLeaseRequest{LeaseId: id})
			denied("GetLease", err)
			_, err = ls.Revoke(ctx, &pb.RevokeRequest{LeaseId: id})
			denied("Revoke", err)
			_, err = rg.Register(ctx, &pb.RegisterRequest{Group: "app.x", MemberId: "new", Value: "v", LeaseId: id})
			denied("Register a new member under it", err)
			_, err = rg.Register(ctx, &pb.RegisterRequest{Group: "app.v", MemberId: "m", Value: "stolen", LeaseId: id})
			denied("Register over its member", err)
			_, err = rg.Deregister(ctx, &pb.DeregisterRequest{Group: "app.v", MemberId: "m", LeaseId: id})
			denied("Deregister its member", err)
			denied("Campaign with it", recvErr(el.Campaign(ctx, &pb.CampaignRequest{Election: "jobs.x", Value: "v", LeaseId: id})))
			_, err = el.Resign(ctx, &pb.ResignRequest{Election: "jobs.v", LeaseId: id})
			denied("Resign its candidacy", err)
			denied("AwaitBarrier with it", recvErr(br.AwaitBarrier(ctx, &pb.AwaitBarrierRequest{Barrier: "b.x", Threshold: 5, ParticipantId: "q", LeaseId: id})))
			_, err = br.LeaveBarrier(ctx, &pb.LeaveBarrierRequest{Barrier: "b.v", ParticipantId: "p", LeaseId: id})
			denied("LeaveBarrier its place", err)
			lk := pb.NewLockServiceClient(cc)
			denied("Acquire with it", recvErr(lk.AcquireLock(ctx, &pb.AcquireLockRequest{Lock: "jobs.x", LeaseId: id})))
			denied("Acquire its lock reentrantly", recvErr(lk.AcquireLock(ctx, &pb.AcquireLockRequest{Lock: "jobs.l", LeaseId: id, Reentrant: true})))
			_, err = lk.TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: "jobs.x", LeaseId: id})
			denied("TryAcquire with it", err)
			_, err = lk.ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: "jobs.l", LeaseId: id})
			denied("Release its lock", err)
		}
		// A persistent member belongs to the principal that registered it.
		cc := pb.NewRegistryServiceClient(dial(other, replica))
		_, err := cc.Register(ctx, &pb.RegisterRequest{Group: "app.v", MemberId: "p", Value: "stolen", Persistent: true})
		checked++
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("r%d: other updates web's persistent member: %v, want PermissionDenied", replica, err)
		}
		_, err = cc.Deregister(ctx, &pb.DeregisterRequest{Group: "app.v", MemberId: "p"})
		checked++
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("r%d: other deregisters web's persistent member: %v, want PermissionDenied", replica, err)
		}
	}

	after := tree(t, truth.Conn())
	// Under this test's roots only: a lease of another test (the shared
	// gateway's) may end meanwhile.
	mine := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			if strings.HasPrefix(p, "/t/"+t.Name()+"-") {
				out = append(out, p)
			}
		}
		return out
	}
	if added, removed := diff(before, after); len(mine(added)) > 0 || len(mine(removed)) > 0 {
		t.Errorf("ZooKeeper's tree changed: added %v, removed %v", mine(added), mine(removed))
	}
	if w, l := expiries(); !w.Equal(wExp) || !l.Equal(lExp) {
		t.Errorf("the victims' leases were renewed by the attackers: web's expiry %v -> %v, leader's %v -> %v", wExp, w, lExp, l)
	}
	// The holders, and an admin, still act on them, through either replica.
	if _, err := pb.NewLeaseServiceClient(dial(web, 1)).KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: wl}); err != nil {
		t.Errorf("web keeps its own lease alive through r1: %v", err)
	}
	if _, err := pb.NewLeaseServiceClient(dial(ops, 1)).GetLease(ctx, &pb.GetLeaseRequest{LeaseId: ll}); err != nil {
		t.Errorf("an admin reads leader's lease through r1: %v", err)
	}
	if r, err := pb.NewRegistryServiceClient(dial(web, 1)).Lookup(ctx, &pb.LookupRequest{Group: "app.v",
		Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); err != nil || len(r.GetMembers()) != 2 {
		t.Errorf("web's members after the attacks: %v, %v", r, err)
	}
	t.Logf("%d calls with another principal's lease refused; ZooKeeper's tree (%d znodes) unchanged; no lease renewed", checked, len(after))
}
