package election

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

func TestMain(m *testing.M) { zktest.Main(m) }

func TestHerdAvoidance(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	const n = 20
	token := int64(0)
	ls := make([]lease.Lease, n)
	cs := make([]*campaign, n)
	names := make([]string, n)
	for i := range n {
		ls[i] = g.grant(t, time.Minute)
		cs[i] = g.campaign(t, "e", "v"+string(rune('a'+i)), ls[i].ID)
		if i == 0 {
			u := cs[i].expect(t, Elected)
			names[i], token = u.Candidate, u.Token
			continue
		}
		u := cs[i].expect(t, Queued)
		if u.Position != i || u.Leader == nil || u.Leader.Candidate != names[0] {
			t.Fatalf("candidate %d: position %d, leader %+v; want %d behind %s", i, u.Position, u.Leader, i, names[0])
		}
		names[i] = u.Candidate
	}

	// One watch per candidate znode: each waiting candidate watches the one
	// ahead and itself, and ZooKeeper keeps one data watch per znode and
	// session, so the gateway's candidates cost one watch each (the last
	// one's is its own) and one notification per deletion; none on the
	// election.
	dir := g.lay.Election("e")
	got := watches(t)
	for p, ss := range got {
		if p == dir || (strings.HasPrefix(p, dir+"/") && !slices.Contains(names, p[len(dir)+1:])) {
			t.Errorf("unexpected watch on %s by %v", p, ss)
		}
	}
	for _, name := range names {
		if ss := got[dir+"/"+name]; len(ss) != 1 {
			t.Errorf("watches on candidate %s: %v, want exactly one", name, ss)
		}
	}
	if n := childWatches(t); n != 0 {
		t.Errorf("%d child watches, want none", n)
	}

	// Each resignation elects the next candidate, and wakes no one else.
	var lat, round []time.Duration // from Resign's return (0 if elected before), from its call
	for k := range n - 1 {
		first := cs[k]
		called := time.Now()
		wasLeader, rev, err := g.el.Resign(ctx, "e", ls[k].ID)
		returned := time.Now()
		if err != nil || !wasLeader || rev == 0 {
			t.Fatalf("Resign %d: %v, %v, %v", k, wasLeader, rev, err)
		}
		u := cs[k+1].expect(t, Elected)
		lat = append(lat, max(0, u.At.Sub(returned)))
		round = append(round, u.At.Sub(called))
		if u.Token <= token || u.Candidate != names[k+1] {
			t.Fatalf("term %d: token %d after %d, candidate %s want %s", k+1, u.Token, token, u.Candidate, names[k+1])
		}
		token = u.Token
		if r := first.expect(t, Resigned); r.Candidate != names[k] {
			t.Fatalf("resigned %s, want %s", r.Candidate, names[k])
		}
		if err := first.end(t); err != nil {
			t.Fatalf("Campaign after Resign: %v", err)
		}
		for _, c := range cs[k+2:] {
			c.quiet(t)
		}
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	t.Logf("Resign returned → next Elected: min %v, median %v, max %v; all %v", sorted[0], sorted[len(sorted)/2], sorted[len(sorted)-1], lat)
	slices.Sort(round)
	t.Logf("Resign called → next Elected: min %v, median %v, max %v", round[0], round[len(round)/2], round[len(round)-1])
	for i, d := range lat {
		if d >= 100*time.Millisecond {
			t.Errorf("term %d elected %v after Resign, want < 100ms", i+1, d)
		}
	}
}

func TestLeaseExpiryElectsNext(t *testing.T) {
	g := setup(t)
	short := g.grant(t, time.Second)
	granted := time.Now()
	a := g.campaign(t, "e", "a", short.ID)
	ua := a.expect(t, Elected)
	b := g.campaign(t, "e", "b", g.grant(t, time.Minute).ID)
	b.expect(t, Queued)
	// A queued candidate whose lease ends learns it though no one ahead moved.
	c := g.campaign(t, "e", "c", g.grant(t, time.Second).ID)
	c.expect(t, Queued)

	ub := b.expect(t, Elected)
	took := ub.At.Sub(granted)
	t.Logf("next elected %v after the 1s lease was granted", took)
	if took > 2*time.Second || took < 900*time.Millisecond {
		t.Fatalf("next elected after %v, want within TTL+1s and not before the TTL", took)
	}
	if ub.Token <= ua.Token {
		t.Fatalf("token %d after %d", ub.Token, ua.Token)
	}
	if u := a.expect(t, Lost); u.Token != ua.Token {
		t.Fatalf("Lost with token %d, want %d", u.Token, ua.Token)
	}
	if err := a.end(t); err != nil {
		t.Fatalf("Campaign after Lost: %v", err)
	}
	if u := c.expect(t, Lost); u.Token != 0 {
		t.Fatalf("queued candidate lost with token %d, want none", u.Token)
	}
}

func TestResignLeaderObserve(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	if l, rev, err := g.el.Leader(ctx, "e"); l != nil || rev == 0 || err != nil {
		t.Fatalf("Leader of a new election: %+v, %d, %v", l, rev, err)
	}
	o1, o2 := g.observe(t, "e"), g.observe(t, "e")
	o1.expect(t, "")
	o2.expect(t, "")
	g.el.feeds.mu.Lock()
	feeds, refs := len(g.el.feeds.byName), g.el.feeds.byName["e"].refs
	g.el.feeds.mu.Unlock()
	if feeds != 1 || refs != 2 {
		t.Fatalf("%d feeds, %d refs; want one feed shared by two observers", feeds, refs)
	}

	la, lb, lc := g.grant(t, time.Minute), g.grant(t, time.Minute), g.grant(t, time.Minute)
	a := g.campaign(t, "e", "a", la.ID)
	na := a.expect(t, Elected).Candidate
	rev := o1.expect(t, na)
	o2.expect(t, na)
	if r := g.leader(t, na); r < rev {
		t.Fatalf("Leader rev %d before observed rev %d", r, rev)
	}
	b := g.campaign(t, "e", "b", lb.ID)
	nb := b.expect(t, Queued).Candidate
	c := g.campaign(t, "e", "c", lc.ID)
	nc := c.expect(t, Queued).Candidate

	// A queued candidate resigns: the one behind moves up.
	if was, _, err := g.el.Resign(ctx, "e", lb.ID); was || err != nil {
		t.Fatalf("Resign of queued: wasLeader %v, %v", was, err)
	}
	if u := b.expect(t, Resigned); u.Candidate != nb || u.Token != 0 {
		t.Fatalf("resigned %+v", u.Update)
	}
	if u := c.expect(t, Queued); u.Position != 1 || u.Candidate != nc {
		t.Fatalf("after the one ahead resigned: %+v", u.Update)
	}
	if _, _, err := g.el.Resign(ctx, "e", lb.ID); !errors.Is(err, ErrNotCandidate) {
		t.Fatalf("second Resign: %v, want ErrNotCandidate", err)
	}

	// The leader resigns: the next leads, everyone sees it.
	if was, _, err := g.el.Resign(ctx, "e", la.ID); !was || err != nil {
		t.Fatalf("Resign of leader: wasLeader %v, %v", was, err)
	}
	a.expect(t, Resigned)
	c.expect(t, Elected)
	if r := o1.expect(t, nc); r <= rev {
		t.Fatalf("observed rev %d after %d", r, rev)
	}
	o2.expect(t, nc)
	g.leader(t, nc)

	// The last resigns: no leader.
	_, rev, err := g.el.Resign(ctx, "e", lc.ID)
	if err != nil {
		t.Fatal(err)
	}
	c.expect(t, Resigned)
	o1.expect(t, "")
	o2.expect(t, "")
	if r := g.leader(t, ""); r < rev {
		t.Fatalf("Leader rev %d before the Resign's %d", r, rev)
	}
	// One child watch (the only one on the server), for both observers.
	if n := childWatches(t); n != 1 {
		t.Fatalf("%d child watches, want one", n)
	}
}

func TestCampaignResumes(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	la, lb := g.grant(t, time.Minute), g.grant(t, time.Minute)
	a := g.campaign(t, "e", "a", la.ID)
	ua := a.expect(t, Elected)
	b := g.campaign(t, "e", "b", lb.ID)
	ub := b.expect(t, Queued)

	// Cancelling ends the campaigns, not the candidacies.
	a.cancel()
	b.cancel()
	if err := a.end(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Campaign after cancel: %v", err)
	}
	if err := b.end(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Campaign after cancel: %v", err)
	}
	g.leader(t, ua.Candidate)

	a2 := g.campaign(t, "e", "a2", la.ID) // a new value: see TestCampaignNewValue
	if u := a2.expect(t, Elected); u.Candidate != ua.Candidate || u.Token != ua.Token || u.Leader.Value != "a2" {
		t.Fatalf("resumed %+v, want candidate %s token %d value a2", u.Update, ua.Candidate, ua.Token)
	}
	b2 := g.campaign(t, "e", "b", lb.ID)
	if u := b2.expect(t, Queued); u.Candidate != ub.Candidate || u.Position != 1 {
		t.Fatalf("resumed %+v, want %s at 1", u.Update, ub.Candidate)
	}

	// Two campaigns of one lease at once share one candidacy.
	lc := g.grant(t, time.Minute)
	c1, c2 := g.campaign(t, "e", "c", lc.ID), g.campaign(t, "e", "c", lc.ID)
	u1, u2 := c1.expect(t, Queued), c2.expect(t, Queued)
	if u1.Candidate != u2.Candidate || u1.Position != 2 {
		t.Fatalf("concurrent campaigns: %+v and %+v", u1.Update, u2.Update)
	}
	kids, _, err := g.sess.Conn().Children(g.lay.Election("e"))
	if err != nil || len(kids) != 3 {
		t.Fatalf("candidates %v, %v; want 3", kids, err)
	}
	// Resign ends every campaign of the candidacy.
	if _, _, err := g.el.Resign(ctx, "e", lc.ID); err != nil {
		t.Fatal(err)
	}
	c1.expect(t, Resigned)
	c2.expect(t, Resigned)

	// A lease ref that outlived its candidate does not block a campaign.
	ld := g.grant(t, time.Minute)
	if _, err := g.leases.Attach(ctx, ld.ID, lease.Ref(RefKind, "e")); err != nil {
		t.Fatal(err)
	}
	d := g.campaign(t, "e", "d", ld.ID)
	if u := d.expect(t, Queued); u.Position != 2 {
		t.Fatalf("campaign over a stale ref: %+v", u.Update)
	}

	// Close ends campaigns and observers.
	o := g.observe(t, "e")
	o.expect(t, ua.Candidate)
	g.el.Close()
	for _, c := range []*campaign{a2, b2, d} {
		if err := c.end(t); !errors.Is(err, ErrClosed) {
			t.Fatalf("Campaign after Close: %v", err)
		}
	}
	if err := <-o.done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Observe after Close: %v", err)
	}
	o.done <- nil
}

