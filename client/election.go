package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

type campaignStream = grpc.ServerStreamingClient[zkcoordv1.CampaignResponse]

// Campaign enters election with value (published while leading, an endpoint
// say), the candidacy owned by the session's lease, and blocks until it is
// elected. It returns the Leadership of the term; WithOnQueued reports the
// place in the queue meanwhile. Cancelling ctx before then withdraws the
// candidacy (Campaign resigns it before returning the cause of ctx). It
// fails with ErrLost when the candidacy ends without a resign, ErrResigned
// when Resign withdrew it, and ErrLeaseLost when the session's lease is gone.
//
// The candidacy belongs to the lease, not to the stream: a broken stream is
// reopened with backoff and the gateway resumes the candidacy. A lease holds
// at most one candidacy per election, so concurrent Campaigns of one session
// in one election share it.
func (s *Session) Campaign(ctx context.Context, election, value string, opts ...CampaignOption) (*Leadership, error) {
	var o campaignOptions
	for _, fn := range opts {
		fn(&o)
	}
	l := &Leadership{
		s:     s,
		req:   &zkcoordv1.CampaignRequest{Election: election, Value: value, LeaseId: s.Lease()},
		donec: make(chan struct{}),
	}
	// The term's context outlives ctx: it ends with the term.
	l.init(s.ctx)
	stop := context.AfterFunc(ctx, func() { l.cancel(context.Cause(ctx)) })
	var stream campaignStream
	err := s.c.retry(l.ctx, "campaign "+election, func(b *backoff) error {
		var err error
		stream, err = l.open()
		if err != nil {
			return err
		}
		for {
			msg, err := stream.Recv()
			if err != nil {
				return callErr(l.ctx, err, ErrLeaseLost)
			}
			b.reset()
			switch msg.GetStatus() {
			case zkcoordv1.CampaignResponse_STATUS_QUEUED:
				if o.onQueued != nil {
					o.onQueued(int(msg.GetPosition()), msg.GetLeader())
				}
			case zkcoordv1.CampaignResponse_STATUS_ELECTED:
				l.elected = msg
				return nil
			case zkcoordv1.CampaignResponse_STATUS_LOST:
				return ErrLost
			case zkcoordv1.CampaignResponse_STATUS_RESIGNED:
				return ErrResigned
			}
		}
	})
	if err == nil && !stop() {
		err = context.Cause(ctx) // ctx ended as the term began
	}
	stop()
	if err == nil && !s.grp.start(func() { l.run(stream) }) {
		err = ErrSessionClosed
	}
	if err != nil {
		l.cancel(err)
		close(l.donec)
		if errors.Is(err, ErrLeaseLost) {
			s.pokeKeepAlive()
		}
		if !errors.Is(err, ErrLost) { // LOST: the gateway removed it
			l.withdraw()
		}
		return nil, fmt.Errorf("election: campaign %s: %w", election, err)
	}
	return l, nil
}

// Leadership is a term as leader of an election. Its Context ends when the
// term does; act as leader only while it lasts, and present Token to
// resources that fence.
type Leadership struct {
	term    // the term's context and jeopardy (State)
	s       *Session
	req     *zkcoordv1.CampaignRequest  // the candidacy, to reopen its stream
	elected *zkcoordv1.CampaignResponse // the message that began the term
	donec   chan struct{}               // closed when run has returned
}

// Context returns a context that ends when the term does. Its cause says
// why: ErrLost (the lease or the candidacy ended, or the term could not be
// confirmed after the stream broke), ErrResigned, ErrJeopardy,
// ErrSessionClosed or ErrClosed.
func (l *Leadership) Context() context.Context { return l.ctx }

// Token returns the term's fencing token: it strictly increases over the
// successive leaders of the election.
func (l *Leadership) Token() int64 { return l.elected.GetFencingToken() }

// Candidate returns the candidacy's ID (its znode name).
func (l *Leadership) Candidate() string { return l.elected.GetCandidate() }

// Election returns the election's name.
func (l *Leadership) Election() string { return l.req.GetElection() }

// Resign steps down: the next candidate is elected at once, and the term's
// context ends with ErrResigned. It returns when the term has ended. It
// fails with ErrNotLeader when the term had already ended otherwise. The
// term ends even if the call fails (cancelling ctx abandons it, say); the
// candidacy may then remain until the session's lease ends: close the
// session to be sure.
func (l *Leadership) Resign(ctx context.Context) error {
	if l.ctx.Err() != nil {
		<-l.donec
		if cause := context.Cause(l.ctx); !errors.Is(cause, ErrResigned) {
			return fmt.Errorf("%w: %w", ErrNotLeader, cause)
		}
		return nil
	}
	wasLeader, err := l.resign(ctx)
	l.cancel(ErrResigned)
	<-l.donec
	if err != nil {
		return fmt.Errorf("election: resign %s: %w", l.Election(), err)
	}
	if !wasLeader {
		return fmt.Errorf("election: resign %s: %w", l.Election(), ErrNotLeader)
	}
	return nil
}

// resign withdraws the candidacy, retrying transient errors until ctx ends.
func (l *Leadership) resign(ctx context.Context) (wasLeader bool, err error) {
	ctx, release := bind(ctx, l.s.ctx)
	defer release()
	err = l.s.c.retry(ctx, "resign "+l.Election(), func(*backoff) error {
		resp, err := l.s.c.rpc.election.Resign(ctx, &zkcoordv1.ResignRequest{Election: l.Election(), LeaseId: l.req.GetLeaseId()})
		wasLeader = resp.GetWasLeader()
		return callErr(ctx, err, ErrNotLeader)
	})
	return wasLeader, err
}

