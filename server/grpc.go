package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/zkcoord/zkcoord/internal/console"
	"github.com/zkcoord/zkcoord/internal/dnsview"
	"github.com/zkcoord/zkcoord/internal/httpgw"
	"github.com/zkcoord/zkcoord/internal/validate"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// NewGRPCServer returns a gRPC server with the gateway's services, server
// reflection and grpc.health.v1 registered, behind the interceptor chain:
// recovery (outermost: a panic becomes INTERNAL), with WithMetrics the
// metrics (every call counted and timed by method and code), logging, for
// streams the gateway's lifecycle (a stream that a shutdown ends CANCELED
// ends UNAVAILABLE: streamStop), then with WithAuth authentication,
// authorization and limits and the lease caller (who may use which
// lease), then validation. It keeps goroutines to run
// calls on (WithStreamWorkers) until it is stopped: Stop or GracefulStop
// it, served or not.
func NewGRPCServer(g *Gateway, opt ...grpc.ServerOption) *grpc.Server {
	s, _ := newServers(g, opt...)
	return s
}

// newServers returns NewGRPCServer's server and, for the HTTP face, the
// same services' unary methods behind the same unary interceptor chain
// (one chain, given to both, so that they cannot drift).
func newServers(g *Gateway, opt ...grpc.ServerOption) (*grpc.Server, *httpgw.Unary) {
	rec := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		g.log.Error("panic in handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})
	unary := []grpc.UnaryServerInterceptor{recovery.UnaryServerInterceptor(rec)}
	stream := []grpc.StreamServerInterceptor{recovery.StreamServerInterceptor(rec)}
	if m := g.opts.metrics; m != nil {
		// Inside recovery (a panic is counted as INTERNAL), outside auth
		// and validation (refused calls are counted with their code).
		unary = append(unary, m.UnaryServerInterceptor())
		stream = append(stream, m.StreamServerInterceptor())
	}
	// Every call is logged when it finishes (calllog.go).
	unary = append(unary, logUnary(g.log))
	stream = append(stream, logStream(g.log), g.c.streamStop)
	if g.opts.auth != nil {
		authn, authz, sAuthn, sAuthz := g.opts.auth.ServerOptions()
		unary = append(unary, authn, authz, leaseCallerUnary)
		stream = append(stream, sAuthn, sAuthz, leaseCallerStream)
	}
	unary = append(unary, validate.UnaryServerInterceptor())
	stream = append(stream, validate.StreamServerInterceptor())
	chain := chainUnary(unary)
	opts := append([]grpc.ServerOption{
		grpc.NumStreamWorkers(uint32(g.opts.workers)),
		// Clients may ping every second to notice a dead or paused replica
		// quickly; the server pings idle clients to drop dead ones.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.ChainUnaryInterceptor(chain),
		grpc.ChainStreamInterceptor(stream...),
	}, opt...)
	s := grpc.NewServer(opts...)
	u := httpgw.NewUnary(chain)
	g.Register(registrars{s, u})
	reflection.Register(s)
	return s, u
}

// chainUnary chains is into one interceptor, the first outermost, as
// grpc.ChainUnaryInterceptor does (whose chain is not exported): the
// grpc.Server and the HTTP face's unary calls share this one.
func chainUnary(is []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return is[0](ctx, req, info, chainStep(is, 0, info, h))
	}
}

func chainStep(is []grpc.UnaryServerInterceptor, i int, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) grpc.UnaryHandler {
	if i == len(is)-1 {
		return h
	}
	return func(ctx context.Context, req any) (any, error) {
		return is[i+1](ctx, req, info, chainStep(is, i+1, info, h))
	}
}

// registrars registers a service on each of them.
type registrars []grpc.ServiceRegistrar

func (rs registrars) RegisterService(desc *grpc.ServiceDesc, impl any) {
	for _, r := range rs {
		r.RegisterService(desc, impl)
	}
}

