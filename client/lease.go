package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// Session holds a lease and keeps it alive from a goroutine of its own, like
// etcd's concurrency.Session. What is made through the session (members,
// candidacies, barrier participations, semaphore permits) belongs to its
// lease.
//
// When the gateway reports the lease gone (it expired while the client was
// cut off, or someone revoked it), the session restores itself: it grants a
// new lease and registers again every member its Register calls made, then
// goes on. Candidacies, barrier participations and semaphore permits are
// not restored: a Leadership ends with ErrLost, a Permit with
// ErrPermitLost. Lost tells when a lease is lost, and WithOnRestore when
// the session has been restored.
type Session struct {
	c      *Client
	opts   sessionOptions
	ctx    context.Context // ends when Close is called or the client closes
	cancel context.CancelCauseFunc
	donec  chan struct{} // closed when run has returned
	grp    goGroup       // leaderships; run waits for them
	regs   registrations
	locks  lockCounts    // the session's Lock and TryLock calls and holds, by lock
	kick   chan struct{} // asks run for a keepalive now
	mu     sync.Mutex
	gen    leaseGen // guarded by mu
}

// leaseGen is one lease of a session.
type leaseGen struct {
	id      string
	expires time.Time     // when the lease ends unless kept alive
	lost    chan struct{} // closed when the lease is found gone
}

// NewSession grants a lease and starts keeping it alive until Close. ctx
// bounds the grant only; the session lives until Close or the client's
// Close.
func (c *Client) NewSession(ctx context.Context, opts ...SessionOption) (*Session, error) {
	o := sessionOptions{ttl: DefaultTTL}
	for _, fn := range opts {
		fn(&o)
	}
	s := &Session{c: c, opts: o, donec: make(chan struct{}), kick: make(chan struct{}, 1)}
	s.regs.init()
	gen, err := s.grant(ctx)
	if err != nil {
		return nil, err
	}
	s.gen = gen
	s.ctx, s.cancel = context.WithCancelCause(c.ctx)
	if !c.grp.start(s.run) {
		s.cancel(ErrClosed)
		return nil, ErrClosed
	}
	return s, nil
}

// grant asks the gateway for a new lease.
func (s *Session) grant(ctx context.Context) (leaseGen, error) {
	resp, err := s.c.rpc.lease.Grant(ctx, &zkcoordv1.GrantRequest{Ttl: durationpb.New(s.opts.ttl)})
	if err != nil {
		return leaseGen{}, fmt.Errorf("lease: grant: %w", callErr(ctx, err, nil))
	}
	return leaseGen{id: resp.GetLeaseId(), expires: resp.GetExpiresAt().AsTime(), lost: make(chan struct{})}, nil
}

// Lease returns the ID of the session's current lease. It changes when the
// session replaces a lost lease.
func (s *Session) Lease() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen.id
}

// Lost returns a channel that is closed when the session's current lease is
// found gone. Call Lost before Lease to pair them: the lease that Lease then
// returns is the one the channel stands for, or the channel is closed
// already.
func (s *Session) Lost() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen.lost
}

// Expires returns when the session's current lease ends unless a keepalive
// renews it first: the gateway's expires_at from the last renewal. A
// process that must stop acting before the lease could end (what a lease's
// Lock or Leadership guards) stops some margin before it, since a lease
// that the client cannot renew (cut off from the gateway) ends then.
func (s *Session) Expires() time.Time { return s.expires() }

// expires returns when the current lease ends unless it is kept alive.
func (s *Session) expires() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen.expires
}

// Done returns a channel that is closed when the session has stopped: after
// Close, or the client's Close. Losing a lease does not close it: the
// session restores itself (see Lost).
func (s *Session) Done() <-chan struct{} { return s.donec }

// Close stops keeping the lease alive, ends the session's leaderships (their
// contexts end with ErrSessionClosed) and waits for its goroutines, then
// revokes the lease: what it owns is removed at once. ctx bounds the revoke;
// if it ends first the lease expires after its TTL instead. Close is safe to
// call more than once.
func (s *Session) Close(ctx context.Context) error {
	s.cancel(ErrSessionClosed)
	<-s.donec
	if s.c.ctx.Err() != nil {
		return fmt.Errorf("session: revoke: %w", ErrClosed)
	}
	_, err := s.c.rpc.lease.Revoke(ctx, &zkcoordv1.RevokeRequest{LeaseId: s.Lease()})
	if err = callErr(ctx, err, ErrLeaseLost); err != nil && !errors.Is(err, ErrLeaseLost) {
		return fmt.Errorf("session: revoke: %w", err)
	}
	return nil
}

