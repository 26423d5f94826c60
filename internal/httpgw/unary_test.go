package httpgw

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// newServer is a grpc.Server with Handler's services (the zkcoord ones
// unimplemented) and health.
func newServer(health healthpb.HealthServer, opt ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(opt...)
	registerZkcoord(s, pb.UnimplementedRegistryServiceServer{}, pb.UnimplementedLeaseServiceServer{})
	healthpb.RegisterHealthServer(s, health)
	return s
}

// registerZkcoord registers registry and leases on r, and the other
// zkcoord services unimplemented.
func registerZkcoord(r grpc.ServiceRegistrar, registry pb.RegistryServiceServer, leases pb.LeaseServiceServer) {
	pb.RegisterLeaseServiceServer(r, leases)
	pb.RegisterRegistryServiceServer(r, registry)
	pb.RegisterElectionServiceServer(r, pb.UnimplementedElectionServiceServer{})
	pb.RegisterBarrierServiceServer(r, pb.UnimplementedBarrierServiceServer{})
	pb.RegisterLockServiceServer(r, pb.UnimplementedLockServiceServer{})
	pb.RegisterSemaphoreServiceServer(r, pb.UnimplementedSemaphoreServiceServer{})
	pb.RegisterInspectServiceServer(r, pb.UnimplementedInspectServiceServer{})
	pb.RegisterStatusServiceServer(r, pb.UnimplementedStatusServiceServer{})
}

// fakeHealth answers Check by the service asked about, and reports what
// its call carried.
type fakeHealth struct {
	healthpb.UnimplementedHealthServer
	answer healthpb.HealthCheckResponse_ServingStatus
}

func (f *fakeHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	method, _ := grpc.Method(ctx)
	if err := grpc.SetHeader(ctx, metadata.Pairs("x-seen-method", method)); err != nil {
		return nil, err
	}
	switch req.GetService() {
	case "refused":
		st, err := status.New(codes.FailedPrecondition, "refused: try later").WithDetails(&errdetails.ErrorInfo{Reason: "LATER", Domain: "zkcoord"})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	case "raw":
		return nil, io.ErrUnexpectedEOF // no status: UNKNOWN
	case "deadline":
		if _, ok := ctx.Deadline(); !ok {
			return nil, status.Error(codes.Internal, "no deadline")
		}
	case "who":
		md, _ := metadata.FromIncomingContext(ctx)
		p, _ := peer.FromContext(ctx)
		_, tls := p.AuthInfo.(credentials.TLSInfo)
		if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer tok" || !tls || p.Addr == nil || p.Addr.String() == "" {
			return nil, status.Errorf(codes.Internal, "authorization %q, TLS %v, peer %v", got, tls, p.Addr)
		}
	}
	return &healthpb.HealthCheckResponse{Status: f.answer}, nil
}

// TestUnaryLikeGRPCServer: a unary call served in process answers exactly
// as the same call through grpc.Server.ServeHTTP (status, body, the
// headers the handler set), errors with their code, message and details
// included, with the caller's TLS identity, headers as metadata, deadline
// and method; and it goes through the interceptor, not the grpc.Server.
func TestUnaryLikeGRPCServer(t *testing.T) {
	var seen []string
	icpt := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		seen = append(seen, info.FullMethod)
		return h(ctx, req)
	}
	// Through the grpc.Server: it answers SERVING.
	viaServer := newServer(&fakeHealth{answer: healthpb.HealthCheckResponse_SERVING}, grpc.UnaryInterceptor(icpt))
	// In process: the grpc.Server's service would answer NOT_SERVING, the
	// Unary's SERVING; the answer shows which one served.
	s := newServer(&fakeHealth{answer: healthpb.HealthCheckResponse_NOT_SERVING})
	u := NewUnary(icpt)
	u.RegisterService(&healthpb.Health_ServiceDesc, &fakeHealth{answer: healthpb.HealthCheckResponse_SERVING})

	call := func(h http.Handler, service string) (int, string, http.Header) {
		t.Helper()
		srv := httptest.NewTLSServer(h)
		defer srv.Close()
		req, err := http.NewRequest("POST", srv.URL+"/grpc.health.v1.Health/Check", strings.NewReader(`{"service":"`+service+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("Connect-Timeout-Ms", "60000")
		req.Header.Set("Connect-Protocol-Version", "1")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	// A body limit above the grpc.Server's 4 MiB message limit: the
	// "big" request passes the first and not the second, on both paths.
	want, err := Handler(viaServer, Options{MaxBodyBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Handler(s, Options{MaxBodyBytes: 8 << 20, Unary: u})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 5<<20)
	for _, service := range []string{"", "refused", "raw", "deadline", "who", big} {
		seen = nil
		wc, wb, wh := call(want, service)
		if service == big {
			if len(seen) != 0 || wc == http.StatusOK {
				t.Fatalf("a 5 MiB request through the grpc.Server: %d %s, interceptor saw %q", wc, wb, seen)
			}
			// The same code and status (the message is each library's own).
			if gc, gb, _ := call(got, service); gc != wc || !strings.Contains(gb, `"code":"resource_exhausted"`) || !strings.Contains(wb, `"code":"resource_exhausted"`) {
				t.Errorf("a 5 MiB request in process: %d %s\nthrough the grpc.Server: %d %s", gc, gb, wc, wb)
			}
			continue
		}
		if len(seen) != 1 || seen[0] != "/grpc.health.v1.Health/Check" {
			t.Fatalf("%q through the grpc.Server: interceptor saw %q (%d %s)", service, seen, wc, wb)
		}
		seen = nil
		gc, gb, gh := call(got, service)
		if len(seen) != 1 || seen[0] != "/grpc.health.v1.Health/Check" {
			t.Errorf("%q in process: interceptor saw %q, want the method once", service, seen)
		}
		if gc != wc || gb != wb {
			t.Errorf("%q in process: %d %s\nthrough the grpc.Server: %d %s", service, gc, gb, wc, wb)
		}
		if g, w := gh.Get("X-Seen-Method"), wh.Get("X-Seen-Method"); g != w {
			t.Errorf("%q: header set by the handler: in process %q, through the grpc.Server %q", service, g, w)
		}
		t.Logf("%q: %d %s", service, gc, gb)
	}
}

// TestUnaryStreamsFallThrough: a service's streams still reach the
// grpc.Server.
func TestUnaryStreamsFallThrough(t *testing.T) {
	s := newServer(&fakeHealth{})
	u := NewUnary(nil)
	u.RegisterService(&healthpb.Health_ServiceDesc, &fakeHealth{})
	h, err := Handler(s, Options{Unary: u})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A Connect server stream: an envelope of the JSON request.
	body := `{}`
	env := append([]byte{0, 0, 0, 0, byte(len(body))}, body...)
	req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/grpc.health.v1.Health/Watch", strings.NewReader(string(env)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/connect+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// UnimplementedHealthServer's Watch: the grpc.Server's answer.
	if !strings.Contains(string(b), "method Watch not implemented") {
		t.Fatalf("Watch: %d %q, want the grpc.Server's UNIMPLEMENTED", resp.StatusCode, b)
	}
}
