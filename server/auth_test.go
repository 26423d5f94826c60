package server_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	peerpb "github.com/zkcoord/zkcoord/gen/zkcoord/peer/v1"
	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// TestAuthRefusesUnauthenticated: without credentials, or with a token the
// policy does not know, every zkcoord service and reflection answer
// Unauthenticated; health stays open.
func TestAuthRefusesUnauthenticated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial, _ := authGateway(t)
	for _, tok := range []string{"", "no-such-token-0123456789", "web-token-0123456789x", jwtToken(t, "HS256", map[string]any{"sub": "x"})} {
		cc := dial(tok)
		_, err := pb.NewLeaseServiceClient(cc).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
		wantCode(t, "Grant", err, codes.Unauthenticated)
		_, _, err = lookup(ctx, cc, "app.web")
		wantCode(t, "Lookup", err, codes.Unauthenticated)
		wantCode(t, "WatchGroup", recvErr(pb.NewRegistryServiceClient(cc).WatchGroup(ctx, &pb.WatchGroupRequest{Group: "app.web"})), codes.Unauthenticated)
		wantCode(t, "Observe", recvErr(pb.NewElectionServiceClient(cc).Observe(ctx, &pb.ObserveRequest{Election: "jobs.a"})), codes.Unauthenticated)
		_, err = pb.NewStatusServiceClient(cc).GetStatus(ctx, &pb.GetStatusRequest{})
		wantCode(t, "GetStatus", err, codes.Unauthenticated)
		rs, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
		if err == nil {
			_ = rs.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
			_, err = rs.Recv()
		}
		wantCode(t, "reflection", err, codes.Unauthenticated)
		if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("health (open): %v", err)
		}
	}
}

// TestAuthScopes: each principal may do what its scopes grant and nothing
// else; leases stay their holders' (another principal with the same scope
// cannot deregister a member it does not own).
func TestAuthScopes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial, _ := authGateway(t)
	web, other, reader, leader, ops := dial("web-token-0123456789"), dial("other-token-0123456789"),
		dial("reader-token-0123456789"), dial("leader-token-0123456789"), dial("ops-token-0123456789")

	grant := func(cc *grpc.ClientConn) (string, error) {
		g, err := pb.NewLeaseServiceClient(cc).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
		return g.GetLeaseId(), err
	}
	webLease, err := grant(web)
	if err != nil {
		t.Fatal(err)
	}
	reg := func(cc *grpc.ClientConn, group, lease string) error {
		_, err := pb.NewRegistryServiceClient(cc).Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "m1", Value: "v", LeaseId: lease})
		return err
	}
	if err := reg(web, "app.web", webLease); err != nil {
		t.Fatalf("web registers in app.: %v", err)
	}
	wantCode(t, "web registers in billing", reg(web, "billing", webLease), codes.PermissionDenied)
	if _, n, err := lookup(ctx, web, "app.web"); err != nil || n != 1 {
		t.Errorf("web looks up app.web: %d members, %v", n, err)
	}
	_, _, err = lookup(ctx, web, "billing")
	wantCode(t, "web looks up billing", err, codes.PermissionDenied)
	wantCode(t, "web watches billing", recvErr(pb.NewRegistryServiceClient(web).WatchGroup(ctx, &pb.WatchGroupRequest{Group: "billing"})), codes.PermissionDenied)
	wantCode(t, "web campaigns", recvErr(pb.NewElectionServiceClient(web).Campaign(ctx, &pb.CampaignRequest{Election: "app.x", Value: "v", LeaseId: webLease})), codes.PermissionDenied)
	_, err = pb.NewStatusServiceClient(web).GetStatus(ctx, &pb.GetStatusRequest{})
	wantCode(t, "web asks for status", err, codes.PermissionDenied)

	// Another principal with the same scope: its lease cannot remove web's
	// member, and web's lease is a secret it does not have.
	otherLease, err := grant(other)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pb.NewRegistryServiceClient(other).Deregister(ctx, &pb.DeregisterRequest{Group: "app.web", MemberId: "m1", LeaseId: otherLease})
	wantCode(t, "other deregisters web's member", err, codes.PermissionDenied)
	wantCode(t, "other registers over web's member", reg(other, "app.web", otherLease), codes.AlreadyExists)

	// A read-only principal reads everywhere, holds no lease, writes nothing.
	if _, _, err := lookup(ctx, reader, "app.web"); err != nil {
		t.Errorf("reader looks up: %v", err)
	}
	_, err = grant(reader)
	wantCode(t, "reader grants a lease", err, codes.PermissionDenied)
	wantCode(t, "reader registers", reg(reader, "app.web", webLease), codes.PermissionDenied)
	_, err = pb.NewLeaseServiceClient(reader).KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: webLease})
	wantCode(t, "reader keeps web's lease alive", err, codes.PermissionDenied)

	// Campaign in jobs. only; barriers anywhere.
	leaderLease, err := grant(leader)
	if err != nil {
		t.Fatal(err)
	}
	camp := func(election string) error {
		return recvErr(pb.NewElectionServiceClient(leader).Campaign(ctx, &pb.CampaignRequest{Election: election, Value: "v", LeaseId: leaderLease}))
	}
	if err := camp("jobs.nightly"); err != nil {
		t.Errorf("leader campaigns in jobs.: %v", err)
	}
	wantCode(t, "leader campaigns in app.", camp("app.x"), codes.PermissionDenied)
	_, err = pb.NewElectionServiceClient(leader).Leader(ctx, &pb.LeaderRequest{Election: "jobs.nightly"})
	wantCode(t, "leader reads the leader (no read right)", err, codes.PermissionDenied)
	if err := recvErr(pb.NewBarrierServiceClient(leader).AwaitBarrier(ctx, &pb.AwaitBarrierRequest{Barrier: "any.b", Threshold: 2, LeaseId: leaderLease})); err != nil {
		t.Errorf("leader enters a barrier: %v", err)
	}

	// Admin: everything, status included.
	if _, err := pb.NewStatusServiceClient(ops).GetStatus(ctx, &pb.GetStatusRequest{}); err != nil {
		t.Errorf("ops asks for status: %v", err)
	}
	if _, _, err := lookup(ctx, ops, "billing"); err != nil {
		t.Errorf("ops looks up billing: %v", err)
	}
}

