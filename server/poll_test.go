package server_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/testenv/httpc"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/server"
)

// pollGateway is a gateway of the test's own, on a root the test knows.
type pollGateway struct {
	cc   *grpc.ClientConn
	http httpc.Client
	reg  pb.RegistryServiceClient
	el   pb.ElectionServiceClient
	bar  pb.BarrierServiceClient
	st   pb.StatusServiceClient
}

func dialGateway(t *testing.T, addr, httpURL string) pollGateway {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return pollGateway{cc: cc, http: httpc.Client{Base: httpURL}, reg: pb.NewRegistryServiceClient(cc),
		el: pb.NewElectionServiceClient(cc), bar: pb.NewBarrierServiceClient(cc), st: pb.NewStatusServiceClient(cc)}
}

// pollGateways serves n gateways on one root, each with its own
// ZooKeeper session, and returns them with the root.
func pollGateways(t *testing.T, n int) ([]pollGateway, string) {
	t.Helper()
	sess, lay := zktest.Session(t)
	gs := make([]pollGateway, n)
	for i := range n {
		if i > 0 {
			sess, _ = zktest.Session(t)
		}
		addr, httpURL := testenv.ServeBoth(t, sess, server.WithRoot(lay.Root), server.WithReplicaID(fmt.Sprint("r", i)))
		gs[i] = dialGateway(t, addr, httpURL)
	}
	return gs, lay.Root
}

// polling waits until n blocking queries wait on g.
func (g pollGateway) polling(t *testing.T, n int64) {
	t.Helper()
	var have int64
	zktest.Eventually(t, 10*time.Second, func() bool {
		st, err := g.st.GetStatus(context.Background(), &pb.GetStatusRequest{})
		have = st.GetPolls()
		return err == nil && have == n
	}, "%d polls waiting (have %d)", n, have)
}

