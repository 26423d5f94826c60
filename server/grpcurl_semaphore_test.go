package server_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// TestGrpcurlSemaphore covers example 12 with the grpcurl binary: two
// holders of a semaphore of two permits and a waiter; a holder that goes
// away (its grpcurl killed) hands its permit to the waiter; GetSemaphore,
// TryAcquireSemaphore, ReleaseSemaphore, and another N refused.
func TestGrpcurlSemaphore(t *testing.T) {
	const acquire, get, try, release = "zkcoord.v1.SemaphoreService/AcquireSemaphore", "zkcoord.v1.SemaphoreService/GetSemaphore",
		"zkcoord.v1.SemaphoreService/TryAcquireSemaphore", "zkcoord.v1.SemaphoreService/ReleaseSemaphore"
	sem := gcName(t, "s")
	start := func(value string) *gcStream {
		return grpcurlStart(t, acquire, fmt.Sprintf(`{"semaphore":%q,"permits":2,"value":%q}`, sem, value), "-max-time", "15")
	}
	a, b, c := start("worker-1"), start("worker-2"), (*gcStream)(nil)
	ha, hb := a.next(), b.next()
	for _, h := range []gcMsg{ha, hb} {
		if h.str("status") != "STATUS_HELD" || h.num("token") <= 0 || h.num("permits") != 2 || !gcLeaseRE.MatchString(h.str("leaseId")) {
			t.Fatalf("a holder's first message = %v", h)
		}
	}
	c = start("worker-3")
	if q := c.next(); q.str("status") != "STATUS_QUEUED" || q.num("position") != 0 {
		t.Fatalf("the waiter's first message = %v", q)
	}
	g := gcCall(t, get, fmt.Sprintf(`{"semaphore":%q}`, sem))
	if w := g.list("waiters"); len(g.list("holders")) != 2 || len(w) != 1 || gcMsg(w[0].(map[string]any)).str("value") != "worker-3" {
		t.Fatalf("GetSemaphore = %v", g)
	}
	if tr := gcCall(t, try, fmt.Sprintf(`{"semaphore":%q,"permits":2,"ttl":"30s"}`, sem)); tr.get("acquired") != nil ||
		tr.num("held") != 2 || tr.get("leaseId") != nil {
		t.Fatalf("TryAcquireSemaphore of a full semaphore = %v", tr)
	}
	gcFail(t, acquire, fmt.Sprintf(`{"semaphore":%q,"permits":3}`, sem), "FailedPrecondition", 9)

	// worker-1 goes away: worker-3 holds.
	a.kill()
	if h := c.next(); h.str("status") != "STATUS_HELD" || h.num("token") <= hb.num("token") {
		t.Fatalf("the waiter after a holder went = %v", h)
	}
	// worker-2 is released by its lease: its stream ends RELEASED.
	r := gcCall(t, release, fmt.Sprintf(`{"semaphore":%q,"lease_id":%q}`, sem, hb.str("leaseId")))
	if r.get("wasHolder") != true || r.num("revision") <= 0 {
		t.Fatalf("ReleaseSemaphore = %v", r)
	}
	if m := b.next(); m.str("status") != "STATUS_RELEASED" || m.num("token") != hb.num("token") {
		t.Fatalf("worker-2 after its release = %v", m)
	}
	b.endOK()
	gcFail(t, release, fmt.Sprintf(`{"semaphore":%q,"lease_id":%q}`, sem, hb.str("leaseId")), "NotFound", 5)
	tr := gcCall(t, try, fmt.Sprintf(`{"semaphore":%q,"permits":2,"value":"cron","ttl":"30s"}`, sem))
	if tr.get("acquired") != true || tr.num("token") <= 0 || !gcLeaseRE.MatchString(tr.str("leaseId")) {
		t.Fatalf("TryAcquireSemaphore with a permit free = %v", tr)
	}
}

// semaphoreDoc sets up example 12 of docs/GRPCURL.md with the page's
// names on cc and checks its samples against what run (TestGrpcurlDoc's
// grpcurl, which records the messages it prints) shows.
func semaphoreDoc(t *testing.T, ctx context.Context, cc *grpc.ClientConn, doc string, run func(args ...string) gcResult) {
	t.Helper()
	sems := pb.NewSemaphoreServiceClient(cc)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var held *pb.AcquireSemaphoreResponse
	for _, w := range []string{"worker-1", "worker-2", "worker-3"} {
		s, err := sems.AcquireSemaphore(sctx, &pb.AcquireSemaphoreRequest{Semaphore: "reports", Permits: 2, Value: w})
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if w == "worker-2" {
			held = m
		}
	}
	docSame(t, "GetSemaphore", docBlock(t, doc, `"value": "worker-3"`),
		run("-d", `{"semaphore":"reports"}`, "localhost:7070", "zkcoord.v1.SemaphoreService/GetSemaphore").stdout)
	docSame(t, "TryAcquireSemaphore of a full semaphore", docBlock(t, doc, `"held": 2`),
		run("-d", `{"semaphore":"reports","permits":2,"value":"cron","ttl":"30s"}`, "localhost:7070",
			"zkcoord.v1.SemaphoreService/TryAcquireSemaphore").stdout)
	r := run("-d", `{"semaphore":"reports","permits":3}`, "localhost:7070", "zkcoord.v1.SemaphoreService/AcquireSemaphore")
	docSame(t, "AcquireSemaphore with another N", docBlock(t, doc, "Code: FailedPrecondition\n  Message: semaphore"),
		r.stderr+fmt.Sprintf("exit=%d\n", r.code))
	docSame(t, "ReleaseSemaphore", docBlock(t, doc, `"wasHolder": true`),
		run("-d", fmt.Sprintf(`{"semaphore":"reports","lease_id":%q}`, held.GetLeaseId()), "localhost:7070",
			"zkcoord.v1.SemaphoreService/ReleaseSemaphore").stdout)
}