// run keeps the lease alive until the session ends, restoring it when it is
// lost.
func (s *Session) run() {
	defer close(s.donec)
	defer s.grp.closeWait()
	b := s.c.newBackoff()
	unary := false
	for {
		err := s.keepAlive(b, unary)
		switch {
		case s.ctx.Err() != nil:
			return
		case errors.Is(err, ErrLeaseLost):
			s.c.opts.logger.Warn("zkcoord: session lease lost; restoring", "err", err)
			if s.restore() != nil {
				return
			}
			continue
		case !unary && Code(err) == codes.Unimplemented:
			unary = true // the gateway has no KeepAliveStream
			continue
		}
		d := max(b.next(), RetryDelay(err))
		level := slog.LevelDebug
		if !IsTransient(err) {
			level = slog.LevelWarn
		}
		s.c.opts.logger.Log(s.ctx, level, "zkcoord: keepalive failed; retrying", "in", d, "err", err)
		if sleep(s.ctx, d) != nil {
			return
		}
	}
}

// keepAlive renews the lease every third of its TTL over one keepalive
// stream (or unary calls) until a renewal fails, and registers again what a
// restore left pending after each renewal.
func (s *Session) keepAlive(b *backoff, unary bool) error {
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	renew := s.renewUnary
	if !unary {
		stream, err := s.c.rpc.lease.KeepAliveStream(ctx)
		if err != nil {
			return callErr(ctx, err, ErrLeaseLost)
		}
		defer stream.CloseSend()
		renew = func(ctx context.Context, lease string, timeout time.Duration) (*zkcoordv1.KeepAliveStreamResponse, error) {
			// A renewal that takes longer than timeout ends the stream.
			t := time.AfterFunc(timeout, func() { cancel(errKeepAliveTimeout) })
			defer t.Stop()
			if err := stream.Send(&zkcoordv1.KeepAliveStreamRequest{LeaseId: lease}); err != nil {
				_, err = stream.Recv() // Send hides the stream's status
				return nil, err
			}
			return stream.Recv()
		}
	}
	interval := s.opts.ttl / 3
	for {
		lease := s.Lease()
		resp, err := renew(ctx, lease, interval)
		if err != nil {
			return callErr(ctx, err, ErrLeaseLost)
		}
		b.reset()
		interval = max(resp.GetTtl().AsDuration()/3, time.Millisecond)
		s.mu.Lock()
		if s.gen.id == lease {
			s.gen.expires = resp.GetExpiresAt().AsTime()
		}
		s.mu.Unlock()
		s.reregister(ctx, interval)
		select {
		case <-time.After(interval):
		case <-s.kick:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// errKeepAliveTimeout ends a keepalive stream whose answer is late.
var errKeepAliveTimeout = fmt.Errorf("lease: keepalive timed out: %w", errStreamEnded)

// renewUnary renews lease with one KeepAlive call.
func (s *Session) renewUnary(ctx context.Context, lease string, timeout time.Duration) (*zkcoordv1.KeepAliveStreamResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := s.c.rpc.lease.KeepAlive(ctx, &zkcoordv1.KeepAliveRequest{LeaseId: lease})
	if err != nil {
		return nil, err
	}
	return &zkcoordv1.KeepAliveStreamResponse{LeaseId: lease, Ttl: resp.GetTtl(), ExpiresAt: resp.GetExpiresAt()}, nil
}

// restore replaces a lost lease: it closes the lost lease's channel, grants
// a new lease (retrying until it succeeds or the session ends) and marks
// every registration for registering again.
func (s *Session) restore() error {
	s.mu.Lock()
	close(s.gen.lost)
	s.mu.Unlock()
	return s.c.retry(s.ctx, "grant", func(*backoff) error {
		gen, err := s.grant(s.ctx)
		if err != nil {
			// Any grant failure but the session's end is worth retrying.
			return fmt.Errorf("%w: %w", errStreamEnded, err)
		}
		if err := s.regs.lock(s.ctx); err != nil {
			return err
		}
		defer s.regs.unlock()
		s.mu.Lock()
		s.gen = gen
		s.mu.Unlock()
		s.regs.restart()
		return nil
	})
}

// pokeKeepAlive asks the keepalive goroutine to renew the lease now, so that
// a lease found gone by another call is restored soon.
func (s *Session) pokeKeepAlive() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// KeepAlive renews a lease once, for leases a session does not keep (those of
// RegisterTTL), and returns the TTL the lease has from now. It fails with
// ErrLeaseLost once the lease has ended.
func (c *Client) KeepAlive(ctx context.Context, lease string) (time.Duration, error) {
	resp, err := c.rpc.lease.KeepAlive(ctx, &zkcoordv1.KeepAliveRequest{LeaseId: lease})
	if err != nil {
		return 0, fmt.Errorf("lease: keepalive: %w", callErr(ctx, err, ErrLeaseLost))
	}
	return resp.GetTtl().AsDuration(), nil
}

// Revoke ends a lease at once and removes everything it owns. It fails with
// ErrLeaseLost when the lease had already ended.
func (c *Client) Revoke(ctx context.Context, lease string) error {
	_, err := c.rpc.lease.Revoke(ctx, &zkcoordv1.RevokeRequest{LeaseId: lease})
	if err != nil {
		return fmt.Errorf("lease: revoke: %w", callErr(ctx, err, ErrLeaseLost))
	}
	return nil
}