// TestAuthLimits: a principal's open streams, watched groups, leases and
// request rate are bounded; a refused call says which limit and when to
// retry, and a slot freed is usable again.
func TestAuthLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial, _ := authGateway(t)
	lim := dial("limited-token-0123456789")
	leases := pb.NewLeaseServiceClient(lim)
	var ids []string
	for range 2 {
		g, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, g.GetLeaseId())
	}
	_, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	wantExhausted(t, "third lease", err)
	if _, err := leases.Revoke(ctx, &pb.RevokeRequest{LeaseId: ids[0]}); err != nil {
		t.Fatal(err)
	}
	if _, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)}); err != nil {
		t.Errorf("a lease after one was revoked: %v", err)
	}

	// Streams: 2; watched groups: 1.
	watch := func(sctx context.Context, group string) error {
		return recvErr(pb.NewRegistryServiceClient(lim).WatchGroup(sctx, &pb.WatchGroupRequest{Group: group}))
	}
	s1ctx, stop1 := context.WithCancel(ctx)
	if err := watch(s1ctx, "lim.a"); err != nil {
		t.Fatal(err)
	}
	wantExhausted(t, "a second watched group", watch(ctx, "lim.b"))
	s2ctx, stop2 := context.WithCancel(ctx)
	defer stop2()
	if err := watch(s2ctx, "lim.a"); err != nil {
		t.Fatalf("a second stream on the same group: %v", err)
	}
	wantExhausted(t, "a third stream", watch(ctx, "lim.a"))
	stop1()
	// The server sees the cancel asynchronously: wait for the slot.
	zktest.Eventually(t, 5*time.Second, func() bool {
		c, cancel := context.WithCancel(ctx)
		defer cancel()
		return watch(c, "lim.a") == nil
	}, "a stream slot freed by a cancelled watch")

	// Rate: 1 per second, burst 2.
	slow := dial("slow-token-0123456789")
	var last error
	for range 3 {
		_, _, last = lookup(ctx, slow, "x")
	}
	if d := wantExhausted(t, "third call within a second", last); d > time.Second {
		t.Errorf("retry delay %v, want at most 1s at 1 request per second", d)
	}
}