// Listeners are where Serve serves.
type Listeners struct {
	// GRPC serves gRPC (required).
	GRPC net.Listener
	// HTTP, when set, serves the HTTP/JSON and Connect face of the same
	// gRPC server (package httpgw), and the web console at /console/
	// (package console), over TLS with HTTPTLS when it is set.
	HTTP    net.Listener
	HTTPTLS *tls.Config
	// HTTPMaxBody caps an HTTP request's body (0: httpgw's default).
	HTTPMaxBody int64
	// DNSPacket (UDP) and DNSStream (TCP), when set, serve the DNS view of
	// the registry (package dnsview), configured by DNS (WithGroups is
	// required).
	DNSPacket net.PacketConn
	DNSStream net.Listener
	DNS       []dnsview.Option
}

// Serve serves g on ls, with grpc.health.v1 following the ZooKeeper
// session, until ctx is done; then it drains (health NOT_SERVING, leases
// handed off to the other replicas, streams ended) and stops gracefully, with
// a forced stop after stopTimeout. DNS answers until gRPC has stopped.
func Serve(ctx context.Context, g *Gateway, ls Listeners, stopTimeout time.Duration, opt ...grpc.ServerOption) error {
	var dnsSrv *dnsview.Server
	dnsDone := make(chan error, 1)
	if ls.DNSPacket != nil || ls.DNSStream != nil {
		var err error
		if dnsSrv, err = g.newDNS(ls.DNS); err != nil {
			return err
		}
		go func() { dnsDone <- dnsSrv.Serve(ls.DNSPacket, ls.DNSStream) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			defer cancel()
			_ = dnsSrv.Shutdown(sctx)
			<-dnsDone
		}()
	}
	s, unary := newServers(g, opt...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(registrars{s, unary}, hs)
	var services []string
	for name := range s.GetServiceInfo() {
		services = append(services, name)
	}
	hctx, hcancel := context.WithCancel(ctx)
	hdone := make(chan struct{})
	go func() {
		defer close(hdone)
		ServeHealth(hctx, g, hs, services)
	}()
	defer func() { hcancel(); <-hdone }()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ls.GRPC) }()
	var web *http.Server
	webDone := make(chan error, 1)
	if ls.HTTP != nil {
		h, err := httpgw.Handler(s, httpgw.Options{MaxBodyBytes: ls.HTTPMaxBody, Version: g.opts.version, Healthy: g.serving, Unary: unary})
		if err != nil {
			s.Stop()
			<-served
			return err
		}
		web = httpgw.Server(console.Mount(h))
		web.ErrorLog = slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)
		lis := ls.HTTP
		if ls.HTTPTLS != nil {
			lis = tls.NewListener(lis, ls.HTTPTLS)
		}
		go func() { webDone <- web.Serve(lis) }()
	}
	select {
	case err := <-served:
		s.Stop() // its stream workers
		if web != nil {
			_ = web.Close()
			<-webDone
		}
		return err
	case err := <-webDone:
		s.Stop()
		<-served
		return fmt.Errorf("server: http: %w", err)
	case err := <-dnsDone:
		dnsDone <- nil // for the deferred shutdown
		s.Stop()
		<-served
		if web != nil {
			_ = web.Close()
			<-webDone
		}
		return fmt.Errorf("server: dns: %w", err)
	case <-ctx.Done():
	}
	hs.Shutdown() // NOT_SERVING: load balancers stop sending work here
	dctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := g.Drain(dctx); err != nil {
		g.log.Warn("drain", "err", err)
	}
	Stop(s, g, stopTimeout)
	if web != nil {
		sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := web.Shutdown(sctx); err != nil {
			_ = web.Close()
		}
		<-webDone
	}
	return <-served
}

// ServeHealth keeps hs in step with the ZooKeeper session: SERVING while
// connected, NOT_SERVING otherwise, for the whole server ("") and each
// zkcoord service. It returns when ctx is done.
func ServeHealth(ctx context.Context, g *Gateway, hs *health.Server, services []string) {
	for {
		st, ch := g.replica.Session.Watch()
		want := healthpb.HealthCheckResponse_NOT_SERVING
		if st.State == zkx.StateConnected {
			want = healthpb.HealthCheckResponse_SERVING
		}
		for _, name := range append([]string{""}, services...) {
			hs.SetServingStatus(name, want)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// Stop stops s gracefully: it ends the gateway's streams first (so
// GracefulStop can return), then forces Stop after timeout.
func Stop(s *grpc.Server, g *Gateway, timeout time.Duration) {
	g.Shutdown()
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.Stop()
		<-done
	}
}
