package client_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/zkcoord/zkcoord/client"
)

// TestBlockingQueries: Lookup, Leader and GetBarrier with AfterRevision
// and Wait answer at a change after the revision, or at the end of the
// wait, unchanged; a wait over 5m is refused.
func TestBlockingQueries(t *testing.T) {
	ctx := ctxT(t)
	c := connect(t)
	s := session(t, c)

	// Lookup: a change through another session answers the poll.
	group := name(t, "group")
	_, rev, err := c.Lookup(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, got, err := c.Lookup(ctx, group, client.AfterRevision(rev), client.Wait(200*time.Millisecond)); err != nil || got != rev || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("Lookup with no change = rev %d, %v after %v; want %d after 200ms", got, err, time.Since(start), rev)
	}
	type looked struct {
		n   int
		rev int64
		err error
	}
	res := make(chan looked, 1)
	go func() {
		ms, got, err := c.Lookup(ctx, group, client.AfterRevision(rev), client.Wait(time.Minute), client.Linearizable())
		res <- looked{len(ms), got, err}
	}()
	// The poll may start before or after the Register: either way it
	// answers the member.
	m, err := s.Register(ctx, group, "m1", "v")
	if err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != nil || r.n != 1 || r.rev < m.GetModRevision() {
		t.Fatalf("Lookup over a Register = %d members at %d, %v; want m1 at %d", r.n, r.rev, r.err, m.GetModRevision())
	}
	if _, _, err := c.Lookup(ctx, group, client.Wait(6*time.Minute)); client.Code(err) != codes.InvalidArgument {
		t.Fatalf("Lookup with a 6m wait: %v", err)
	}

	// Leader: a new leader answers the poll.
	election := name(t, "election")
	_, rev, err = c.Leader(ctx, election)
	if err != nil {
		t.Fatal(err)
	}
	type led struct {
		value string
		rev   int64
		err   error
	}
	lres := make(chan led, 1)
	go func() {
		l, got, err := c.Leader(ctx, election, client.AfterRevision(rev), client.Wait(time.Minute))
		lres <- led{l.GetValue(), got, err}
	}()
	l, err := s.Campaign(ctx, election, "boss")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(ctx)
	if r := <-lres; r.err != nil || r.value != "boss" || r.rev <= rev {
		t.Fatalf("Leader over a Campaign = %q at %d, %v", r.value, r.rev, r.err)
	}

	// JoinBarrier and GetBarrier: the poll answers released.
	b := name(t, "barrier")
	j, err := s.JoinBarrier(ctx, b, 2, client.WithParticipantID("p1"))
	if err != nil || j.GetArrived() != 1 || j.GetReleased() || j.GetParticipantId() != "p1" || j.GetLeaseId() != s.Lease() {
		t.Fatalf("JoinBarrier = %v, %v", j, err)
	}
	other := session(t, c)
	if _, err := other.JoinBarrier(ctx, b, 2); err != nil {
		t.Fatal(err)
	}
	rev = j.GetRevision()
	for {
		st, err := c.GetBarrier(ctx, b, client.AfterRevision(rev), client.Wait(time.Minute))
		if err != nil || st.GetRevision() <= rev {
			t.Fatalf("GetBarrier after %d = %v, %v", rev, st, err)
		}
		if st.GetReleased() {
			break
		}
		rev = st.GetRevision()
	}
	if _, err := s.LeaveBarrier(ctx, b, "p1"); err != nil {
		t.Fatal(err)
	}
}
