package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/metrics"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/testenv/httpc"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

// TestMetrics serves a gateway with metrics (its own registry) on real
// ZooKeeper reached through a proxy, runs some load over gRPC and HTTP as
// principals of the test policy (register, keepalive, lookup, a watch, a
// campaign, a barrier, a refused call), cuts ZooKeeper off, and checks at
// each step that /metrics shows it: counters that moved, gauges that
// match what is open, ZooKeeper's state and the leader's jeopardy. The
// names the dashboard and the alert rules use must all be scraped.
func TestMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m := metrics.New()
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithObserver(m.ObserveZK))
	src, err := auth.LoadSource(writePolicy(t), func(err error) { t.Logf("policy reload: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	addr, httpURL := testenv.ServeBoth(t, sess, server.WithRoot(lay.Root), server.WithMetrics(m),
		server.WithAuth(auth.Config{Source: src, Open: []string{auth.HealthService}}))
	web := httptest.NewServer(m.Handler())
	defer web.Close()
	scrape := func() scraped { t.Helper(); return scrapeURL(t, web.URL+"/metrics") }
	dial := func(token string) *grpc.ClientConn {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(auth.Bearer(token, false)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	webCC, leaderCC, slowCC := dial("web-token-0123456789"), dial("leader-token-0123456789"), dial("slow-token-0123456789")
	reg, leases := pb.NewRegistryServiceClient(webCC), pb.NewLeaseServiceClient(webCC)
	group := "app." + name(t)

	s0 := scrape()
	s0.want(t, "session connected", "zkcoord_zk_session_connected", nil, eq(1))
	s0.want(t, "state connected", "zkcoord_zk_session_state", labels{"state": "connected"}, eq(1))
	s0.want(t, "replica info", "zkcoord_replica_info", nil, eq(1))

	// A register over gRPC, a keepalive, then one over HTTP: both counted.
	r, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "w1", Value: "a", Ttl: durationpb.New(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leases.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: r.LeaseId}); err != nil {
		t.Fatal(err)
	}
	s1 := scrape()
	registerOK := labels{"grpc_method": "Register", "grpc_code": "OK"}
	s1.want(t, "gRPC Register", "grpc_server_handled_total", registerOK, eq(1))
	s1.want(t, "keepalive served", "zkcoord_keepalives_total", labels{"path": "served"}, atLeast(1))
	s1.want(t, "group commit multis", "zkcoord_zk_group_commit_multis_total", nil, atLeast(1))
	s1.want(t, "group commit calls", "zkcoord_zk_group_commit_calls_total", nil, atLeast(1))
	s1.want(t, "group commit in flight", "zkcoord_zk_group_commit_wait_seconds_total", labels{"phase": "in_flight"}, check{func(v float64) bool { return v > 0 }, "> 0"})
	h := httpc.Client{Base: httpURL, Token: "web-token-0123456789"}
	if resp, err := h.Do(ctx, http.MethodPut, "/v1/groups/"+group+"/members/w2", `{"value":"b","ttl":"30s"}`); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("HTTP register: %v, %v", resp, err)
	}
	s2 := scrape()
	s2.want(t, "HTTP Register counted as gRPC", "grpc_server_handled_total", registerOK, eq(2))
	s2.want(t, "register latency", "grpc_server_handling_seconds", labels{"grpc_method": "Register"}, eq(2))

	// A lookup, and a watch left open.
	if lk, err := reg.Lookup(ctx, &pb.LookupRequest{Group: group}); err != nil || len(lk.Members) != 2 {
		t.Fatalf("lookup: %v, %v", lk, err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	w, err := reg.WatchGroup(wctx, &pb.WatchGroupRequest{Group: group})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	// A campaign, elected; a barrier of two, waiting for its second.
	camp, err := pb.NewElectionServiceClient(leaderCC).Campaign(ctx, &pb.CampaignRequest{Election: "jobs." + name(t), Value: "me"})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := camp.Recv(); err != nil || u.Status != pb.CampaignResponse_STATUS_ELECTED {
		t.Fatalf("campaign: %v, %v", u, err)
	}
	lk, err := pb.NewLockServiceClient(leaderCC).AcquireLock(ctx, &pb.AcquireLockRequest{Lock: "jobs.lock-" + name(t)})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := lk.Recv(); err != nil || u.Status != pb.AcquireLockResponse_STATUS_HELD {
		t.Fatalf("lock: %v, %v", u, err)
	}
	bar, err := pb.NewBarrierServiceClient(leaderCC).AwaitBarrier(ctx, &pb.AwaitBarrierRequest{Barrier: "b." + name(t), Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := bar.Recv(); err != nil || u.Released {
		t.Fatalf("barrier: %v, %v", u, err)
	}
	// A principal over its request rate (burst 2, 1 a second).
	refused := false
	for i := 0; i < 10 && !refused; i++ {
		_, err := pb.NewRegistryServiceClient(slowCC).Lookup(ctx, &pb.LookupRequest{Group: group})
		refused = code(err) == codes.ResourceExhausted
	}
	if !refused {
		t.Fatal("no call of the slow principal refused")
	}

	s3 := scrape()
	s3.want(t, "groups cached", "zkcoord_registry_groups_cached", nil, atLeast(1))
	s3.want(t, "members cached", "zkcoord_registry_members_cached", nil, eq(2))
	s3.want(t, "watch streams", "zkcoord_registry_watch_streams", nil, eq(1))
	s3.want(t, "WatchGroup open", "grpc_server_started_total", labels{"grpc_method": "WatchGroup"}, eq(1))
	s3.want(t, "WatchGroup not handled yet", "grpc_server_handled_total", labels{"grpc_method": "WatchGroup"}, eq(0))
	s3.want(t, "candidates", "zkcoord_election_candidates", nil, eq(1))
	s3.want(t, "leaders", "zkcoord_election_leaders", nil, eq(1))
	s3.want(t, "leader changes", "zkcoord_election_leader_changes_total", nil, eq(1))
	s3.want(t, "barrier waiting", "zkcoord_barrier_waiting", nil, eq(1))
	s3.want(t, "lock held", "zkcoord_lock_acquires", labels{"state": "holding"}, eq(1))
	s3.want(t, "no lock waiting", "zkcoord_lock_acquires", labels{"state": "waiting"}, eq(0))
	s3.want(t, "rate refusals", "zkcoord_limit_refusals_total", labels{"limit": "requests"}, eq(1))
	s3.want(t, "refused call's code", "grpc_server_handled_total", labels{"grpc_method": "Lookup", "grpc_code": "ResourceExhausted"}, eq(1))
	s3.want(t, "ZooKeeper multis timed", "zkcoord_zk_request_duration_seconds", labels{"op": "multi"}, atLeast(3))
	// Two registers' leases, the campaign's, the lock's and the barrier's
	// streams'.
	s3.want(t, "leases granted", "zkcoord_leases_granted_total", nil, eq(5))
	owned := s3.value("zkcoord_leases", labels{"state": "owned"})
	if gone := s3.value("zkcoord_leases_granted_total", nil) + s3.value("zkcoord_leases_adopted_total", nil) -
		s3.value("zkcoord_leases_ended_total", nil); owned != gone || owned != 5 {
		t.Errorf("leases owned %v; granted+adopted-ended %v; want both 5", owned, gone)
	}

	// A change followed live by the watched cache: its journal lag is
	// observed. Tries: one on the held lock (busy), one of a permit
	// (acquired); neither moves the acquires gauges.
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "w3", LeaseId: r.LeaseId}); err != nil {
		t.Fatal(err)
	}
	if ev, err := w.Recv(); err != nil || ev.GetMember().GetId() != "w3" {
		t.Fatalf("watch after registering w3: %v, %v", ev, err)
	}
	lockTry, err := pb.NewLockServiceClient(leaderCC).TryAcquireLock(ctx, &pb.TryAcquireLockRequest{Lock: "jobs.lock-" + name(t), Ttl: durationpb.New(30 * time.Second)})
	if err != nil || lockTry.Acquired {
		t.Fatalf("try of the held lock: %v, %v", lockTry, err)
	}
	semTry, err := pb.NewSemaphoreServiceClient(leaderCC).TryAcquireSemaphore(ctx, &pb.TryAcquireSemaphoreRequest{Semaphore: "jobs.sem-" + name(t), Permits: 2, Ttl: durationpb.New(30 * time.Second)})
	if err != nil || !semTry.Acquired {
		t.Fatalf("try of a permit: %v, %v", semTry, err)
	}
	if _, err := reg.Lookup(ctx, &pb.LookupRequest{Group: group, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); err != nil {
		t.Fatal(err)
	}
	s3b := scrape()
	if n := s3b.value("zkcoord_registry_catchups_total", labels{"journal": "skipped"}) +
		s3b.value("zkcoord_registry_catchups_total", labels{"journal": "listed"}); n != 1 {
		t.Errorf("catch-ups after one LINEARIZABLE Lookup: %v, want 1", n)
	}
	s3b.want(t, "journal lag observed", "zkcoord_registry_journal_lag_seconds", nil, atLeast(1))
	if lag := s3b["zkcoord_registry_journal_lag_seconds"].GetMetric()[0].GetHistogram(); lag.GetSampleSum() > 60 {
		t.Errorf("journal lag sum %vs for a change applied within the test", lag.GetSampleSum())
	}
	s3b.want(t, "lock try busy", "zkcoord_tries_total", labels{"recipe": "lock", "result": "busy"}, eq(1))
	s3b.want(t, "semaphore try acquired", "zkcoord_tries_total", labels{"recipe": "semaphore", "result": "acquired"}, eq(1))
	s3b.want(t, "a try is not a holding call", "zkcoord_semaphore_acquires", labels{"state": "holding"}, eq(0))

	// ZooKeeper cut off: no session, and the leader and the lock's holder
	// told of their jeopardy.
	px.Cut()
	if u, err := camp.Recv(); err != nil || u.Status != pb.CampaignResponse_STATUS_JEOPARDY {
		t.Fatalf("campaign after the cut: %v, %v", u, err)
	}
	if u, err := lk.Recv(); err != nil || u.Status != pb.AcquireLockResponse_STATUS_JEOPARDY {
		t.Fatalf("lock after the cut: %v, %v", u, err)
	}
	s4 := scrape()
	s4.want(t, "session lost", "zkcoord_zk_session_connected", nil, eq(0))
	s4.want(t, "state disconnected", "zkcoord_zk_session_state", labels{"state": "disconnected"}, eq(1))
	s4.want(t, "leader's jeopardy", "zkcoord_jeopardy_notices_total", labels{"recipe": "election"}, eq(1))
	s4.want(t, "lock's jeopardy", "zkcoord_jeopardy_notices_total", labels{"recipe": "lock"}, eq(1))
	s4.want(t, "a lock in jeopardy still held", "zkcoord_lock_acquires", labels{"state": "holding"}, eq(1))
	s4.want(t, "leader in jeopardy still leads", "zkcoord_election_leaders", nil, eq(1))
	px.Restore()
	if u, err := camp.Recv(); err != nil || u.Status != pb.CampaignResponse_STATUS_ELECTED {
		t.Fatalf("campaign after the restore: %v, %v", u, err)
	}
	s5 := scrape()
	s5.want(t, "session back", "zkcoord_zk_session_connected", nil, eq(1))
	s5.want(t, "same term", "zkcoord_election_leader_changes_total", nil, eq(1))

	// The watch ends: handled, and no longer open.
	wcancel()
	zktest.Eventually(t, 10*time.Second, func() bool {
		s := scrape()
		return s.value("zkcoord_registry_watch_streams", nil) == 0 &&
			s.value("grpc_server_handled_total", labels{"grpc_method": "WatchGroup"}) == 1
	}, "the watch's end not counted")

	final := scrape()
	for _, file := range []string{"../deploy/grafana/zkcoord.json", "../deploy/prometheus/alerts.yml"} {
		for _, n := range metricNames(t, file) {
			if !final.has(n) {
				t.Errorf("%s uses %s, which /metrics does not serve", file, n)
			}
		}
	}
	checkMetricsDoc(t, final)
}

// checkMetricsDoc checks that docs/METRICS.md names every zkcoord and gRPC
// server metric served, and that every zkcoord metric it names is served.
func checkMetricsDoc(t *testing.T, s scraped) {
	t.Helper()
	b, err := os.ReadFile("../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for n := range s {
		if metricRE.MatchString(n) && !strings.Contains(doc, "`"+n+"`") {
			t.Errorf("docs/METRICS.md does not name %s", n)
		}
	}
	for _, n := range regexp.MustCompile("`(zkcoord_[a-z_]+)").FindAllStringSubmatch(doc, -1) {
		if !s.has(n[1]) {
			t.Errorf("docs/METRICS.md names %s, which /metrics does not serve", n[1])
		}
	}
}

// TestMetricsOneReplicaEach: a Metrics watches one gateway; a second one
// on the same Metrics is refused, and the first's close frees it.
func TestMetricsOneReplicaEach(t *testing.T) {
	m := metrics.New()
	sess, lay := zktest.Session(t)
	ctx := context.Background()
	g, err := server.New(ctx, sess, server.WithRoot(lay.Root), server.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	// Refused before it writes: its root is never created.
	if g2, err := server.New(ctx, sess, server.WithRoot(lay.Root+"-second"), server.WithMetrics(m)); err == nil {
		g2.Close()
		t.Fatal("a second gateway on one Metrics was accepted")
	}
	if ok, _, err := sess.Exists(ctx, path.Join(sess.Chroot(), lay.Root+"-second")); ok || err != nil {
		t.Errorf("the refused gateway created its root: %v, %v", ok, err)
	}
	g.Close()
	g3, err := server.New(ctx, sess, server.WithRoot(lay.Root), server.WithMetrics(m))
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	g3.Close()
	if _, err := server.New(ctx, sess, server.WithMetrics(nil)); err == nil {
		t.Fatal("nil metrics accepted")
	}
}

// BenchmarkLookupCachedMetrics is BenchmarkLookupCached on a gateway of its
// own, without and with metrics (the gRPC interceptors, the ZooKeeper
// observer): what counting and timing every call costs.
func BenchmarkLookupCachedMetrics(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", on), func(b *testing.B) {
			var opt []zkx.Option
			var sopt []server.Option
			if on {
				m := metrics.New()
				opt, sopt = []zkx.Option{zkx.WithObserver(m.ObserveZK)}, []server.Option{server.WithMetrics(m)}
			}
			sess, lay := zktest.Session(b, opt...)
			cc := testenv.Serve(b, sess, append(sopt, server.WithRoot(lay.Root))...)
			benchLookup(b, pb.NewRegistryServiceClient(cc), pb.Consistency_CONSISTENCY_UNSPECIFIED)
		})
	}
}
