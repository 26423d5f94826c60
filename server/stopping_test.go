package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/httpgw"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// TestStreamsEndUnavailableOnceStopping: once a drain has handed the
// leases off and shut the gateway down, every stream ends with
// UNAVAILABLE, which clients take as "resume elsewhere": one open before
// it, and one of each kind opened after it, in the moment before the
// listener closes (a client resuming on the replica it just left), whose
// handlers see their context end at once, some while adopting the lease
// back. CANCELED there was final for a client: a leader resuming its
// Campaign lost its term on a rolling restart (client TestRollingRestart,
// 1 run in 100).
func TestStreamsEndUnavailableOnceStopping(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g, srv, web, cc := serveGateway(t, ctx)
	leases, elections := pb.NewLeaseServiceClient(cc), pb.NewElectionServiceClient(cc)
	gr, err := leases.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	before, err := elections.Campaign(ctx, &pb.CampaignRequest{Election: "e", Value: "v", LeaseId: gr.GetLeaseId()})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := before.Recv(); err != nil || m.GetStatus() != pb.CampaignResponse_STATUS_ELECTED {
		t.Fatalf("campaign: %v, %v", m, err)
	}
	// The drain hands the lease off, then shuts down: a stream opened with
	// the lease after it adopts it back, with a context already ended.
	if err := g.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	id := gr.GetLeaseId()
	unavailable := func(what string, recv func() error) {
		t.Helper()
		for {
			err := recv()
			if err == nil {
				continue // a message sent before the stream saw the shutdown
			}
			if c := status.Code(err); c != codes.Unavailable {
				t.Errorf("%s: ended with %v, want UNAVAILABLE", what, err)
			}
			return
		}
	}
	recvBefore, _ := recvOf(before, nil)
	unavailable("a Campaign open before the drain", recvBefore)

	sctx, scancel := context.WithTimeout(ctx, 10*time.Second) // a stream that never ends fails here
	defer scancel()
	reg, locks := pb.NewRegistryServiceClient(cc), pb.NewLockServiceClient(cc)
	sems, barriers := pb.NewSemaphoreServiceClient(cc), pb.NewBarrierServiceClient(cc)
	opened := map[string]func() (func() error, error){
		"Campaign": func() (func() error, error) {
			return recvOf(elections.Campaign(sctx, &pb.CampaignRequest{Election: "e", Value: "v", LeaseId: id}))
		},
		"Observe": func() (func() error, error) {
			return recvOf(elections.Observe(sctx, &pb.ObserveRequest{Election: "e"}))
		},
		"AcquireLock": func() (func() error, error) {
			return recvOf(locks.AcquireLock(sctx, &pb.AcquireLockRequest{Lock: "l", LeaseId: id}))
		},
		"AcquireSemaphore": func() (func() error, error) {
			return recvOf(sems.AcquireSemaphore(sctx, &pb.AcquireSemaphoreRequest{Semaphore: "s", Permits: 1, LeaseId: id}))
		},
		"AwaitBarrier": func() (func() error, error) {
			return recvOf(barriers.AwaitBarrier(sctx, &pb.AwaitBarrierRequest{Barrier: "b", Threshold: 2, LeaseId: id}))
		},
		"AwaitGroup": func() (func() error, error) {
			return recvOf(barriers.AwaitGroup(sctx, &pb.AwaitGroupRequest{Group: "g", MinMembers: 1}))
		},
		"WatchGroup": func() (func() error, error) {
			return recvOf(reg.WatchGroup(sctx, &pb.WatchGroupRequest{Group: "g"}))
		},
		"Watch":           func() (func() error, error) { return recvOf(reg.Watch(sctx)) },
		"KeepAliveStream": func() (func() error, error) { return recvOf(leases.KeepAliveStream(sctx)) },
	}
	for svc, info := range srv.GetServiceInfo() {
		for _, m := range info.Methods {
			if _, ok := opened[m.Name]; (m.IsClientStream || m.IsServerStream) && strings.HasPrefix(svc, "zkcoord.v1.") && !ok {
				t.Errorf("%s.%s: a stream this test does not open", svc, m.Name)
			}
		}
	}
	for name, open := range opened {
		recv, err := open()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		unavailable(name+" opened after the drain", recv)
	}
	// The HTTP face's streams are the same streams, through the transcoder.
	body := strings.NewReader(`{"value": "v", "leaseId": "` + id + `"}`)
	req, err := http.NewRequestWithContext(sctx, http.MethodPost, web.URL+"/v1/elections/e:campaign", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := web.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"code":14`) {
		t.Errorf("HTTP campaign opened after the drain: %s %s, want 503 with code 14 (UNAVAILABLE)", resp.Status, b)
	}
}

// serveGateway serves a gateway on a ZooKeeper session of its own, at a
// fresh root, and returns it with its gRPC server, its HTTP face and a
// connection to the gRPC server.
func serveGateway(t *testing.T, ctx context.Context) (*Gateway, *grpc.Server, *httptest.Server, *grpc.ClientConn) {
	t.Helper()
	sess, lay := zktest.Session(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(ctx, sess, WithRoot(lay.Root+"/zkcoord"), WithAdvertise(lis.Addr().String()))
	if err != nil {
		lis.Close()
		t.Fatal(err)
	}
	s, unary := newServers(g)
	h, err := httpgw.Handler(s, httpgw.Options{Unary: unary})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(h)
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		web.Close()
		cc.Close()
		s.Stop()
		<-served
		g.Close()
	})
	return g, s, web, cc
}

// recvOf returns a function that receives the next message of a stream
// just opened (a client's Recv, its message dropped), or the open's error.
func recvOf[T any](st interface{ Recv() (T, error) }, err error) (func() error, error) {
	return func() error { _, err := st.Recv(); return err }, err
}
