package election

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestCallsHonourDeadlineWhileZooKeeperStalls: while every byte to
// ZooKeeper is stalled (connections open, nothing answers; the session
// timeout is long, so go-zookeeper does not notice), Campaign (entering an
// election, or resuming a candidacy), Resign, Leader, Observe and Check
// each return within their deadline + 50 ms with the deadline's error, and
// a leader's running Campaign goes on. Once ZooKeeper answers again, the elections
// carry on: the leader is still elected, and it can resign.
func TestCallsHonourDeadlineWhileZooKeeperStalls(t *testing.T) {
	ctx := context.Background()
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	g := newGateway(t, sess, lay)
	leader, queued := g.grant(t, time.Minute), g.grant(t, time.Minute)
	c := g.campaign(t, "e", "v", leader.ID)
	c.expect(t, Elected)

	px.Stall()
	ignore := func(Update) error { return nil }
	late := zktest.CheckDeadlines(t, 200*time.Millisecond, []zktest.DeadlineCall{
		{Name: "Campaign entering an election", Call: func(ctx context.Context) error {
			return g.el.Campaign(ctx, "e", "w", queued.ID, ignore)
		}},
		{Name: "Campaign resuming a candidacy", Call: func(ctx context.Context) error {
			return g.el.Campaign(ctx, "e", "v", leader.ID, ignore)
		}},
		// Of the queued lease: the leader's Resign skips the listing and
		// sends its delete at once, which lands once ZooKeeper is back (as
		// TestResignUnknownOutcome shows), and the leader is needed after.
		{Name: "Resign", Call: func(ctx context.Context) error {
			_, _, err := g.el.Resign(ctx, "e", queued.ID)
			return err
		}},
		{Name: "Leader", Call: func(ctx context.Context) error {
			_, _, err := g.el.Leader(ctx, "e")
			return err
		}},
		{Name: "Observe of a new election", Call: func(ctx context.Context) error {
			return g.el.Observe(ctx, "new", func(*LeaderInfo, int64) error { return nil })
		}},
		{Name: "Poll", Call: func(ctx context.Context) error {
			_, _, err := g.el.Poll(ctx, "e", 1, nil)
			return err
		}},
		{Name: "Check", Call: func(ctx context.Context) error {
			_, _, _, err := g.el.Check(ctx, "e", 1)
			return err
		}},
	})
	c.quiet(t)

	px.Restore()
	late()
	var l *LeaderInfo
	zktest.Eventually(t, 10*time.Second, func() bool {
		var err error
		l, _, err = g.el.Leader(ctx, "e")
		return err == nil
	}, "Leader after the stall")
	if l == nil || l.Value != "v" {
		t.Errorf("leader after the stall: %+v, want the candidacy elected before it", l)
	}
	if _, _, err := g.el.Resign(ctx, "e", leader.ID); err != nil {
		t.Fatalf("Resign after the stall: %v", err)
	}
	c.expect(t, Resigned)
}

// TestResignUnknownOutcome: a Resign whose deadline passes after it sent
// its delete cannot tell whether the candidacy is gone. It keeps its note,
// so that when the delete lands the campaign reports Resigned, not Lost.
// (Before, a context error counted as a failed delete: the note was
// dropped, and the campaign reported Lost.)
func TestResignUnknownOutcome(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	g := newGateway(t, sess, lay)
	l := g.grant(t, time.Minute)
	c := g.campaign(t, "e", "v", l.ID)
	c.expect(t, Elected)

	g.el.beforeDelete = px.Stall
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, _, err := g.el.Resign(ctx, "e", l.ID)
	cancel()
	g.el.beforeDelete = nil
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Resign whose delete stalls: %v, want the deadline's error", err)
	}
	c.quiet(t)
	px.Restore()
	if u := c.next(t); u.Status != Resigned {
		t.Fatalf("once the delete landed, the campaign reported %v, want %v", u.Status, Resigned)
	}
}

// TestCloseEndsBlockedCampaign: closing Elections ends a Campaign that
// waits on a stalled ZooKeeper at once, with ErrClosed.
func TestCloseEndsBlockedCampaign(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	g := newGateway(t, sess, lay)
	l := g.grant(t, time.Minute)
	px.Stall()
	defer px.Restore()
	c := g.campaign(t, "e", "v", l.ID)
	c.quiet(t)
	closed := time.Now()
	g.el.Close()
	if err := c.end(t); !errors.Is(err, ErrClosed) {
		t.Fatalf("Campaign after Close: %v, want ErrClosed", err)
	}
	if took := time.Since(closed); took > zktest.Slack {
		t.Errorf("Campaign returned %v after Close", took)
	}
}
