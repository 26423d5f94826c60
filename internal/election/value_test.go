package election

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestCampaignNewValue: a Campaign with the lease of an existing candidacy
// and a new value keeps the candidacy (same candidate, same token, same
// place) and publishes the new value, as etcd's Proclaim does: in the
// candidate's znode, to Leader, to observers and to the campaigns that
// follow the candidacy.
func TestCampaignNewValue(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	o := g.observe(t, "e")
	o.expect(t, "")
	la, lb := g.grant(t, time.Minute), g.grant(t, time.Minute)
	a := g.campaign(t, "e", "a", la.ID)
	ua := a.expect(t, Elected)
	o.expect(t, ua.Candidate)
	b := g.campaign(t, "e", "b", lb.ID)
	ub := b.expect(t, Queued)

	// The leader campaigns again with a new value while its first campaign
	// still runs.
	a2 := g.campaign(t, "e", "a2", la.ID)
	u := a2.expect(t, Elected)
	if u.Candidate != ua.Candidate || u.Token != ua.Token || u.Leader.Value != "a2" {
		t.Fatalf("campaign with a new value: candidate %s, token %d, value %q; want %s, %d, a2",
			u.Candidate, u.Token, u.Leader.Value, ua.Candidate, ua.Token)
	}
	if !u.Leader.CampaignedAt.Equal(ua.Leader.CampaignedAt) {
		t.Errorf("campaigned_at changed from %v to %v", ua.Leader.CampaignedAt, u.Leader.CampaignedAt)
	}
	var rec record
	data, _, err := g.sess.Conn().Get(g.lay.Election("e") + "/" + ua.Candidate)
	if err != nil || json.Unmarshal(data, &rec) != nil || rec.Value != "a2" {
		t.Fatalf("candidate znode %q, %v; want value a2", data, err)
	}
	if l, _, err := g.el.Leader(ctx, "e"); err != nil || l.Value != "a2" || l.Token != ua.Token {
		t.Fatalf("Leader = %+v, %v; want value a2, token %d", l, err, ua.Token)
	}
	select {
	case l := <-o.ch:
		<-o.revs
		if l == nil || l.Candidate != ua.Candidate || l.Value != "a2" {
			t.Fatalf("observed %+v, want %s with value a2", l, ua.Candidate)
		}
	case <-time.After(wait):
		t.Fatal("the observer did not see the new value")
	}
	if u := a.expect(t, Elected); u.Leader.Value != "a2" || u.Token != ua.Token {
		t.Fatalf("the first campaign reported %+v, want the new value a2 with token %d", u.Update, ua.Token)
	}

	// A queued candidate changes its value: it keeps its place, and leads
	// with the new value.
	b.cancel()
	b2 := g.campaign(t, "e", "b2", lb.ID)
	if u := b2.expect(t, Queued); u.Candidate != ub.Candidate || u.Position != 1 {
		t.Fatalf("queued campaign with a new value: %+v, want %s at 1", u.Update, ub.Candidate)
	}
	if _, _, err := g.el.Resign(ctx, "e", la.ID); err != nil {
		t.Fatal(err)
	}
	if u := b2.expect(t, Elected); u.Candidate != ub.Candidate || u.Leader.Value != "b2" {
		t.Fatalf("elected %+v, want %s with value b2", u.Update, ub.Candidate)
	}
	if l, _, err := g.el.Leader(ctx, "e"); err != nil || l.Value != "b2" {
		t.Fatalf("Leader = %+v, %v; want value b2", l, err)
	}

	// The same value again writes nothing.
	_, before, err := g.sess.Conn().Get(g.lay.Election("e") + "/" + ub.Candidate)
	if err != nil {
		t.Fatal(err)
	}
	b3 := g.campaign(t, "e", "b2", lb.ID)
	b3.expect(t, Elected)
	if _, after, err := g.sess.Conn().Get(g.lay.Election("e") + "/" + ub.Candidate); err != nil || after.Version != before.Version {
		t.Fatalf("campaign with the same value wrote the candidate: version %d → %v (%v)", before.Version, after, err)
	}
}