// withdrawTimeout bounds the resign of a candidacy the client gives up.
const withdrawTimeout = 5 * time.Second

// withdraw resigns a candidacy that the client gave up but that its lease
// may still hold: the gateway keeps a candidacy of a client's lease when
// its stream closes. It does nothing when the term's cause says that the
// candidacy or its lease is gone.
func (l *Leadership) withdraw() {
	cause := context.Cause(l.ctx)
	for _, gone := range []error{ErrResigned, ErrLeaseLost, ErrSessionClosed, ErrClosed} {
		if errors.Is(cause, gone) {
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	if _, err := l.resign(ctx); err != nil && !errors.Is(err, ErrNotLeader) {
		l.s.c.opts.logger.Warn("zkcoord: could not withdraw a candidacy; it lasts until its lease ends",
			"election", l.Election(), "err", err)
	}
}

// open opens a campaign stream for the candidacy.
func (l *Leadership) open() (campaignStream, error) {
	stream, err := l.s.c.rpc.election.Campaign(l.ctx, l.req)
	return stream, callErr(l.ctx, err, ErrLeaseLost)
}

// run follows the term on its stream until it ends, then withdraws the
// candidacy if the lease may still hold it.
func (l *Leadership) run(stream campaignStream) {
	defer close(l.donec)
	cause, gone := l.follow(stream)
	l.end(cause)
	if !gone {
		l.withdraw()
	}
}

// follow follows the term until it ends, putting it in jeopardy while the
// gateway reports JEOPARDY or while the stream is being reopened. It returns
// why the term ended, and whether the gateway has removed the candidacy.
func (l *Leadership) follow(stream campaignStream) (cause error, gone bool) {
	for {
		msg, err := stream.Recv()
		if err != nil {
			err = callErr(l.ctx, err, ErrLeaseLost)
			if l.ctx.Err() != nil || !IsTransient(err) {
				return fmt.Errorf("%w: %w", ErrLost, err), false
			}
			// The candidacy outlives its stream, but no longer than the
			// lease: the term is in jeopardy until then.
			l.jeopardy(l.s.expires())
			if stream, cause, gone = l.reopen(); stream == nil {
				return cause, gone
			}
			continue
		}
		switch msg.GetStatus() {
		case zkcoordv1.CampaignResponse_STATUS_ELECTED:
			if msg.GetFencingToken() != l.Token() {
				return fmt.Errorf("%w: a new term began", ErrLost), false
			}
			l.jeopardy(time.Time{})
		case zkcoordv1.CampaignResponse_STATUS_JEOPARDY:
			deadline := l.s.expires() // the lease's end, if the gateway gives no deadline
			if msg.GetJeopardyDeadline() != nil {
				deadline = msg.GetJeopardyDeadline().AsTime()
			}
			l.jeopardy(deadline)
		case zkcoordv1.CampaignResponse_STATUS_RESIGNED:
			return ErrResigned, true
		case zkcoordv1.CampaignResponse_STATUS_LOST:
			return ErrLost, true
		case zkcoordv1.CampaignResponse_STATUS_QUEUED:
			return fmt.Errorf("%w: the candidacy was queued again", ErrLost), false
		}
	}
}

// reopen reopens the stream until it yields a first message, and returns
// it if the term went on; else nil, why the term ended, and whether the
// gateway has removed the candidacy.
func (l *Leadership) reopen() (stream campaignStream, cause error, gone bool) {
	var first *zkcoordv1.CampaignResponse
	err := l.s.c.retry(l.ctx, "campaign "+l.Election(), func(*backoff) error {
		var err error
		if stream, err = l.open(); err != nil {
			return err
		}
		first, err = stream.Recv()
		return callErr(l.ctx, err, ErrLeaseLost)
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrLost, err), false
	case first.GetStatus() == zkcoordv1.CampaignResponse_STATUS_ELECTED && first.GetFencingToken() == l.Token():
		l.jeopardy(time.Time{})
		return stream, nil, false
	case first.GetStatus() == zkcoordv1.CampaignResponse_STATUS_LOST:
		return nil, ErrLost, true
	default:
		return nil, fmt.Errorf("%w: the candidacy did not resume its term", ErrLost), false
	}
}

// Leader reads the current leader of election (nil when there is none)
// and the revision the answer reflects. With AfterRevision(rev) and
// Wait(d) it is a blocking query: the gateway answers once the leader has
// changed after rev (another candidate leads, none does, or the leader
// published a new value), or after d; candidates queueing behind the
// leader do not end the wait. Pass each answer's revision to the next
// call; a revision lower than the last means start again from it.
func (c *Client) Leader(ctx context.Context, election string, opts ...PollOption) (*zkcoordv1.LeaderInfo, int64, error) {
	o := newPollOptions(opts)
	resp, err := c.rpc.election.Leader(ctx, &zkcoordv1.LeaderRequest{Election: election, AfterRevision: o.after, Wait: o.waitPB()})
	if err != nil {
		return nil, 0, fmt.Errorf("election: leader %s: %w", election, callErr(ctx, err, ErrNotFound))
	}
	return resp.GetLeader(), resp.GetRevision(), nil
}
