package election

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestFailoverListsNothing: when a leader whose campaign runs on this
// gateway resigns, neither the Resign nor the candidate next in line lists
// the election: the Resign knows the leader's znode (its campaign reported
// it Elected), and the next candidate knows it is first once the one
// candidate ahead of it, which it watched, is deleted (sequence numbers
// only grow). The takeover reads nothing: the watch the candidate armed on
// itself when it queued has not fired, so it was there at its predecessor's
// deletion (provenFirst).
func TestFailoverListsNothing(t *testing.T) {
	g, children, gets := countingGateway(t)
	la, lb, lc := g.grant(t, time.Minute), g.grant(t, time.Minute), g.grant(t, time.Minute)
	a := g.campaign(t, "e", "a", la.ID)
	a.expect(t, Elected)
	b := g.campaign(t, "e", "b", lb.ID)
	b.expect(t, Queued)
	c := g.campaign(t, "e", "c", lc.ID)
	c.expect(t, Queued)

	lists, reads := children.Load(), gets.Load()
	if was, _, err := g.el.Resign(context.Background(), "e", la.ID); err != nil || !was {
		t.Fatalf("Resign of the leader: %v, %v", was, err)
	}
	a.expect(t, Resigned)
	if u := b.expect(t, Elected); u.Leader.Value != "b" {
		t.Fatalf("b elected with leader %+v", u.Leader)
	}
	if n := children.Load() - lists; n != 0 {
		t.Errorf("the failover listed the election %d times, want 0", n)
	}
	if n := gets.Load() - reads; n != 0 {
		t.Errorf("the failover read %d znodes, want 0 (b's watch on itself, armed when it queued, proves it there)", n)
	}
	c.quiet(t) // still queued, behind b: it watches b, which did not change
}

// TestResignStaleLeaderPath: a Resign whose remembered leader znode is gone
// (the candidacy ended, and the lease campaigned again) lists the election
// and resigns the lease's candidacy that is there.
func TestResignStaleLeaderPath(t *testing.T) {
	g := setup(t)
	l := g.grant(t, time.Minute)
	c := g.campaign(t, "e", "v", l.ID)
	c.expect(t, Elected)
	g.el.leading.set("e/"+lease.KeyOf(l.ID), g.lay.Election("e")+"/c_gone_0000000099")
	if was, _, err := g.el.Resign(context.Background(), "e", l.ID); err != nil || !was {
		t.Fatalf("Resign with a stale remembered znode: %v, %v", was, err)
	}
	c.expect(t, Resigned)
}

// TestFailoverDeepQueueListsNothing: the candidate next in line takes over
// without listing even when its listing showed more candidates ahead than
// the one it watches (it queued behind several, as in a busy election):
// the one it watched was reported Elected on this gateway, so no one was
// left ahead of it, and no one can get ahead (sequence numbers only grow).
func TestFailoverDeepQueueListsNothing(t *testing.T) {
	g, children, gets := countingGateway(t)
	ids := make([]string, 4)
	cs := make([]*campaign, 4)
	for i := range cs {
		ids[i] = g.grant(t, time.Minute).ID
		cs[i] = g.campaign(t, "e", string(rune('a'+i)), ids[i])
		if u := cs[i].next(t); u.Position != i {
			t.Fatalf("candidate %d: %v at %d", i, u.Status, u.Position)
		}
	}
	var token int64
	for k := range 3 { // a resigns, b takes over (its listing showed it second), then b, then c
		lists, reads := children.Load(), gets.Load()
		if was, _, err := g.el.Resign(context.Background(), "e", ids[k]); err != nil || !was {
			t.Fatalf("Resign of leader %d: %v, %v", k, was, err)
		}
		cs[k].expect(t, Resigned)
		u := cs[k+1].expect(t, Elected)
		if u.Token <= token {
			t.Fatalf("term %d: token %d after %d", k+1, u.Token, token)
		}
		token = u.Token
		if n := children.Load() - lists; n != 0 {
			t.Errorf("failover %d listed the election %d times, want 0", k+1, n)
		}
		if n := gets.Load() - reads; n != 0 {
			t.Errorf("failover %d read %d znodes, want 0 (the new leader's watch on itself proves it there)", k+1, n)
		}
	}
}

// TestMiddleDepartureIsNoTakeover: when the candidate just ahead leaves
// without having led, the one behind lists the election again and stays
// queued behind the leader: it takes over without listing only after a
// predecessor that was reported Elected.
func TestMiddleDepartureIsNoTakeover(t *testing.T) {
	g := setup(t)
	ids := make([]string, 3)
	cs := make([]*campaign, 3)
	for i := range cs {
		ids[i] = g.grant(t, time.Minute).ID
		cs[i] = g.campaign(t, "e", string(rune('a'+i)), ids[i])
		cs[i].next(t)
	}
	for k := range 2 { // b leaves from the middle; then a leads still, c is second
		if was, _, err := g.el.Resign(context.Background(), "e", ids[1]); k == 0 && (err != nil || was) {
			t.Fatalf("Resign of b, queued: %v, %v", was, err)
		} else if k == 1 && !errors.Is(err, ErrNotCandidate) {
			t.Fatalf("second Resign of b: %v, want ErrNotCandidate", err)
		}
	}
	cs[1].expect(t, Resigned)
	if u := cs[2].expect(t, Queued); u.Position != 1 || u.Leader == nil || u.Leader.Value != "a" {
		t.Fatalf("c after b left: position %d, leader %+v; want 1 behind a", u.Position, u.Leader)
	}
	if was, _, err := g.el.Resign(context.Background(), "e", ids[0]); err != nil || !was {
		t.Fatalf("Resign of a: %v, %v", was, err)
	}
	cs[2].expect(t, Elected)
}

// countingGateway is a gateway whose session counts its listings
// (children) and reads (gets).
func countingGateway(t *testing.T) (g *gateway, children, gets *atomic.Int64) {
	children, gets = new(atomic.Int64), new(atomic.Int64)
	sess, lay := zktest.Session(t, zkx.WithObserver(func(op zkx.Op, _ time.Duration, _ error) {
		switch op {
		case zkx.OpChildren:
			children.Add(1)
		case zkx.OpGet:
			gets.Add(1)
		}
	}))
	return newGateway(t, sess, lay), children, gets
}

// TestNewCandidacyListsOnce: a lease held here with no candidacy in the
// election enters it with its create, then the one listing that finds the
// candidate ahead: no listing before the create (the lease's ref, created
// with the candidate, is what refuses a second candidacy). A lease with a
// candidacy already lists first, and resumes it.
func TestNewCandidacyListsOnce(t *testing.T) {
	g, children, _ := countingGateway(t)
	la, lb := g.grant(t, time.Minute), g.grant(t, time.Minute)
	a := g.campaign(t, "e", "a", la.ID)
	a.expect(t, Elected)

	lists := children.Load()
	b := g.campaign(t, "e", "b", lb.ID)
	ub := b.expect(t, Queued)
	if n := children.Load() - lists; n != 1 {
		t.Errorf("a new candidacy listed the election %d times to queue, want 1", n)
	}

	b.cancel()
	if err := b.end(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Campaign after cancel: %v", err)
	}
	lists = children.Load()
	b2 := g.campaign(t, "e", "b", lb.ID)
	if u := b2.expect(t, Queued); u.Candidate != ub.Candidate {
		t.Fatalf("resumed as %s, want %s", u.Candidate, ub.Candidate)
	}
	if n := children.Load() - lists; n != 2 {
		t.Errorf("a resumed candidacy listed the election %d times, want 2 (to find it, then to queue)", n)
	}
}