// TestAuthJWT: a JWT signed with the configured key, from the configured
// issuer for the configured audience, is a principal named by its subject
// with the scopes it carries; any other token is refused.
func TestAuthJWT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial, _ := authGateway(t)
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"sub": "batch", "iss": "test-idp", "aud": []string{"zkcoord"}, "exp": time.Now().Add(time.Hour).Unix(),
			"zkcoord_scopes": []map[string]any{{"prefix": "batch.", "rights": []string{"read", "register"}}}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	good := dial(jwtToken(t, "HS256", claims(nil)))
	g, err := pb.NewLeaseServiceClient(good).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatalf("Grant with a good JWT: %v", err)
	}
	_, err = pb.NewRegistryServiceClient(good).Register(ctx, &pb.RegisterRequest{Group: "batch.jobs", MemberId: "m", Value: "v", LeaseId: g.GetLeaseId()})
	if err != nil {
		t.Errorf("Register in the JWT's scope: %v", err)
	}
	_, err = pb.NewRegistryServiceClient(good).Register(ctx, &pb.RegisterRequest{Group: "app.web", MemberId: "m", Value: "v", LeaseId: g.GetLeaseId()})
	wantCode(t, "Register outside the JWT's scope", err, codes.PermissionDenied)

	for name, tok := range map[string]string{
		"expired":        jwtToken(t, "HS256", claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })),
		"no exp":         jwtToken(t, "HS256", claims(func(c map[string]any) { delete(c, "exp") })),
		"not yet valid":  jwtToken(t, "HS256", claims(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() })),
		"other issuer":   jwtToken(t, "HS256", claims(func(c map[string]any) { c["iss"] = "evil" })),
		"other audience": jwtToken(t, "HS256", claims(func(c map[string]any) { c["aud"] = "other" })),
		"no scopes":      jwtToken(t, "HS256", claims(func(c map[string]any) { delete(c, "zkcoord_scopes") })),
		"bad right": jwtToken(t, "HS256", claims(func(c map[string]any) {
			c["zkcoord_scopes"] = []map[string]any{{"prefix": "", "rights": []string{"root"}}}
		})),
		"alg none":  jwtToken(t, "none", claims(nil)),
		"alg RS256": jwtToken(t, "RS256", claims(nil)),
		"tampered":  jwtToken(t, "HS256", claims(nil))[1:],
	} {
		_, err := pb.NewLeaseServiceClient(dial(tok)).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
		wantCode(t, "JWT "+name, err, codes.Unauthenticated)
	}
}

