package election

import (
	"context"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// TestCheck: a sequencer check of an election says current for the
// leader's token only: stale right after a Resign returned (read through
// another gateway), not current for a token never issued, and for an
// election never entered (which it does not create).
func TestCheck(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	sess2, _ := zktest.Session(t)
	g2 := newGateway(t, sess2, g.lay)
	la := g.grant(t, time.Minute)
	a := g.campaign(t, "e", "a", la.ID)
	ua := a.expect(t, Elected)
	b := g.campaign(t, "e", "b", g.grant(t, time.Minute).ID)
	b.expect(t, Queued)
	check := func(election string, token int64, want bool) int64 {
		t.Helper()
		cur, leader, rev, err := g2.el.Check(ctx, election, token)
		if err != nil || cur != want || rev == 0 {
			t.Fatalf("Check(%s, %d) = %v, %d, %d, %v; want %v", election, token, cur, leader, rev, err, want)
		}
		return leader
	}
	if l := check("e", ua.Token, true); l != ua.Token {
		t.Fatalf("leader's token %d, want %d", l, ua.Token)
	}
	check("e", ua.Token+1, false)
	if _, _, err := g.el.Resign(ctx, "e", la.ID); err != nil {
		t.Fatal(err)
	}
	if l := check("e", ua.Token, false); l <= ua.Token {
		t.Fatalf("leader's token %d after a resign, want above %d", l, ua.Token)
	}
	ub := b.expect(t, Elected)
	check("e", ub.Token, true)
	check("never", 1, false)
	if ok, _, err := g.sess.Conn().Exists(g.lay.Election("never")); err != nil || ok {
		t.Fatalf("a check of an election never entered created it: %v, %v", ok, err)
	}
}
