package election

import (
	"context"
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
// only grow). The takeover costs one read, as the direct recipe's.
func TestFailoverListsNothing(t *testing.T) {
	var children, gets atomic.Int64
	sess, lay := zktest.Session(t, zkx.WithObserver(func(op zkx.Op, _ time.Duration, _ error) {
		switch op {
		case zkx.OpChildren:
			children.Add(1)
		case zkx.OpGet:
			gets.Add(1)
		}
	}))
	g := newGateway(t, sess, lay)
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
	if n := gets.Load() - reads; n > 1 {
		t.Errorf("the failover read %d znodes, want 1 (b arming its watch on itself)", n)
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
