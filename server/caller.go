package server

import (
	"context"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"google.golang.org/grpc"

	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/lease"
)

// The lease-caller interceptors tell the lease manager who calls: the
// authenticated principal, whose leases are its own; a principal with the
// admin right over every name may act on any lease. They run after
// authentication; without auth no caller is set and any lease id works.

func leaseCallerUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(withLeaseCaller(ctx), req)
}

func leaseCallerStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	w := middleware.WrapServerStream(ss)
	w.WrappedContext = withLeaseCaller(ss.Context())
	return handler(srv, w)
}

func withLeaseCaller(ctx context.Context) context.Context {
	p := auth.PrincipalFrom(ctx)
	if p == nil {
		return ctx
	}
	return lease.WithCaller(ctx, lease.Caller{Name: p.Name, Admin: p.Allows(auth.Admin, "")})
}
