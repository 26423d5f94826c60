package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

type campaignScript = script[*zkcoordv1.CampaignRequest, *zkcoordv1.CampaignResponse]

const (
	queued    = zkcoordv1.CampaignResponse_STATUS_QUEUED
	elected   = zkcoordv1.CampaignResponse_STATUS_ELECTED
	jeopardy  = zkcoordv1.CampaignResponse_STATUS_JEOPARDY
	lostState = zkcoordv1.CampaignResponse_STATUS_LOST
	resigned  = zkcoordv1.CampaignResponse_STATUS_RESIGNED
)

type campaignResult struct {
	l   *Leadership
	err error
}

// campaign starts s.Campaign on a goroutine and returns its stream and a
// channel for its result.
func campaign(t *testing.T, ctx context.Context, f *fake, s *Session, opts ...CampaignOption) (*campaignScript, <-chan campaignResult) {
	t.Helper()
	res := make(chan campaignResult, 1)
	go func() {
		l, err := s.Campaign(ctx, "e", "me:1", opts...)
		res <- campaignResult{l, err}
	}()
	return next(t, f.campaigns), res
}

// elect runs a campaign that is elected at once, with fencing token 7.
func elect(t *testing.T, f *fake, s *Session) (*campaignScript, *Leadership) {
	t.Helper()
	sc, res := campaign(t, t.Context(), f, s)
	sc.send(t, &zkcoordv1.CampaignResponse{Status: elected, Candidate: "c-1", FencingToken: 7})
	r := next(t, res)
	if r.err != nil {
		t.Fatal(r.err)
	}
	return sc, r.l
}

func newSession(t *testing.T) (*Session, *fake) {
	t.Helper()
	c, f := newFake(t)
	s, err := c.NewSession(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, f
}

// ended waits for a term to end and returns the cause.
func ended(t *testing.T, l *Leadership) error {
	t.Helper()
	recv(t, l.Context().Done())
	return context.Cause(l.Context())
}

func TestCampaignQueuedThenElected(t *testing.T) {
	s, f := newSession(t)
	positions := make(chan int, 10)
	sc, res := campaign(t, t.Context(), f, s, WithOnQueued(func(p int, _ *zkcoordv1.LeaderInfo) { positions <- p }))
	if sc.req.GetElection() != "e" || sc.req.GetValue() != "me:1" || sc.req.GetLeaseId() != s.Lease() {
		t.Fatalf("request = %v", sc.req)
	}
	sc.send(t, &zkcoordv1.CampaignResponse{Status: queued, Position: 2})
	sc.send(t, &zkcoordv1.CampaignResponse{Status: queued, Position: 1})
	sc.send(t, &zkcoordv1.CampaignResponse{Status: elected, Candidate: "c-3", FencingToken: 42})
	r := next(t, res)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if p1, p2 := next(t, positions), next(t, positions); p1 != 2 || p2 != 1 {
		t.Fatalf("positions %d, %d", p1, p2)
	}
	if r.l.Token() != 42 || r.l.Candidate() != "c-3" || r.l.Election() != "e" || r.l.Context().Err() != nil {
		t.Fatalf("leadership token %d candidate %s", r.l.Token(), r.l.Candidate())
	}
	sc.send(t, &zkcoordv1.CampaignResponse{Status: lostState, FencingToken: 42})
	if err := ended(t, r.l); !errors.Is(err, ErrLost) {
		t.Fatalf("cause = %v, want ErrLost", err)
	}
	if err := r.l.Resign(t.Context()); !errors.Is(err, ErrNotLeader) || !errors.Is(err, ErrLost) {
		t.Fatalf("Resign after loss = %v, want ErrNotLeader and ErrLost", err)
	}
	if len(f.resigns) != 0 {
		t.Fatal("a candidacy the gateway removed was resigned")
	}
}

func TestCampaignCancelWithdraws(t *testing.T) {
	s, f := newSession(t)
	ctx, cancel := context.WithCancel(t.Context())
	sc, res := campaign(t, ctx, f, s)
	sc.send(t, &zkcoordv1.CampaignResponse{Status: queued, Position: 1})
	cancel()
	sc.wait(t) // the stream closed
	if r := next(t, res); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Campaign = %v, want context.Canceled", r.err)
	}
	// The candidacy belongs to the lease, not the stream: Campaign resigned it.
	if r := next(t, f.resigns); r.GetElection() != "e" || r.GetLeaseId() != s.Lease() {
		t.Fatalf("resign request %v", r)
	}
}

func TestCampaignLostWhileQueued(t *testing.T) {
	s, f := newSession(t)
	sc, res := campaign(t, t.Context(), f, s)
	sc.send(t, &zkcoordv1.CampaignResponse{Status: lostState})
	if r := next(t, res); !errors.Is(r.err, ErrLost) {
		t.Fatalf("Campaign = %v, want ErrLost", r.err)
	}
	sc, res = campaign(t, t.Context(), f, s)
	sc.fail(t, status.Error(codes.NotFound, "no such lease"))
	if r := next(t, res); !errors.Is(r.err, ErrLeaseLost) {
		t.Fatalf("Campaign = %v, want ErrLeaseLost", r.err)
	}
}

func TestCampaignReconnectsWhileQueued(t *testing.T) {
	s, f := newSession(t)
	sc, res := campaign(t, t.Context(), f, s)
	sc.fail(t, status.Error(codes.Unavailable, "gateway restarting"))
	sc = next(t, f.campaigns)
	sc.send(t, &zkcoordv1.CampaignResponse{Status: elected, FencingToken: 3})
	if r := next(t, res); r.err != nil || r.l.Token() != 3 {
		t.Fatalf("Campaign = %v", r.err)
	}
}

