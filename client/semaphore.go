package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// Semaphore errors.
var (
	// ErrNoPermit reports that TryAcquirePermit found every permit held.
	ErrNoPermit = errors.New("semaphore: no permit free")
	// ErrPermitLost reports that a permit (or a place in the queue) ended
	// without a Release: its lease ended, its stream broke, or its jeopardy
	// deadline passed before the gateway confirmed it.
	ErrPermitLost = errors.New("semaphore: permit lost")
)

type permitStream = grpc.ServerStreamingClient[zkcoordv1.AcquireSemaphoreResponse]

// PermitOption configures an AcquirePermit or a TryAcquirePermit.
type PermitOption func(*permitOptions)

type permitOptions struct {
	value    string
	onQueued func(position int)
}

// WithPermitValue publishes value with the permit (a worker's name, say):
// Semaphore shows it.
func WithPermitValue(value string) PermitOption { return func(o *permitOptions) { o.value = value } }

// WithOnPermitQueued calls fn with the number of waiters ahead each time it
// changes while Acquire waits (0: the next permit freed is this one's), in
// the goroutine that called Acquire.
func WithOnPermitQueued(fn func(position int)) PermitOption {
	return func(o *permitOptions) { o.onQueued = fn }
}

// AcquirePermit waits for a permit of semaphore, which allows permits holders at
// once (its first acquirer sets that number; another one fails with
// FAILED_PRECONDITION), for the session's lease, first come first served,
// and returns the Permit. Cancelling ctx before then gives the place in
// the queue up. A lease holds one place per semaphore: concurrent
// AcquirePermits of one session share it.
//
// The place is the stream's: if the stream to the gateway breaks, the
// gateway gives the place up, so a waiting Acquire queues again (at the
// end) and a held Permit ends with ErrPermitLost; only a gateway that
// drains keeps it (the permit is then in jeopardy until the stream is
// reopened elsewhere and the gateway confirms it).
func (s *Session) AcquirePermit(ctx context.Context, semaphore string, permits int, opts ...PermitOption) (*Permit, error) {
	return s.acquire(ctx, semaphore, permits, 0, opts)
}

// TryAcquirePermit takes a permit of semaphore if one is free, and never waits:
// it fails with ErrNoPermit at once (queueing nothing) when every permit
// is held. The returned Permit is followed as AcquirePermit's is.
func (s *Session) TryAcquirePermit(ctx context.Context, semaphore string, permits int, opts ...PermitOption) (*Permit, error) {
	var o permitOptions
	for _, fn := range opts {
		fn(&o)
	}
	var resp *zkcoordv1.TryAcquireSemaphoreResponse
	err := s.c.retry(ctx, "try acquire "+semaphore, func(*backoff) error {
		var err error
		resp, err = s.c.rpc.semaphore.TryAcquireSemaphore(ctx, &zkcoordv1.TryAcquireSemaphoreRequest{Semaphore: semaphore,
			Permits: int32(permits), Value: o.value, LeaseId: s.Lease()})
		return callErr(ctx, err, ErrLeaseLost)
	})
	switch {
	case err != nil:
		if errors.Is(err, ErrLeaseLost) {
			s.pokeKeepAlive()
		}
		return nil, fmt.Errorf("semaphore: try acquire %s: %w", semaphore, err)
	case !resp.GetAcquired():
		return nil, fmt.Errorf("semaphore: try acquire %s: %w (%d of %d held)", semaphore, ErrNoPermit, resp.GetHeld(), permits)
	}
	// Follow the permit: the stream resumes it (HELD, the same token).
	return s.acquire(ctx, semaphore, permits, resp.GetToken(), opts)
}