func TestJeopardy(t *testing.T) {
	direct, lay := zktest.Session(t)
	px := zktest.NewProxy(t, zktest.Addr(t))
	dctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	const timeout = 2 * time.Second
	sess, err := zkx.Dial(dctx, px.Addr(), zkx.WithSessionTimeout(timeout), zkx.WithLogger(zktest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	g := newGateway(t, sess, lay)       // reaches ZooKeeper through the proxy
	other := newGateway(t, direct, lay) // the one behind, directly

	la := g.grant(t, time.Minute)
	a := g.campaign(t, "e", "a", la.ID)
	ua := a.expect(t, Elected)
	b := other.campaign(t, "e", "b", other.grant(t, time.Minute).ID)
	b.expect(t, Queued)

	// A short outage: JEOPARDY with a deadline, then ELECTED again.
	cutAt := time.Now()
	px.Cut()
	u := a.expect(t, Jeopardy)
	// The deadline is the earliest the session may expire: a third of the
	// timeout after the disconnection was noticed (see zkx.ExpiryBound).
	if u.Token != ua.Token || u.Deadline.Before(cutAt.Add(timeout/3)) || u.Deadline.After(time.Now().Add(timeout/3)) {
		t.Fatalf("jeopardy %+v; want token %d, deadline about %v after the cut", u.Update, ua.Token, timeout/3)
	}
	t.Logf("jeopardy %v after the cut, deadline in %v", u.At.Sub(cutAt), u.Deadline.Sub(u.At))
	px.Restore()
	if u := a.expect(t, Elected); u.Token != ua.Token || u.Candidate != ua.Candidate {
		t.Fatalf("after reconnect: %+v, want the same term", u.Update)
	}
	if st := sess.Status(); st.Epoch != 1 {
		t.Fatalf("session epoch %d after a short outage, want 1", st.Epoch)
	}

	// An outage past the session timeout: the session expires, the term
	// (owned by a live lease) goes on under a new session.
	px.Cut()
	a.expect(t, Jeopardy)
	zktest.Eventually(t, 4*timeout, func() bool {
		ok, _, err := direct.Conn().Exists(lay.LeaseOwner(la.Key))
		return err == nil && !ok
	}, "session through the proxy did not expire")
	px.Restore()
	if u := a.expect(t, Elected); u.Token != ua.Token || u.Candidate != ua.Candidate {
		t.Fatalf("after session expiry: %+v, want the same term", u.Update)
	}
	if st := sess.Status(); st.Epoch != 2 {
		t.Fatalf("session epoch %d after expiry, want 2", st.Epoch)
	}
	b.quiet(t)

	// The watch was re-armed under the new session: Resign still hands over.
	if _, _, err := g.el.Resign(context.Background(), "e", la.ID); err != nil {
		t.Fatal(err)
	}
	a.expect(t, Resigned)
	if u := b.expect(t, Elected); u.Token <= ua.Token {
		t.Fatalf("next token %d after %d", u.Token, ua.Token)
	}
}