func TestLeadershipJeopardy(t *testing.T) {
	s, f := newSession(t)
	sc, l := elect(t, f, s)
	st := l.State()
	if st.Jeopardy {
		t.Fatal("new term in jeopardy")
	}
	deadline := time.Now().Add(time.Hour)
	sc.send(t, &zkcoordv1.CampaignResponse{Status: jeopardy, FencingToken: 7, JeopardyDeadline: timestamppb.New(deadline)})
	recv(t, st.Changed)
	if st = l.State(); !st.Jeopardy || !st.Deadline.Equal(deadline) {
		t.Fatalf("state %+v, want jeopardy until %v", st, deadline)
	}
	sc.send(t, &zkcoordv1.CampaignResponse{Status: elected, FencingToken: 7})
	recv(t, st.Changed)
	if st = l.State(); st.Jeopardy || l.Context().Err() != nil {
		t.Fatalf("state %+v after ELECTED, want out of jeopardy", st)
	}

	// A deadline that passes ends the term.
	sc.send(t, &zkcoordv1.CampaignResponse{Status: jeopardy, FencingToken: 7, JeopardyDeadline: timestamppb.New(time.Now().Add(20 * time.Millisecond))})
	if err := ended(t, l); !errors.Is(err, ErrJeopardy) {
		t.Fatalf("cause = %v, want ErrJeopardy", err)
	}
	sc.wait(t) // the stream closed
	recv(t, l.State().Changed)
	next(t, f.resigns) // and the candidacy was withdrawn
}

func TestLeadershipResumesAfterBrokenStream(t *testing.T) {
	s, f := newSession(t)
	sc, l := elect(t, f, s)
	st := l.State()
	sc.fail(t, status.Error(codes.Unavailable, "gateway restarting"))
	recv(t, st.Changed)
	if st = l.State(); !st.Jeopardy {
		t.Fatalf("state %+v after a broken stream, want jeopardy", st)
	}

	// The gateway resumes the term: same token.
	sc = next(t, f.campaigns)
	if sc.req.GetLeaseId() != s.Lease() {
		t.Fatalf("reopened with lease %q", sc.req.GetLeaseId())
	}
	sc.send(t, &zkcoordv1.CampaignResponse{Status: elected, FencingToken: 7})
	recv(t, st.Changed)
	if st = l.State(); st.Jeopardy || l.Context().Err() != nil {
		t.Fatalf("state %+v after the term resumed", st)
	}

	// Next time the candidacy was requeued: the term is over.
	sc.fail(t, status.Error(codes.Unavailable, "gateway restarting"))
	sc = next(t, f.campaigns)
	sc.send(t, &zkcoordv1.CampaignResponse{Status: queued, Position: 1})
	if err := ended(t, l); !errors.Is(err, ErrLost) {
		t.Fatalf("cause = %v, want ErrLost", err)
	}
	sc.wait(t)
	next(t, f.resigns) // the requeued candidacy was withdrawn
}

func TestLeadershipResign(t *testing.T) {
	s, f := newSession(t)
	sc, l := elect(t, f, s)
	if err := l.Resign(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := next(t, f.resigns); r.GetElection() != "e" || r.GetLeaseId() != s.Lease() {
		t.Fatalf("resign request %v", r)
	}
	sc.wait(t)
	if err := ended(t, l); !errors.Is(err, ErrResigned) {
		t.Fatalf("cause = %v, want ErrResigned", err)
	}
	if err := l.Resign(t.Context()); err != nil {
		t.Fatalf("second Resign = %v", err)
	}
}

func TestLeadershipEndsWithSession(t *testing.T) {
	s, f := newSession(t)
	sc, l := elect(t, f, s)
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := context.Cause(l.Context()); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("cause = %v, want ErrSessionClosed", err)
	}
	sc.wait(t)
}

func TestObserveSkipsRepeatsAfterReconnect(t *testing.T) {
	c, f := newFake(t)
	ctx, cancel := context.WithCancel(t.Context())
	ch := c.Observe(ctx, "e")
	a := &zkcoordv1.LeaderInfo{Election: "e", Candidate: "c-1", FencingToken: 1}
	b := &zkcoordv1.LeaderInfo{Election: "e", Candidate: "c-2", FencingToken: 2}

	o := next(t, f.observes)
	o.send(t, &zkcoordv1.ObserveResponse{Leader: a, Revision: 1})
	if ev := next(t, ch); ev.Leader.GetCandidate() != "c-1" {
		t.Fatalf("first event %v", ev)
	}
	o.fail(t, status.Error(codes.Unavailable, "gateway restarting"))
	o = next(t, f.observes)
	o.send(t, &zkcoordv1.ObserveResponse{Leader: a, Revision: 1}) // the same state: not sent again
	o.send(t, &zkcoordv1.ObserveResponse{Revision: 3})            // no leader
	if ev := next(t, ch); ev.Leader != nil || ev.Revision != 3 {
		t.Fatalf("event %v, want no leader at 3", ev)
	}
	o.send(t, &zkcoordv1.ObserveResponse{Leader: b, Revision: 4})
	if ev := next(t, ch); ev.Leader.GetFencingToken() != 2 {
		t.Fatalf("event %v, want c-2", ev)
	}
	cancel()
	if _, ok := recv(t, ch); ok {
		t.Fatal("channel not closed after cancel")
	}
}