// acquire opens the place's stream and waits until it holds; token, when
// not 0, is the permit the stream must resume.
func (s *Session) acquire(ctx context.Context, semaphore string, permits int, token int64, opts []PermitOption) (*Permit, error) {
	var o permitOptions
	for _, fn := range opts {
		fn(&o)
	}
	p := &Permit{s: s, donec: make(chan struct{}), req: &zkcoordv1.AcquireSemaphoreRequest{Semaphore: semaphore,
		Permits: int32(permits), Value: o.value, LeaseId: s.Lease()}}
	p.state.changed = make(chan struct{})
	// The permit's context outlives ctx: it ends with the permit.
	p.ctx, p.cancel = context.WithCancelCause(s.ctx)
	stop := context.AfterFunc(ctx, func() { p.cancel(context.Cause(ctx)) })
	var stream permitStream
	err := s.c.retry(p.ctx, "acquire "+semaphore, func(b *backoff) error {
		var err error
		if stream, err = p.open(); err != nil {
			return err
		}
		for {
			msg, err := stream.Recv()
			if err != nil {
				return callErr(p.ctx, err, ErrLeaseLost)
			}
			b.reset()
			switch msg.GetStatus() {
			case zkcoordv1.AcquireSemaphoreResponse_STATUS_QUEUED:
				if token != 0 {
					return fmt.Errorf("%w: the permit taken was queued again", ErrPermitLost)
				}
				if o.onQueued != nil {
					o.onQueued(int(msg.GetPosition()))
				}
			case zkcoordv1.AcquireSemaphoreResponse_STATUS_HELD:
				if token != 0 && msg.GetToken() != token {
					return fmt.Errorf("%w: the permit taken was not resumed", ErrPermitLost)
				}
				p.held = msg
				return nil
			case zkcoordv1.AcquireSemaphoreResponse_STATUS_LOST:
				return ErrPermitLost
			case zkcoordv1.AcquireSemaphoreResponse_STATUS_RELEASED:
				// An earlier stream of this place, ending, gave it up: queue again.
				return errStreamEnded
			}
		}
	})
	if err == nil && !stop() {
		err = context.Cause(ctx) // ctx ended as the permit came
	}
	stop()
	if err == nil && !s.grp.start(func() { p.run(stream) }) {
		err = ErrSessionClosed
	}
	if err != nil {
		p.cancel(err)
		close(p.donec)
		if errors.Is(err, ErrLeaseLost) {
			s.pokeKeepAlive()
		}
		if !errors.Is(err, ErrPermitLost) || token != 0 {
			p.withdraw()
		}
		return nil, fmt.Errorf("semaphore: acquire %s: %w", semaphore, err)
	}
	return p, nil
}

// Permit is a permit of a semaphore. Its Context ends when the permit
// does; use the resource only while it lasts, and present Token where
// holders are told apart.
type Permit struct {
	s      *Session
	req    *zkcoordv1.AcquireSemaphoreRequest  // the place, to reopen its stream
	held   *zkcoordv1.AcquireSemaphoreResponse // the message that granted the permit
	ctx    context.Context                     // ends with the permit
	cancel context.CancelCauseFunc
	donec  chan struct{} // closed when run has returned
	// releasing: Release is giving the place up (through any gateway: the
	// stream's own then says LOST, not RELEASED).
	releasing atomic.Bool
	mu        sync.Mutex
	state     termState // guarded by mu
}

// Context returns a context that ends when the permit does. Its cause says
// why: ErrReleased, ErrPermitLost (the lease ended, the stream broke, or
// the jeopardy deadline passed), ErrSessionClosed or ErrClosed.
func (p *Permit) Context() context.Context { return p.ctx }

// Token returns the permit's token: the zxid that created its place.
func (p *Permit) Token() int64 { return p.held.GetToken() }

// Slot returns the place's ID (its znode name).
func (p *Permit) Slot() string { return p.held.GetSlot() }

// Semaphore returns the semaphore's name.
func (p *Permit) Semaphore() string { return p.req.GetSemaphore() }

// State reports whether the permit is in jeopardy (the gateway lost
// ZooKeeper, or drains), with its deadline and a channel closed at the
// next change.
func (p *Permit) State() TermState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return TermState{Jeopardy: !p.state.deadline.IsZero(), Deadline: p.state.deadline, Changed: p.state.changed}
}

