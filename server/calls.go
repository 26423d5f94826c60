package server

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/lease"
)

// calls is what the services share besides the recipe each serves: the
// leases their calls and streams run under (a client's, renewed, or one
// granted for the call), the gateway's lifecycle (Shutdown ends streams
// and answers blocking queries; a drain hands stream leases over), and the
// goroutines that outlive a call (revokes of the leases granted for it).
type calls struct {
	leases    *lease.Manager
	streamTTL time.Duration
	log       *slog.Logger

	draining atomic.Bool
	// stopped ends with shutdown: streams end, blocking queries answer.
	stopped  context.Context
	stop     context.CancelFunc
	stopping <-chan struct{} // stopped.Done()
	polls    atomic.Int64    // blocking queries waiting (pollWindow)

	// ctx ends with close: it bounds the goroutines calls leave behind.
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func newCalls(leases *lease.Manager, streamTTL time.Duration, log *slog.Logger) *calls {
	c := &calls{leases: leases, streamTTL: streamTTL, log: log}
	c.stopped, c.stop = context.WithCancel(context.Background())
	c.stopping = c.stopped.Done()
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// close ends the streams and waits for the goroutines calls left.
func (c *calls) close() {
	c.stop()
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

// background runs fn in a goroutine calls owns, with a context that has
// ctx's values (the caller) and ends with close, which waits for it. It
// does nothing once calls is closed.
func (c *calls) background(ctx context.Context, fn func(ctx context.Context)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(c.ctx, cancel)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer cancel()
		defer stop()
		fn(bg)
	}()
}

// revoke revokes a lease that a call or stream granted for itself, when
// it is over. The revoke is done within ctx (the call's) if it can be;
// when ctx ends first, or already has (a stream that ended), it goes on in
// the background, so that the call does not wait for ZooKeeper. (If the
// gateway closes first, a lease left over ends with its TTL.)
func (c *calls) revoke(ctx context.Context, id string) {
	err := c.leases.Revoke(ctx, id)
	switch {
	case err == nil, errors.Is(err, lease.ErrNotFound):
	case ctx.Err() != nil:
		c.background(ctx, func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := c.leases.Revoke(ctx, id); err != nil && !errors.Is(err, lease.ErrNotFound) && c.ctx.Err() == nil {
				c.log.Warn("revoke a lease granted for a call", "lease", lease.KeyOf(id), "err", err)
			}
		})
	default:
		c.log.Warn("revoke a lease granted for a call", "lease", lease.KeyOf(id), "err", err)
	}
}

// streamContext returns a context that is cancelled when the stream ends or
// the gateway shuts down; a stream opened once Shutdown has begun gets it
// cancelled already.
func (c *calls) streamContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if c.stopped.Err() != nil {
		cancel()
		return ctx, cancel
	}
	stop := context.AfterFunc(c.stopped, cancel)
	return ctx, func() { stop(); cancel() }
}

// streamStop is the stream interceptor of the gateway's lifecycle: a
// stream that Shutdown ended, or that was opened once it had begun (in
// the moment before the listener closes), ends with errStopping where its
// handler returns CANCELED: UNAVAILABLE, which clients take as "reopen it
// elsewhere and resume", where CANCELED is final (a leader resuming its
// Campaign on the replica it had just left lost its term). A stream its
// client cancelled keeps CANCELED.
func (c *calls) streamStop(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	err := h(srv, ss)
	if err != nil && c.stopped.Err() != nil && ss.Context().Err() == nil && canceled(err) {
		return toStatus(errStopping)
	}
	return err
}

// canceled reports whether err ends a call with CANCELED as grpc-go sends
// it: a status with that code, or an error that is not a status and wraps
// context.Canceled.
func canceled(err error) bool {
	if st, ok := status.FromError(err); ok {
		return st.Code() == codes.Canceled
	}
	return errors.Is(err, context.Canceled)
}