func wait(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

type lookedUp struct {
	resp *pb.LookupResponse
	err  error
	at   time.Time
}

func (g pollGateway) pollLookup(ctx context.Context, req *pb.LookupRequest) <-chan lookedUp {
	out := make(chan lookedUp, 1)
	go func() {
		r, err := g.reg.Lookup(ctx, req)
		out <- lookedUp{r, err, time.Now()}
	}()
	return out
}

// TestLookupLongPoll: a Lookup waiting past a revision on one gateway
// answers within milliseconds of a Register through another; with no
// change it answers at the end of its wait (plus at most a sixteenth),
// unchanged; a revision ahead answers at once; a LINEARIZABLE one holds
// every write; a gRPC deadline shorter than the wait gets an answer, not
// DEADLINE_EXCEEDED.
func TestLookupLongPoll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gs, _ := pollGateways(t, 2)
	a, b := gs[0], gs[1]
	group := name(t)
	first, err := b.reg.Lookup(ctx, &pb.LookupRequest{Group: group})
	if err != nil {
		t.Fatal(err)
	}
	rev := first.Revision
	var lags []time.Duration
	for i := range 5 {
		res := b.pollLookup(ctx, &pb.LookupRequest{Group: group, AfterRevision: rev, Wait: wait(time.Minute)})
		b.polling(t, 1)
		reg, err := a.reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: fmt.Sprint("m", i), Value: "v", Persistent: true})
		if err != nil {
			t.Fatal(err)
		}
		registered := time.Now()
		r := <-res
		if r.err != nil || r.resp.Revision < reg.Revision || len(r.resp.Members) != i+1 {
			t.Fatalf("Lookup after %d = %v, %v; want %d members at >= %d", rev, r.resp, r.err, i+1, reg.Revision)
		}
		lags = append(lags, r.at.Sub(registered))
		rev = r.resp.Revision
	}
	t.Logf("a Lookup on one gateway answered a Register through another after %v", lags)
	for _, l := range lags {
		if l > time.Second {
			t.Fatalf("answers came %v after the Registers", lags)
		}
	}

	// No change: the answer at the end of the wait, unchanged.
	start := time.Now()
	got, err := b.reg.Lookup(ctx, &pb.LookupRequest{Group: group, AfterRevision: rev, Wait: wait(400 * time.Millisecond)})
	if took := time.Since(start); err != nil || got.Revision != rev || took < 400*time.Millisecond || took > 400*time.Millisecond*17/16+time.Second {
		t.Fatalf("Lookup with no change = %v, %v after %v; want revision %d after 400-425ms", got, err, took, rev)
	}
	// Ahead of ZooKeeper: at once, with the current revision.
	start = time.Now()
	got, err = b.reg.Lookup(ctx, &pb.LookupRequest{Group: group, AfterRevision: rev + 1<<40, Wait: wait(time.Minute)})
	if err != nil || got.Revision != rev || time.Since(start) > time.Second {
		t.Fatalf("Lookup ahead = %v, %v after %v; want revision %d at once", got, err, time.Since(start), rev)
	}
	// LINEARIZABLE: a write through a, answered through b with the write.
	res := b.pollLookup(ctx, &pb.LookupRequest{Group: group, AfterRevision: rev, Wait: wait(time.Minute),
		Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
	reg, err := a.reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "lin", Value: "v", Persistent: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != nil || r.resp.Revision < reg.Revision || len(r.resp.Members) != 6 {
		t.Fatalf("LINEARIZABLE Lookup = %v, %v; want 6 members at >= %d", r.resp, r.err, reg.Revision)
	}
	// A deadline before the end of the wait: an answer before it.
	dctx, dcancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer dcancel()
	start = time.Now()
	got, err = b.reg.Lookup(dctx, &pb.LookupRequest{Group: group, AfterRevision: reg.Revision, Wait: wait(time.Minute)})
	if took := time.Since(start); err != nil || took > 800*time.Millisecond || took < 500*time.Millisecond {
		t.Fatalf("Lookup with an 800ms deadline and a 1m wait = %v, %v after %v; want an answer in 500-800ms", got, err, took)
	}
}

// TestLeaderLongPoll: a Leader waiting past a revision is not answered by
// a candidate queueing behind the leader, and is by a resign.
func TestLeaderLongPoll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gs, _ := pollGateways(t, 1)
	g := gs[0]
	election := name(t)
	// An Observe stream keeps the gateway's feed of the election loaded,
	// so that the polls below start after its first listing (a poll that
	// starts the feed may answer at once).
	obs, err := g.el.Observe(ctx, &pb.ObserveRequest{Election: election})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.Recv(); err != nil {
		t.Fatal(err)
	}
	ca, err := g.el.Campaign(ctx, &pb.CampaignRequest{Election: election, Value: "a"})
	if err != nil {
		t.Fatal(err)
	}
	ea, err := ca.Recv()
	if err != nil || ea.Status != pb.CampaignResponse_STATUS_ELECTED {
		t.Fatalf("campaign a: %v, %v", ea, err)
	}
	if _, err := obs.Recv(); err != nil {
		t.Fatal(err)
	}
	ld, err := g.el.Leader(ctx, &pb.LeaderRequest{Election: election})
	if err != nil || ld.Leader.GetValue() != "a" {
		t.Fatalf("Leader = %v, %v", ld, err)
	}

	// A candidate queues: the poll waits to the end.
	start := time.Now()
	type led struct {
		resp *pb.LeaderResponse
		err  error
	}
	res := make(chan led, 1)
	go func() {
		r, err := g.el.Leader(ctx, &pb.LeaderRequest{Election: election, AfterRevision: ld.Revision, Wait: wait(700 * time.Millisecond)})
		res <- led{r, err}
	}()
	g.polling(t, 1)
	cb, err := g.el.Campaign(ctx, &pb.CampaignRequest{Election: election, Value: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if q, err := cb.Recv(); err != nil || q.Status != pb.CampaignResponse_STATUS_QUEUED {
		t.Fatalf("campaign b: %v, %v", q, err)
	}
	r := <-res
	if took := time.Since(start); r.err != nil || r.resp.Leader.GetValue() != "a" || r.resp.Revision <= ld.Revision || took < 700*time.Millisecond {
		t.Fatalf("Leader over a queue change = %v, %v after %v; want a, a later revision, after 700ms", r.resp, r.err, took)
	}

	// The leader resigns (its stream ends): the poll answers b.
	go func() {
		r, err := g.el.Leader(ctx, &pb.LeaderRequest{Election: election, AfterRevision: r.resp.Revision, Wait: wait(time.Minute)})
		res <- led{r, err}
	}()
	g.polling(t, 1)
	start = time.Now()
	if _, err := g.el.Resign(ctx, &pb.ResignRequest{Election: election, LeaseId: ea.LeaseId}); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != nil || r.resp.Leader.GetValue() != "b" {
		t.Fatalf("Leader over a resign = %v, %v; want b", r.resp, r.err)
	}
	t.Logf("Leader answered %v after the Resign was sent", time.Since(start))
}

// TestBarrierLongPollHTTP: PHP's barrier, over HTTP: two processes join
// with a PUT and a POST each (no stream), a third follows with GET
// long-polls until released.
func TestBarrierLongPollHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gs, _ := pollGateways(t, 2)
	a, b := gs[0], gs[1]
	bname := name(t)
	r, err := a.http.Do(ctx, "PUT", "/v1/barriers/"+bname+"/participants/p1", map[string]any{"threshold": 2, "ttl": "30s"})
	if err != nil || r.Status != 200 || r.Body["arrived"] != float64(1) || r.Body["released"] != false || str(r.Body, "participantId") != "p1" ||
		len(str(r.Body, "leaseId")) != 32 || str(r.Body, "leaseExpiresAt") == "" {
		t.Fatalf("JoinBarrier: %v, %v", r, err)
	}
	defer a.http.Do(context.Background(), "DELETE", "/v1/leases/"+str(r.Body, "leaseId"), nil)
	rev := str(r.Body, "revision")
	type got struct {
		r   httpc.Response
		err error
	}
	polls := make(chan got, 1)
	go func() {
		for {
			r, err := b.http.Do(ctx, "GET", "/v1/barriers/"+bname+"?afterRevision="+rev+"&wait=60s", nil)
			if err != nil || r.Status != 200 || r.Body["released"] == true {
				polls <- got{r, err}
				return
			}
			rev = str(r.Body, "revision")
		}
	}()
	b.polling(t, 1)
	r, err = a.http.Do(ctx, "POST", "/v1/barriers/"+bname+"/participants", map[string]any{"threshold": 2, "ttl": "30s"})
	if err != nil || r.Status != 200 || r.Body["released"] != true || r.Body["arrived"] != float64(2) || str(r.Body, "participantId") == "" {
		t.Fatalf("JoinBarrier with a generated id: %v, %v", r, err)
	}
	defer a.http.Do(context.Background(), "DELETE", "/v1/leases/"+str(r.Body, "leaseId"), nil)
	p := <-polls
	if p.err != nil || p.r.Status != 200 || p.r.Body["released"] != true || p.r.Body["threshold"] != float64(2) {
		t.Fatalf("GetBarrier long-poll: %v, %v", p.r, p.err)
	}
	// A read without a wait, the same state.
	if r, err := b.http.Do(ctx, "GET", "/v1/barriers/"+bname, nil); err != nil || r.Body["released"] != true || r.Body["arrived"] != float64(2) {
		t.Fatalf("GetBarrier: %v, %v", r, err)
	}
}

// TestLongPollsEndAtDrain: a replica that drains answers its waiting
// polls with the current state (they poll again elsewhere), before it
// stops: no error, no wait to the end.
func TestLongPollsEndAtDrain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := fmt.Sprintf("/%s-%d", name(t), time.Now().UnixNano())
	r := startReplica(t, root, "draining")
	g := dialGateway(t, r.Addr, "")
	group, election, bname := "g", "e", "b"
	reg, err := g.reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "m", Value: "v", Persistent: true})
	if err != nil {
		t.Fatal(err)
	}
	ld, err := g.el.Leader(ctx, &pb.LeaderRequest{Election: election})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := g.bar.JoinBarrier(ctx, &pb.JoinBarrierRequest{Barrier: bname, Threshold: 2, Ttl: wait(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	start := time.Now()
	go func() {
		resp, err := g.reg.Lookup(ctx, &pb.LookupRequest{Group: group, AfterRevision: reg.Revision, Wait: wait(time.Minute)})
		if err == nil && (resp.Revision != reg.Revision || len(resp.Members) != 1) {
			err = fmt.Errorf("Lookup at drain = %v", resp)
		}
		errs <- err
	}()
	go func() {
		resp, err := g.el.Leader(ctx, &pb.LeaderRequest{Election: election, AfterRevision: ld.Revision, Wait: wait(time.Minute)})
		if err == nil && resp.Leader != nil {
			err = fmt.Errorf("Leader at drain = %v", resp)
		}
		errs <- err
	}()
	go func() {
		resp, err := g.bar.GetBarrier(ctx, &pb.GetBarrierRequest{Barrier: bname, AfterRevision: bs.Revision, Wait: wait(time.Minute)})
		if err == nil && (resp.Revision != bs.Revision || resp.Arrived != 1) {
			err = fmt.Errorf("GetBarrier at drain = %v", resp)
		}
		errs <- err
	}()
	select {
	case err := <-errs:
		t.Fatalf("a poll answered before the drain: %v", err)
	default:
	}
	g.polling(t, 3)
	r.Stop()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("polls answered %v after they started: not at the drain", took)
	}
}

// TestLongPollWaitRefused: a negative wait, or one over 5m, is
// INVALID_ARGUMENT naming the field, over gRPC and over HTTP (400), and
// creates nothing in ZooKeeper.
func TestLongPollWaitRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess, lay := zktest.Session(t)
	addr, httpURL := testenv.ServeBoth(t, sess, server.WithRoot(lay.Root))
	g := dialGateway(t, addr, httpURL)
	for _, d := range []time.Duration{-time.Second, 5*time.Minute + time.Millisecond, 1 << 62} {
		calls := map[string]error{}
		_, calls["Lookup"] = g.reg.Lookup(ctx, &pb.LookupRequest{Group: "refused", Wait: wait(d)})
		_, calls["Leader"] = g.el.Leader(ctx, &pb.LeaderRequest{Election: "refused", Wait: wait(d)})
		_, calls["GetBarrier"] = g.bar.GetBarrier(ctx, &pb.GetBarrierRequest{Barrier: "refused", Wait: wait(d)})
		for call, err := range calls {
			st := status.Convert(err)
			var field string
			for _, det := range st.Details() {
				if br, ok := det.(*errdetails.BadRequest); ok && len(br.FieldViolations) > 0 {
					field = br.FieldViolations[0].Field
				}
			}
			if st.Code() != codes.InvalidArgument || field != "wait" {
				t.Errorf("%s with wait %v: %v, want INVALID_ARGUMENT on wait", call, d, err)
			}
		}
	}
	for _, w := range []string{"-1s", "301s", "3600s", "315576000000s", "99999999999999999999s", "1e9s", "forever"} {
		for _, path := range []string{"/v1/groups/refused", "/v1/elections/refused/leader", "/v1/barriers/refused"} {
			r, err := g.http.Do(ctx, "GET", path+"?afterRevision=1&wait="+url.QueryEscape(w), nil)
			if err != nil || r.Status != 400 || r.Code() != int(codes.InvalidArgument) || !strings.Contains(r.Message(), "wait") {
				t.Errorf("GET %s with wait %s: %v, %v; want 400 INVALID_ARGUMENT naming wait", path, w, r, err)
			}
		}
	}
	for _, p := range []string{lay.Group("refused"), lay.Election("refused"), lay.Barrier("refused")} {
		if ok, _, err := sess.Conn().Exists(p); err != nil || ok {
			t.Errorf("%s exists after refused calls (%v)", p, err)
		}
	}
}