// Release gives the permit up: the first waiter gets it at once, and the
// permit's context ends with ErrReleased. It returns when the permit has
// ended. The permit ends even if the call fails (cancelling ctx abandons
// the call; the session then gives the place up in the background).
func (p *Permit) Release(ctx context.Context) error {
	if p.ctx.Err() != nil {
		<-p.donec
		if cause := context.Cause(p.ctx); !errors.Is(cause, ErrReleased) {
			return fmt.Errorf("semaphore: release %s: %w", p.Semaphore(), cause)
		}
		return nil
	}
	p.releasing.Store(true)
	err := p.release(ctx)
	p.cancel(ErrReleased)
	<-p.donec
	if err != nil && !errors.Is(err, ErrNotFound) {
		// The stream's end gives the place up, unless its gateway drains:
		// give it up in the background, as withdraw does.
		p.s.grp.start(func() {
			ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
			defer cancel()
			if err := p.release(ctx); err != nil && !errors.Is(err, ErrNotFound) {
				p.s.c.opts.logger.Warn("zkcoord: could not give a semaphore place up; it lasts until its lease ends",
					"semaphore", p.Semaphore(), "err", err)
			}
		})
		return fmt.Errorf("semaphore: release %s: %w", p.Semaphore(), err)
	}
	return nil
}

// release gives the place up, retrying transient errors until ctx ends.
func (p *Permit) release(ctx context.Context) error {
	ctx, done := bind(ctx, p.s.ctx)
	defer done()
	return p.s.c.retry(ctx, "release "+p.Semaphore(), func(*backoff) error {
		_, err := p.s.c.rpc.semaphore.ReleaseSemaphore(ctx, &zkcoordv1.ReleaseSemaphoreRequest{Semaphore: p.Semaphore(),
			LeaseId: p.req.GetLeaseId()})
		return callErr(ctx, err, ErrNotFound)
	})
}