// callLease returns the lease a unary call that creates something names
// (renewed: using a lease renews it) or, with ttl, one granted for the
// call; granted says so: revoke it if the call fails, so that nothing is
// left half-created.
func (c *calls) callLease(ctx context.Context, leaseID string, ttl *durationpb.Duration) (lease.Lease, bool, error) {
	if leaseID != "" {
		l, err := c.leases.KeepAlive(ctx, leaseID)
		if err != nil {
			return lease.Lease{}, false, err
		}
		return l, false, nil
	}
	if ttl == nil {
		return lease.Lease{}, false, nil
	}
	holder, limit := auth.LeaseQuota(ctx)
	l, err := c.leases.GrantFor(ctx, ttl.AsDuration(), holder, limit)
	if err != nil {
		return lease.Lease{}, false, err
	}
	return l, true, nil
}

// expiry is when the lease l (renewed or granted by the call) ends unless
// kept alive, as the call's answer says it: the expiry this replica holds
// when the call moved the lease here, else the renewal's (the lease may
// well be owned by another replica: a call that changed nothing did not
// take it over).
func (c *calls) expiry(ctx context.Context, l lease.Lease) time.Time {
	if now, err := c.leases.Get(ctx, l.ID); err == nil && now.ExpiresAt.After(l.ExpiresAt) {
		return now.ExpiresAt
	}
	return l.ExpiresAt
}

// streamLease returns the lease a stream runs under: the client's, or an
// implicit one granted now, kept alive while the stream lives and revoked
// when it ends (the returned release, which does not wait for ZooKeeper
// past the stream's ctx: see calls.revoke). If the gateway dies, the
// implicit lease lapses after its TTL.
func (c *calls) streamLease(ctx context.Context, leaseID string, ttl time.Duration) (string, func(), error) {
	if leaseID != "" {
		if _, err := c.leases.KeepAlive(ctx, leaseID); err != nil {
			return "", nil, err
		}
		return leaseID, func() {}, nil
	}
	if ttl == 0 {
		ttl = c.streamTTL
	}
	holder, limit := auth.LeaseQuota(ctx)
	l, err := c.leases.GrantFor(ctx, ttl, holder, limit)
	if err != nil {
		return "", nil, err
	}
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx)) // ends with release
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-kctx.Done():
				return
			case <-t.C:
				if _, err := c.leases.KeepAlive(kctx, l.ID); errors.Is(err, lease.ErrNotFound) {
					return
				}
			}
		}
	}()
	return l.ID, func() {
		stop()
		<-finished
		if c.draining.Load() {
			return // handed off with the others: the client may resume with it
		}
		c.revoke(ctx, l.ID)
	}, nil
}

// Blocking queries (Lookup, Leader and GetBarrier with a wait) answer at
// the latest when their window closes: after the wait plus jitter, before
// the caller's deadline, or when the gateway shuts down.
const (
	// deadlineRoom is the least time a blocking query keeps between its
	// answer and the caller's gRPC deadline, for the answer to get there
	// (and a LINEARIZABLE catch-up to run); a tenth of the time left when
	// that is more, up to maxDeadlineRoom.
	deadlineRoom    = 100 * time.Millisecond
	maxDeadlineRoom = time.Second
)

// pollWindow returns the channel that closes when a blocking query of ctx
// that asked to wait should stop waiting and answer: after wait plus a
// random jitter of up to wait/16 (so that the waiters of one change, which
// all came back at once, do not all come back at once again), early
// enough to answer within ctx's deadline, or when the gateway shuts down
// (its callers then poll again, another replica answers). The query
// counts in GetStatus's polls until release, which also frees its timer.
// ok is false when the request does not wait (no wait, or 0):
// it is answered at once.
func (c *calls) pollWindow(ctx context.Context, wait *durationpb.Duration) (until <-chan struct{}, release func(), ok bool) {
	d := wait.AsDuration()
	if d <= 0 {
		return nil, nil, false
	}
	if j := d / 16; j > 0 {
		d += rand.N(j)
	}
	if dl, has := ctx.Deadline(); has {
		left := time.Until(dl)
		room := min(max(left/10, deadlineRoom), maxDeadlineRoom)
		d = max(min(d, left-room), 0)
	}
	wctx, cancel := context.WithTimeout(c.stopped, d)
	c.polls.Add(1)
	return wctx.Done(), func() {
		cancel()
		c.polls.Add(-1)
	}, true
}