// TestManyLongPollsOneWatch: a thousand Lookups waiting on one group of
// one gateway add no ZooKeeper watch to the group's one, and one Register
// answers them all.
func TestManyLongPollsOneWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess, lay := zktest.Session(t)
	addr, httpURL := testenv.ServeBoth(t, sess, server.WithRoot(lay.Root))
	g := dialGateway(t, addr, httpURL)
	group := "herd"
	first, err := g.reg.Lookup(ctx, &pb.LookupRequest{Group: group})
	if err != nil {
		t.Fatal(err)
	}
	watched := func() string {
		var lines []string
		for _, l := range strings.Split(zktest.FourLetter(t, "wchp"), "\n") {
			if strings.HasPrefix(l, lay.Root+"/") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	before := watched()
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := g.reg.Lookup(ctx, &pb.LookupRequest{Group: group, AfterRevision: first.Revision, Wait: wait(time.Minute)})
			if err == nil && len(r.Members) != 1 {
				err = fmt.Errorf("answered without the change: %v", r)
			}
			errs <- err
		}()
	}
	g.polling(t, n)
	if after := watched(); after != before || !strings.Contains(after, lay.Log(group)) {
		t.Fatalf("watched paths under the root with %d polls:\n%s\nbefore them:\n%s", n, after, before)
	}
	start := time.Now()
	if _, err := g.reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "m", Value: "v", Persistent: true}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("%d long-polls answered within %v of the Register", n, time.Since(start))
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuthLongPollLimits: with auth, a waiting blocking query counts as an
// open stream of its principal (and a Lookup's group as watched) until it
// answers; one without a wait does not.
func TestAuthLongPollLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial, _ := authGateway(t)
	lim := pb.NewRegistryServiceClient(dial("limited-token-0123456789")) // streams 2, watched groups 1
	ops := pollGateway{st: pb.NewStatusServiceClient(dial("ops-token-0123456789"))}
	first, err := lim.Lookup(ctx, &pb.LookupRequest{Group: "lim.a"})
	if err != nil {
		t.Fatal(err)
	}
	poll := func(pctx context.Context, group string) <-chan error {
		out := make(chan error, 1)
		go func() {
			_, err := lim.Lookup(pctx, &pb.LookupRequest{Group: group, AfterRevision: first.Revision, Wait: wait(time.Minute)})
			out <- err
		}()
		return out
	}
	p1ctx, stop1 := context.WithCancel(ctx)
	defer stop1()
	p1 := poll(p1ctx, "lim.a")
	ops.polling(t, 1)
	wantExhausted(t, "a long-poll of a second group", <-poll(ctx, "lim.b"))
	p2ctx, stop2 := context.WithCancel(ctx)
	defer stop2()
	poll(p2ctx, "lim.a")
	ops.polling(t, 2)
	wantExhausted(t, "a third long-poll", <-poll(ctx, "lim.a"))
	if _, err := lim.Lookup(ctx, &pb.LookupRequest{Group: "lim.b"}); err != nil {
		t.Errorf("a Lookup without a wait while two polls wait: %v", err)
	}
	stop1()
	if err := <-p1; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled poll: %v", err)
	}
	ops.polling(t, 1)
	p3ctx, stop3 := context.WithCancel(ctx)
	defer stop3()
	p3 := poll(p3ctx, "lim.a")
	ops.polling(t, 2)
	stop3()
	<-p3
}