// withdraw gives up a place that the client no longer follows but that
// its lease may still hold (the gateway gives a place up when its stream
// ends, unless it drains), unless the permit's cause says it is gone.
func (p *Permit) withdraw() {
	cause := context.Cause(p.ctx)
	for _, gone := range []error{ErrReleased, ErrLeaseLost, ErrSessionClosed, ErrClosed} {
		if errors.Is(cause, gone) {
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	if err := p.release(ctx); err != nil && !errors.Is(err, ErrNotFound) {
		p.s.c.opts.logger.Warn("zkcoord: could not give a semaphore place up; it lasts until its lease ends",
			"semaphore", p.Semaphore(), "err", err)
	}
}

// open opens a stream for the place.
func (p *Permit) open() (permitStream, error) {
	stream, err := p.s.c.rpc.semaphore.AcquireSemaphore(p.ctx, p.req)
	return stream, callErr(p.ctx, err, ErrLeaseLost)
}

// run follows the permit on its stream until it ends, then gives its
// place up if the lease may still hold it.
func (p *Permit) run(stream permitStream) {
	defer close(p.donec)
	cause, gone := p.follow(stream)
	p.end(cause)
	if !gone {
		p.withdraw()
	}
}

// follow follows the permit until it ends. A broken stream ends it (the
// gateway gives the place up), unless the gateway said it drains: then
// the permit is in jeopardy until the lease's end, and the stream is
// reopened. It returns why the permit ended, and whether the gateway has
// removed its place.
func (p *Permit) follow(stream permitStream) (cause error, gone bool) {
	draining := false
	for {
		msg, err := stream.Recv()
		if err != nil {
			err = callErr(p.ctx, err, ErrLeaseLost)
			if !draining || p.ctx.Err() != nil || !IsTransient(err) {
				return fmt.Errorf("%w: %w", ErrPermitLost, err), false
			}
			if stream, cause, gone = p.reopen(); stream == nil {
				return cause, gone
			}
			draining = false
			continue
		}
		switch msg.GetStatus() {
		case zkcoordv1.AcquireSemaphoreResponse_STATUS_HELD:
			if msg.GetToken() != p.Token() {
				return fmt.Errorf("%w: another permit began", ErrPermitLost), false
			}
			p.jeopardy(time.Time{})
		case zkcoordv1.AcquireSemaphoreResponse_STATUS_JEOPARDY:
			deadline := p.s.expires() // a drain: the permit lasts as long as the lease
			if msg.GetJeopardyDeadline() != nil {
				deadline = msg.GetJeopardyDeadline().AsTime()
			} else {
				draining = true
			}
			p.jeopardy(deadline)
		case zkcoordv1.AcquireSemaphoreResponse_STATUS_RELEASED:
			return ErrReleased, true
		case zkcoordv1.AcquireSemaphoreResponse_STATUS_LOST:
			if p.releasing.Load() {
				return ErrReleased, true // Release's, done through another gateway
			}
			return ErrPermitLost, true
		case zkcoordv1.AcquireSemaphoreResponse_STATUS_QUEUED:
			return fmt.Errorf("%w: the place was queued again", ErrPermitLost), false
		}
	}
}

// reopen reopens the stream after a drain until it yields a first
// message, and returns it if the permit went on; else nil, why the permit
// ended, and whether the gateway has removed its place.
func (p *Permit) reopen() (stream permitStream, cause error, gone bool) {
	var first *zkcoordv1.AcquireSemaphoreResponse
	err := p.s.c.retry(p.ctx, "acquire "+p.Semaphore(), func(*backoff) error {
		var err error
		if stream, err = p.open(); err != nil {
			return err
		}
		first, err = stream.Recv()
		return callErr(p.ctx, err, ErrLeaseLost)
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrPermitLost, err), false
	case first.GetStatus() == zkcoordv1.AcquireSemaphoreResponse_STATUS_HELD && first.GetToken() == p.Token():
		p.jeopardy(time.Time{})
		return stream, nil, false
	case first.GetStatus() == zkcoordv1.AcquireSemaphoreResponse_STATUS_LOST:
		return nil, ErrPermitLost, true
	default:
		return nil, fmt.Errorf("%w: the permit did not resume", ErrPermitLost), false
	}
}

// jeopardy puts the permit in jeopardy until deadline, ending it then, or
// takes it out of jeopardy when deadline is zero.
func (p *Permit) jeopardy(deadline time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.deadline.Equal(deadline) || p.ctx.Err() != nil {
		return
	}
	if p.state.timer != nil {
		p.state.timer.Stop()
		p.state.timer = nil
	}
	p.state.deadline = deadline
	if !deadline.IsZero() {
		p.state.timer = time.AfterFunc(time.Until(deadline), func() {
			p.cancel(fmt.Errorf("%w: its jeopardy deadline passed", ErrPermitLost))
		})
	}
	close(p.state.changed)
	p.state.changed = make(chan struct{})
}

// end ends the permit with cause, unless it has ended already (the first
// cause stays); the permit's stream, opened with its context, closes.
func (p *Permit) end(cause error) {
	p.cancel(cause)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.timer != nil {
		p.state.timer.Stop()
		p.state.timer = nil
	}
	select {
	case <-p.state.changed:
	default:
		close(p.state.changed)
	}
}

// Semaphore reads semaphore: its permits, holders and waiters in queue
// order, and the revision the answer reflects.
func (c *Client) Semaphore(ctx context.Context, semaphore string) (*zkcoordv1.GetSemaphoreResponse, error) {
	resp, err := c.rpc.semaphore.GetSemaphore(ctx, &zkcoordv1.GetSemaphoreRequest{Semaphore: semaphore})
	if err != nil {
		return nil, fmt.Errorf("semaphore: get %s: %w", semaphore, callErr(ctx, err, ErrNotFound))
	}
	return resp, nil
}
