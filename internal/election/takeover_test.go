package election

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// parked is a Campaign whose report blocks, when park is set, until the
// test releases it: the campaign cannot see its watches fire meanwhile, so
// the notifications that come pile up and it finds them all at once.
type parked struct {
	*campaign
	park    atomic.Bool
	parked  chan struct{}
	release chan struct{}
}

func (g *gateway) parkedCampaign(t *testing.T, election, value, leaseID string) *parked {
	ctx, cancel := context.WithCancel(context.Background())
	p := &parked{campaign: &campaign{updates: make(chan stamped, 64), done: make(chan error, 1), cancel: cancel},
		parked: make(chan struct{}, 1), release: make(chan struct{})}
	p.park.Store(true)
	go func() {
		p.done <- g.el.Campaign(ctx, election, value, leaseID, func(u Update) error {
			p.updates <- stamped{u, time.Now()}
			if p.park.Swap(false) {
				p.parked <- struct{}{}
				select {
				case <-p.release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); p.done <- <-p.done })
	return p
}

func (p *parked) waitParked(t *testing.T) {
	t.Helper()
	select {
	case <-p.parked:
	case <-time.After(wait):
		t.Fatal("campaign did not report")
	}
}

// TestSelfDeletedBeforePredecessorIsNoTakeover: a queued candidate whose
// own znode is deleted (its lease revoked, or the znode removed) just before
// the leader ahead of it resigns does not report Elected, even when it finds
// both notifications at once (it was busy reporting): the takeover with no
// read trusts its watch on itself only after checking it holds nothing.
func TestSelfDeletedBeforePredecessorIsNoTakeover(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	for round := range 12 {
		election := "e" + string(rune('a'+round))
		la, lb := g.grant(t, time.Minute), g.grant(t, time.Minute)
		a := g.campaign(t, election, "a", la.ID)
		a.expect(t, Elected)
		b := g.parkedCampaign(t, election, "b", lb.ID)
		b.waitParked(t) // its first Queued: both its watches are armed
		u := b.expect(t, Queued)
		if round%2 == 0 {
			if err := g.leases.Revoke(ctx, lb.ID); err != nil {
				t.Fatal(err)
			}
		} else if err := g.sess.Delete(ctx, g.lay.Election(election)+"/"+u.Candidate, -1); err != nil {
			t.Fatal(err)
		}
		if was, _, err := g.el.Resign(ctx, election, la.ID); err != nil || !was {
			t.Fatalf("Resign of the leader: %v, %v", was, err)
		}
		a.expect(t, Resigned)
		close(b.release)
		if u := b.next(t); u.Status != Lost {
			t.Fatalf("round %d: b, deleted before its predecessor, reported %v, want lost", round, u.Status)
		}
	}
}

// TestTakeoverAfterReconnectReads: after the session's connection changed
// (a cut and a reconnection to the same session), the queued candidate's
// watch on itself proves nothing (go-zookeeper re-sets watches alongside
// other requests, out of zxid order), so the takeover reads itself.
func TestTakeoverAfterReconnectReads(t *testing.T) {
	ctx := context.Background()
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px)
	g := newGateway(t, sess, lay)
	la, lb := g.grant(t, time.Minute), g.grant(t, time.Minute)
	a := g.campaign(t, "e", "a", la.ID)
	a.expect(t, Elected)
	b := g.campaign(t, "e", "b", lb.ID)
	b.expect(t, Queued)

	px.Cut()
	zktest.WaitSession(t, sess, zkx.StateDisconnected)
	px.Restore()
	zktest.WaitSession(t, sess, zkx.StateConnected)
	if st := sess.Status(); st.Epoch != 1 {
		t.Fatalf("a new session (epoch %d): the test wants the same one", st.Epoch)
	}
	a.expect(t, Jeopardy)
	a.expect(t, Elected) // the term went on
	before := g.el.Stats().UnreadTakeovers
	if was, _, err := g.el.Resign(ctx, "e", la.ID); err != nil || !was {
		t.Fatalf("Resign of the leader: %v, %v", was, err)
	}
	a.expect(t, Resigned)
	b.expect(t, Elected)
	if n := g.el.Stats().UnreadTakeovers - before; n != 0 {
		t.Fatalf("%d takeovers with no read after a reconnection, want 0 (b reads itself)", n)
	}

	// Armed again by that read, on the new connection: the next takeover
	// reads nothing.
	lc := g.grant(t, time.Minute)
	c := g.campaign(t, "e", "c", lc.ID)
	c.expect(t, Queued)
	if was, _, err := g.el.Resign(ctx, "e", lb.ID); err != nil || !was {
		t.Fatalf("Resign of b: %v, %v", was, err)
	}
	b.expect(t, Resigned)
	c.expect(t, Elected)
	if n := g.el.Stats().UnreadTakeovers - before; n != 1 {
		t.Fatalf("%d takeovers with no read on an unchanged connection, want 1", n)
	}
}

// TestReleaseDeletesLaterCandidateFirst: should a lease hold two
// candidacies in one election, the transaction that ends it deletes the
// later first, so the one behind the earlier is never notified of its
// predecessor's deletion before its own (it would take over with no read).
func TestReleaseDeletesLaterCandidateFirst(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	dir := g.lay.Election("e")
	if err := g.sess.EnsurePath(ctx, dir); err != nil {
		t.Fatal(err)
	}
	var made []string
	for range 3 {
		p, err := g.sess.Create(ctx, dir+"/c_k1_", nil, zk.FlagSequence)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, p)
	}
	if _, err := g.sess.Create(ctx, dir+"/c_k2_", nil, zk.FlagSequence); err != nil {
		t.Fatal(err)
	}
	ops, err := g.el.releaseOps(ctx, "k1", []string{"e"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, op := range ops {
		got = append(got, op.(*zk.DeleteRequest).Path)
	}
	if want := []string{made[2], made[1], made[0]}; !slices.Equal(got, want) {
		t.Fatalf("release deletes %v, want %v (the latest first)", got, want)
	}
}

// TestQueuedLeaseEndListsNothing: a waiting candidate whose lease is revoked
// learns it from its watch on itself; the wake-up the release sends it
// does not make it list the election (the release lists the lease's refs
// and the election, once each).
func TestQueuedLeaseEndListsNothing(t *testing.T) {
	g, children, _ := countingGateway(t)
	la, lb := g.grant(t, time.Minute), g.grant(t, time.Minute)
	a := g.campaign(t, "e", "a", la.ID)
	a.expect(t, Elected)
	b := g.campaign(t, "e", "b", lb.ID)
	b.expect(t, Queued)
	lists := children.Load()
	if err := g.leases.Revoke(context.Background(), lb.ID); err != nil {
		t.Fatal(err)
	}
	b.expect(t, Lost)
	if n := children.Load() - lists; n != 2 {
		t.Fatalf("%d listings for the lease's end, want 2 (the release's own: the lease's refs, the election)", n)
	}
	a.quiet(t)
}

// TestExternalMultiDeleteIsNoTakeover: one transaction from outside
// zkcoord deleting the leader and then the candidate behind it (zkCli's
// deleteall batches its deletes into one multi, in no set order) notifies
// the one behind of its predecessor's deletion before its own: it must not
// take over with no read. Only the deletion by this gateway's own Resign,
// which deletes one candidate alone, is taken over with no read.
func TestExternalMultiDeleteIsNoTakeover(t *testing.T) {
	g := setup(t)
	ctx := context.Background()
	for round := range 10 {
		election := "x" + string(rune('a'+round))
		la, lb := g.grant(t, time.Minute), g.grant(t, time.Minute)
		a := g.campaign(t, election, "a", la.ID)
		ua := a.expect(t, Elected)
		b := g.campaign(t, election, "b", lb.ID)
		ub := b.expect(t, Queued)
		dir := g.lay.Election(election)
		if _, err := g.sess.Multi(ctx, &zk.DeleteRequest{Path: dir + "/" + ua.Candidate, Version: -1},
			&zk.DeleteRequest{Path: dir + "/" + ub.Candidate, Version: -1}); err != nil {
			t.Fatal(err)
		}
		a.expect(t, Lost)
		if u := b.next(t); u.Status != Lost {
			t.Fatalf("round %d: b, deleted in the transaction that deleted its predecessor, reported %v, want lost", round, u.Status)
		}
	}
}