// TestAuthPolicyReload: a token removed from the policy file stops working
// once the gateway reads the file again; a broken file keeps the last good
// policy.
func TestAuthPolicyReload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial, path := authGateway(t)
	reader := dial("reader-token-0123456789")
	if _, _, err := lookup(ctx, reader, "x"); err != nil {
		t.Fatal(err)
	}
	write := func(data string, mtime time.Time) {
		if err := os.WriteFile(path+".tmp", []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path+".tmp", mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"principals": [`, time.Now().Add(time.Minute)) // broken: ignored
	zktest.Eventually(t, 5*time.Second, func() bool {
		_, _, err := lookup(ctx, reader, "x")
		return err == nil
	}, "the last good policy in force")
	write(`{"principals": [{"name": "ops", "token": "ops-token-0123456789", "scopes": [{"prefix": "", "rights": ["admin"]}]}]}`,
		time.Now().Add(2*time.Minute))
	zktest.Eventually(t, 5*time.Second, func() bool {
		_, _, err := lookup(ctx, reader, "x")
		return status.Code(err) == codes.Unauthenticated
	}, "the removed token refused")
	if _, _, err := lookup(ctx, dial("ops-token-0123456789"), "x"); err != nil {
		t.Errorf("the token kept: %v", err)
	}
}

// TestAuthPeerToken: with auth on and no client certificates, replicas
// reach each other's PeerService with the peer token (an admin principal):
// a keepalive sent to the replica that does not own the lease is forwarded.
func TestAuthPeerToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := authReplicasWith(t, "ops-token-0123456789", "ops-token-0123456789")
	g, err := pb.NewLeaseServiceClient(dial("web-token-0123456789", 0)).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pb.NewLeaseServiceClient(dial("web-token-0123456789", 1)).KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: g.GetLeaseId()}); err != nil {
		t.Fatalf("keepalive forwarded between replicas with the peer token: %v", err)
	}
}

// TestAuthPeerTokenRefused: a replica whose peer token the owner of a
// lease refuses (a principal without the admin right, or a token the
// policy does not know) answers the calls it must forward with UNAVAILABLE
// naming the owner and the refused credentials, not with the owner's
// PERMISSION_DENIED or UNAUTHENTICATED, which told the caller it may not
// use its own lease. (The owner still says PERMISSION_DENIED, with
// LEASE_NOT_HOLDER, to a caller that does not hold the lease:
// TestHostileLeaseIDs.)
func TestAuthPeerTokenRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct{ name, token string }{
		{"non-admin principal", "reader-token-0123456789"},
		{"unknown token", "guessed-token-0123456789"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dial := authReplicasWith(t, "ops-token-0123456789", c.token)
			g, err := pb.NewLeaseServiceClient(dial("web-token-0123456789", 0)).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			misconfigured := pb.NewLeaseServiceClient(dial("web-token-0123456789", 1))
			for _, call := range []struct {
				name string
				do   func() error
			}{
				{"KeepAlive", func() error {
					_, err := misconfigured.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: g.GetLeaseId()})
					return err
				}},
				{"GetLease", func() error {
					_, err := misconfigured.GetLease(ctx, &pb.GetLeaseRequest{LeaseId: g.GetLeaseId()})
					return err
				}},
				{"Revoke", func() error {
					_, err := misconfigured.Revoke(ctx, &pb.RevokeRequest{LeaseId: g.GetLeaseId()})
					return err
				}},
			} {
				err := call.do()
				t.Logf("%s: %v", call.name, err)
				msg := status.Convert(err).Message()
				if code(err) != codes.Unavailable || !strings.Contains(msg, "replica r0") || !strings.Contains(msg, "peer credentials") {
					t.Errorf("%s through the replica whose peer token is refused: %v, want UNAVAILABLE naming r0 and its peer credentials", call.name, err)
				}
			}
			// The lease is untouched: its holder keeps it alive at its owner.
			if _, err := pb.NewLeaseServiceClient(dial("web-token-0123456789", 0)).KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: g.GetLeaseId()}); err != nil {
				t.Errorf("KeepAlive at the owner: %v", err)
			}
		})
	}
}

// TestHostileUnauthorized sends hundreds of calls that no credentials, bad
// credentials or too narrow scopes allow, over every method, against a
// victim's member, candidacy, barrier place and lease, and checks each
// answer; then it reads ZooKeeper's whole tree to check that nothing was
// created or removed, and that the victim still holds everything.
func TestHostileUnauthorized(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dial, _ := authGateway(t)

	// The victim (admin) holds a member, a candidacy and a barrier place in
	// the "secret" names.
	ops := dial("ops-token-0123456789")
	victim, err := pb.NewLeaseServiceClient(ops).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	vl := victim.GetLeaseId()
	if _, err := pb.NewRegistryServiceClient(ops).Register(ctx, &pb.RegisterRequest{Group: "secret.x", MemberId: "m", Value: "v", LeaseId: vl}); err != nil {
		t.Fatal(err)
	}
	cctx, stopCampaign := context.WithCancel(ctx)
	defer stopCampaign()
	if err := recvErr(pb.NewElectionServiceClient(ops).Campaign(cctx, &pb.CampaignRequest{Election: "secret.x", Value: "v", LeaseId: vl})); err != nil {
		t.Fatal(err)
	}
	bctx, stopBarrier := context.WithCancel(ctx)
	defer stopBarrier()
	if err := recvErr(pb.NewBarrierServiceClient(ops).AwaitBarrier(bctx, &pb.AwaitBarrierRequest{Barrier: "secret.x", Threshold: 5, ParticipantId: "p", LeaseId: vl})); err != nil {
		t.Fatal(err)
	}

	type identity struct {
		name, token string
		code        codes.Code // what a call outside its rights gets
		reads       bool       // may read every name
		leases      bool       // may hold leases
		barriers    bool       // may enter every barrier
		own         string     // a lease of its own, when it may hold one
	}
	ids := []*identity{
		{name: "no credentials", code: codes.Unauthenticated},
		{name: "unknown token", token: "guessed-token-0123456789", code: codes.Unauthenticated},
		{name: "victim's lease as token", token: vl, code: codes.Unauthenticated},
		{name: "unsigned JWT", token: jwtToken(t, "none", map[string]any{"sub": "x", "exp": time.Now().Add(time.Hour).Unix(),
			"zkcoord_scopes": []map[string]any{{"prefix": "", "rights": []string{"admin"}}}}), code: codes.Unauthenticated},
		{name: "reader", token: "reader-token-0123456789", code: codes.PermissionDenied, reads: true},
		{name: "web", token: "web-token-0123456789", code: codes.PermissionDenied, leases: true},
		{name: "leader", token: "leader-token-0123456789", code: codes.PermissionDenied, leases: true, barriers: true},
	}
	for _, id := range ids {
		if id.leases {
			g, err := pb.NewLeaseServiceClient(dial(id.token)).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			id.own = g.GetLeaseId()
		}
	}

	truth, _ := zktest.Session(t)
	before := tree(t, truth.Conn())

	// Names outside web's "app." and leader's "jobs." (prefixes without
	// their dot, look-alikes) and the victim's.
	names := []string{"secret.x", "secret", "app", "appx.y", "jobs", "jobsx.y", "billing", "ap"}
	checked := 0
	for _, id := range ids {
		cc := dial(id.token)
		reg, el, bar := pb.NewRegistryServiceClient(cc), pb.NewElectionServiceClient(cc), pb.NewBarrierServiceClient(cc)
		ls, st, peer := pb.NewLeaseServiceClient(cc), pb.NewStatusServiceClient(cc), peerpb.NewPeerServiceClient(cc)
		expect := func(what string, err error) {
			t.Helper()
			checked++
			if status.Code(err) != id.code {
				t.Errorf("%s: %s: %v, want %v", id.name, what, err, id.code)
			}
		}
		leaseFor := vl // the victim's, for those who may hold none
		if id.own != "" {
			leaseFor = id.own
		}
		for _, n := range names {
			q := fmt.Sprintf(" %q", n)
			_, err := reg.Register(ctx, &pb.RegisterRequest{Group: n, MemberId: "m", Value: "v", LeaseId: leaseFor})
			expect("Register"+q, err)
			_, err = reg.Register(ctx, &pb.RegisterRequest{Group: n, MemberId: "p", Value: "v", Persistent: true})
			expect("Register persistent"+q, err)
			_, err = reg.Deregister(ctx, &pb.DeregisterRequest{Group: n, MemberId: "m", LeaseId: leaseFor})
			expect("Deregister"+q, err)
			expect("Campaign"+q, recvErr(el.Campaign(ctx, &pb.CampaignRequest{Election: n, Value: "v", LeaseId: leaseFor})))
			expect("Campaign with a stream lease"+q, recvErr(el.Campaign(ctx, &pb.CampaignRequest{Election: n, Value: "v"})))
			_, err = el.Resign(ctx, &pb.ResignRequest{Election: n, LeaseId: leaseFor})
			expect("Resign"+q, err)
			if !id.barriers {
				expect("AwaitBarrier"+q, recvErr(bar.AwaitBarrier(ctx, &pb.AwaitBarrierRequest{Barrier: n, Threshold: 5, LeaseId: leaseFor})))
				_, err = bar.LeaveBarrier(ctx, &pb.LeaveBarrierRequest{Barrier: n, ParticipantId: "p", LeaseId: leaseFor})
				expect("LeaveBarrier"+q, err)
				_, err = bar.JoinBarrier(ctx, &pb.JoinBarrierRequest{Barrier: n, Threshold: 5, ParticipantId: "p", LeaseId: leaseFor})
				expect("JoinBarrier"+q, err)
				_, err = bar.JoinBarrier(ctx, &pb.JoinBarrierRequest{Barrier: n, Threshold: 5, Ttl: durationpb.New(time.Minute)})
				expect("JoinBarrier with a ttl"+q, err)
			}
			if !id.reads {
				_, err = reg.Lookup(ctx, &pb.LookupRequest{Group: n})
				expect("Lookup"+q, err)
				expect("WatchGroup"+q, recvErr(reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: n})))
				_, err = el.Leader(ctx, &pb.LeaderRequest{Election: n})
				expect("Leader"+q, err)
				expect("Observe"+q, recvErr(el.Observe(ctx, &pb.ObserveRequest{Election: n})))
				expect("AwaitGroup"+q, recvErr(bar.AwaitGroup(ctx, &pb.AwaitGroupRequest{Group: n, MinMembers: 1})))
				_, err = bar.GetBarrier(ctx, &pb.GetBarrierRequest{Barrier: n})
				expect("GetBarrier"+q, err)
				wait := durationpb.New(time.Minute)
				_, err = reg.Lookup(ctx, &pb.LookupRequest{Group: n, AfterRevision: 1, Wait: wait})
				expect("Lookup with a wait"+q, err)
				_, err = el.Leader(ctx, &pb.LeaderRequest{Election: n, AfterRevision: 1, Wait: wait})
				expect("Leader with a wait"+q, err)
				_, err = bar.GetBarrier(ctx, &pb.GetBarrierRequest{Barrier: n, AfterRevision: 1, Wait: wait})
				expect("GetBarrier with a wait"+q, err)
			}
		}
		if !id.leases {
			_, err := ls.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
			expect("Grant", err)
			_, err = ls.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: vl})
			expect("KeepAlive the victim's lease", err)
			ks, err := ls.KeepAliveStream(ctx)
			if err == nil {
				_ = ks.Send(&pb.KeepAliveStreamRequest{LeaseId: vl})
				_, err = ks.Recv()
			}
			expect("KeepAliveStream the victim's lease", err)
			_, err = ls.Revoke(ctx, &pb.RevokeRequest{LeaseId: vl})
			expect("Revoke the victim's lease", err)
			_, err = ls.GetLease(ctx, &pb.GetLeaseRequest{LeaseId: vl})
			expect("GetLease the victim's lease", err)
		}
		_, err := st.GetStatus(ctx, &pb.GetStatusRequest{})
		expect("GetStatus", err)
		_, err = peer.Handoff(ctx, &peerpb.HandoffRequest{LeaseId: vl})
		expect("PeerService.Handoff the victim's lease", err)
		_, err = peer.KeepAlive(ctx, &peerpb.KeepAliveRequest{LeaseId: vl})
		expect("PeerService.KeepAlive", err)
		_, err = peer.GetLease(ctx, &peerpb.GetLeaseRequest{LeaseId: vl})
		expect("PeerService.GetLease", err)
	}
	if checked < 300 {
		t.Errorf("only %d unauthorized calls checked", checked)
	}

	after := tree(t, truth.Conn())
	root := authRoot(t)
	if added, removed := diff(before, after); len(under(root, added)) > 0 || len(under(root, removed)) > 0 {
		t.Errorf("ZooKeeper's tree changed: added %v, removed %v", under(root, added), under(root, removed))
	}
	if r, err := pb.NewRegistryServiceClient(ops).Lookup(ctx, &pb.LookupRequest{Group: "secret.x", MemberId: "m",
		Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); err != nil || len(r.GetMembers()) != 1 {
		t.Errorf("the victim's member after the calls: %v, %v", r, err)
	}
	if l, err := pb.NewElectionServiceClient(ops).Leader(ctx, &pb.LeaderRequest{Election: "secret.x"}); err != nil || l.GetLeader().GetValue() != "v" {
		t.Errorf("the victim's leadership after the calls: %v, %v", l, err)
	}
	if _, err := pb.NewLeaseServiceClient(ops).GetLease(ctx, &pb.GetLeaseRequest{LeaseId: vl}); err != nil {
		t.Errorf("the victim's lease after the calls: %v", err)
	}
	t.Logf("%d unauthorized calls refused as expected; ZooKeeper's tree (%d znodes) unchanged", checked, len(after))
}
