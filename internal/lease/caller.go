package lease

import (
	"context"
	"fmt"
)

// Caller is who acts on a lease: every call that names a lease is served
// only for the principal the lease was granted to (its holder, kept in the
// lease record), or for an administrator.
type Caller struct {
	// Name is the caller's principal; it holds the leases granted to that
	// name.
	Name string
	// Admin callers may act on any lease.
	Admin bool
}

type callerKey struct{}

// WithCaller returns ctx carrying c: the Manager's calls made with it are
// authorized for c. A context without a Caller is the gateway acting for
// itself (its sweeps, the leases of its own streams) or a gateway without
// authentication: it may act on any lease.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the Caller of ctx, if it carries one (Peers send it
// along with a forwarded call).
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// authorize reports whether ctx's caller may act on a lease held by holder:
// nil, or an error wrapping ErrNotHolder.
func authorize(ctx context.Context, holder string) error {
	c, ok := CallerFrom(ctx)
	if !ok || c.Admin || c.Name == holder {
		return nil
	}
	return fmt.Errorf("%w: %q may not use it", ErrNotHolder, c.Name)
}
