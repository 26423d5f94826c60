package registry_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

func TestMain(m *testing.M) { zktest.Main(m) }

type env struct {
	sess   *zkx.Session
	lay    zktest.Layout
	leases *lease.Manager
	reg    *registry.Registry
}

// gateway builds the lease manager and registry of one gateway; a second
// call with the same layout gives a second gateway on its own session.
func gateway(t testing.TB, lay *zktest.Layout, opt ...registry.Option) env {
	t.Helper()
	sess, l := zktest.Session(t)
	if lay.Root == "" {
		*lay = l
	}
	m, err := lease.NewManager(sess, lay.Root, zktest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	r, err := registry.New(sess, lay.Root, m, zktest.Logger(t), opt...)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); m.Close() })
	return env{sess, *lay, m, r}
}

func grant(t *testing.T, e env, ttl time.Duration) string {
	t.Helper()
	l, err := e.leases.Grant(context.Background(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	return l.ID
}

func register(t *testing.T, e env, group, id, value, leaseID string) *registry.Member {
	t.Helper()
	m, _, err := e.reg.Register(context.Background(), registry.RegisterParams{Group: group, ID: id, Value: value,
		LeaseID: leaseID, Persistent: leaseID == ""})
	if err != nil {
		t.Fatalf("Register %s/%s: %v", group, id, err)
	}
	return m
}

func ids(ms []*registry.Member) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.ID+"="+m.Value)
	}
	return strings.Join(s, ",")
}

func TestRegisterLookupDeregister(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	e := gateway(t, &lay)
	a, b := grant(t, e, time.Minute), grant(t, e, time.Minute)

	m1 := register(t, e, "web", "w1", "10.0.0.1:80", a)
	if m1.CreateRev == 0 || m1.ModRev != m1.CreateRev {
		t.Fatalf("revisions of a new member: %+v", m1)
	}
	// Idempotent: same lease, same content, no new revision.
	if again := register(t, e, "web", "w1", "10.0.0.1:80", a); again.ModRev != m1.ModRev {
		t.Fatalf("re-register changed revision %d -> %d", m1.ModRev, again.ModRev)
	}
	// Same lease, new value: an update.
	m2 := register(t, e, "web", "w1", "10.0.0.1:81", a)
	if m2.ModRev <= m1.ModRev || m2.CreateRev != m1.CreateRev {
		t.Fatalf("update revisions: before %+v after %+v", m1, m2)
	}
	// Another lease may not take the id, nor a persistent registration.
	if _, _, err := e.reg.Register(ctx, registry.RegisterParams{Group: "web", ID: "w1", LeaseID: b}); !errors.Is(err, registry.ErrMemberExists) {
		t.Fatalf("Register with another lease: %v, want ErrMemberExists", err)
	}
	if _, _, err := e.reg.Register(ctx, registry.RegisterParams{Group: "web", ID: "w1", Persistent: true}); !errors.Is(err, registry.ErrMemberExists) {
		t.Fatalf("persistent Register over a leased member: %v", err)
	}
	register(t, e, "web", "p1", "db:5432", "") // persistent
	gen := register(t, e, "web", "", "auto", b)
	if gen.ID == "" {
		t.Fatal("no generated id")
	}

	v, err := e.reg.Lookup(ctx, "web", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(v.Members), fmt.Sprintf("%s=auto,p1=db:5432,w1=10.0.0.1:81", gen.ID); got != want && v.Members[0].ID < "p1" {
		t.Fatalf("Lookup = %s, want %s", got, want)
	}
	if len(v.Members) != 3 || v.Rev < gen.ModRev {
		t.Fatalf("Lookup = %s at %d (generated member at %d)", ids(v.Members), v.Rev, gen.ModRev)
	}
	one, _ := e.reg.Lookup(ctx, "web", "p1", false)
	if len(one.Members) != 1 || !one.Members[0].Persistent {
		t.Fatalf("Lookup one = %+v", one.Members)
	}

	if _, err := e.reg.Deregister(ctx, "web", "w1", b); !errors.Is(err, registry.ErrNotOwner) {
		t.Fatalf("Deregister by another lease: %v", err)
	}
	if _, err := e.reg.Deregister(ctx, "web", "w1", a); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Deregister(ctx, "web", "w1", a); !errors.Is(err, registry.ErrMemberNotFound) {
		t.Fatalf("second Deregister: %v", err)
	}
	if _, err := e.reg.Deregister(ctx, "web", "p1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Lookup(ctx, "web", "w1", true); !errors.Is(err, registry.ErrMemberNotFound) {
		t.Fatalf("Lookup of a deregistered member: %v", err)
	}
	v, _ = e.reg.Lookup(ctx, "web", "", true)
	if len(v.Members) != 1 || v.Members[0].ID != gen.ID {
		t.Fatalf("after deregister: %s", ids(v.Members))
	}
	// The lease no longer names the deregistered member.
	refs, _ := e.leases.Owned(ctx, a)
	if len(refs) != 0 {
		t.Fatalf("lease a still owns %v", refs)
	}
}

func TestEndedLeaseRefused(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	e := gateway(t, &lay)
	a := grant(t, e, time.Minute)
	if err := e.leases.Revoke(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.reg.Register(ctx, registry.RegisterParams{Group: "g", ID: "x", LeaseID: a}); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("Register under a revoked lease: %v", err)
	}
	if ok, _, _ := e.sess.Conn().Exists(lay.Member("g", "x")); ok {
		t.Fatal("member created under a revoked lease")
	}
}

// next receives one event or fails after a deadline.
func next(t *testing.T, s *registry.Sub) *registry.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := s.Next(ctx)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		t.Fatal("no event within 5s")
	case err != nil:
		t.Fatalf("watch ended: %v", err)
	}
	return ev
}

func TestWatchSnapshotEventsAndExpiry(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	e := gateway(t, &lay)
	keep := grant(t, e, time.Minute)
	register(t, e, "svc", "a", "1", keep)

	sub, start, err := e.reg.Watch(ctx, "svc", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if start.Snapshot == nil || ids(start.Snapshot.Members()) != "a=1" || start.Resync {
		t.Fatalf("snapshot = %+v", start)
	}
	short := grant(t, e, time.Second)
	registered := time.Now()
	register(t, e, "svc", "b", "2", short)
	register(t, e, "svc", "a", "1b", keep)
	ev1, ev2 := next(t, sub), next(t, sub)
	if ev1.Type != registry.Joined || ev1.Member.ID != "b" || ev2.Type != registry.Updated || ev2.Member.Value != "1b" {
		t.Fatalf("events %+v %+v", ev1, ev2)
	}
	if !(start.Snapshot.Rev < ev1.Rev && ev1.Rev < ev2.Rev) {
		t.Fatalf("revisions not increasing: %d %d %d", start.Snapshot.Rev, ev1.Rev, ev2.Rev)
	}
	// b's lease is never kept alive: b leaves within TTL + 1s.
	ev3 := next(t, sub)
	if took := time.Since(registered); ev3.Type != registry.Left || ev3.Member.ID != "b" || took > 2*time.Second {
		t.Fatalf("after %v: %+v", took, ev3)
	}
	if ok, _, _ := e.sess.Conn().Exists(lay.Member("svc", "b")); ok {
		t.Fatal("expired member still in ZooKeeper")
	}

	// Resume after ev1: the backlog replays ev2 and ev3, no snapshot.
	sub2, start2, err := e.reg.Watch(ctx, "svc", ev1.Rev)
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	if start2.Snapshot != nil || len(start2.Backlog) != 2 || start2.Backlog[0].Rev != ev2.Rev || start2.Backlog[1].Rev != ev3.Rev {
		t.Fatalf("resume = %+v", start2)
	}
	// Resume from before this cache's history: a resync snapshot.
	sub3, start3, err := e.reg.Watch(ctx, "svc", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sub3.Close()
	if start3.Snapshot == nil || !start3.Resync || ids(start3.Snapshot.Members()) != "a=1b" {
		t.Fatalf("old resume = %+v", start3)
	}
}

// TestOneWatchPerGroup: many watchers of a group on one gateway hold one
// ZooKeeper watch, on the group's journal.
func TestOneWatchPerGroup(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	e := gateway(t, &lay)
	for i := 0; i < 50; i++ {
		sub, _, err := e.reg.Watch(ctx, "fan", 0)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
	}
	if _, err := e.reg.Lookup(ctx, "fan", "", true); err != nil {
		t.Fatal(err)
	}
	out := zktest.FourLetter(t, "wchp")
	if n := strings.Count(out, "\n0x"); !strings.Contains(out, lay.Log("fan")) {
		t.Fatalf("no watch on %s:\n%s", lay.Log("fan"), out)
	} else {
		_ = n
	}
	var count int
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if l == lay.Log("fan") {
			for _, s := range lines[i+1:] {
				if !strings.HasPrefix(strings.TrimSpace(s), "0x") {
					break
				}
				count++
			}
		}
		if strings.HasPrefix(l, lay.Group("fan")) && l != lay.Log("fan") {
			t.Fatalf("unexpected watch on %s", l)
		}
	}
	if count != 1 {
		t.Fatalf("%d sessions watch %s, want 1:\n%s", count, lay.Log("fan"), out)
	}
}

// TestLinearizableLookupAcrossGateways: a write through one gateway is seen
// by a linearizable lookup on another at once.
func TestLinearizableLookupAcrossGateways(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	a := gateway(t, &lay)
	b := gateway(t, &lay)
	la := grant(t, a, time.Minute)
	if _, err := b.reg.Lookup(ctx, "lin", "", false); err != nil { // warm b's cache
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		m := register(t, a, "lin", fmt.Sprintf("m%02d", i), "v", la)
		v, err := b.reg.Lookup(ctx, "lin", m.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Members) != 1 || v.Rev < m.ModRev {
			t.Fatalf("linearizable lookup missed %s (rev %d, lookup rev %d)", m.ID, m.ModRev, v.Rev)
		}
	}
}

// TestChurnConverges: concurrent registers, updates, deregisters and lease
// expiries on two gateways; afterwards every watcher's state, built only
// from its snapshot and events, equals the members in ZooKeeper.
func TestChurnConverges(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	// A small journal forces trims, so gateways also cross journal gaps.
	a := gateway(t, &lay, registry.WithJournal(20, 40))
	b := gateway(t, &lay, registry.WithJournal(20, 40))
	type watcher struct {
		sub   *registry.Sub
		state map[string]string
	}
	var ws []*watcher
	for _, e := range []env{a, b, a, b} {
		sub, start, err := e.reg.Watch(ctx, "churn", 0)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		w := &watcher{sub: sub, state: map[string]string{}}
		for _, m := range start.Snapshot.Members() {
			w.state[m.ID] = m.Value
		}
		ws = append(ws, w)
	}
	var wg sync.WaitGroup
	for worker := 0; worker < 6; worker++ {
		e := []env{a, b}[worker%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(worker), 7))
			l, err := e.leases.Grant(ctx, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			short, _ := e.leases.Grant(ctx, time.Second) // lapses mid-churn
			for i := 0; i < 60; i++ {
				id := fmt.Sprintf("w%d-%d", worker, rng.IntN(8))
				switch rng.IntN(3) {
				case 0, 1:
					_, _, err = e.reg.Register(ctx, registry.RegisterParams{Group: "churn", ID: id, Value: fmt.Sprint(i), LeaseID: l.ID})
				case 2:
					_, err = e.reg.Deregister(ctx, "churn", id, l.ID)
					if errors.Is(err, registry.ErrMemberNotFound) {
						err = nil
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
			_, _, _ = e.reg.Register(ctx, registry.RegisterParams{Group: "churn", ID: fmt.Sprintf("short%d", worker), Value: "s", LeaseID: short.ID})
		}()
	}
	wg.Wait()
	// Ground truth, read straight from ZooKeeper once the short leases lapsed.
	c := a.sess.Conn()
	truth := func() map[string]string {
		kids, _, err := c.Children(lay.Members("churn"))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, k := range kids {
			data, _, err := c.Get(lay.Members("churn") + "/" + k)
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			out[k] = string(data)
		}
		return out
	}
	zktest.Eventually(t, 5*time.Second, func() bool {
		for k := range truth() {
			if strings.HasPrefix(k, "short") {
				return false
			}
		}
		return true
	}, "short leases did not lapse")
	want := map[string]string{}
	for k := range truth() {
		v, _ := a.reg.Lookup(ctx, "churn", k, true)
		want[k] = v.Members[0].Value
	}
	for i, w := range ws {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		for !equal(w.state, want) {
			ev, err := w.sub.Next(dctx)
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("watcher %d did not converge within 2s:\n got %v\nwant %v", i, w.state, want)
			case err != nil:
				t.Fatalf("watcher %d ended: %v", i, err)
			}
			if ev.Type == registry.Left {
				delete(w.state, ev.Member.ID)
			} else {
				w.state[ev.Member.ID] = ev.Member.Value
			}
		}
		cancel()
	}
	for _, e := range []env{a, b} {
		v, _ := e.reg.Lookup(ctx, "churn", "", true)
		got := map[string]string{}
		for _, m := range v.Members {
			got[m.ID] = m.Value
		}
		if !equal(got, want) {
			t.Fatalf("Lookup disagrees with ZooKeeper:\n got %v\nwant %v", got, want)
		}
	}
	kids, _, _ := c.Children(lay.Log("churn"))
	if len(kids) > 40+12 {
		t.Fatalf("journal not trimmed: %d entries", len(kids))
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestJournalGapReread: when the entry a cache applied last is gone from the
// journal, the cache rereads the group and reports the difference.
func TestJournalGapReread(t *testing.T) {
	ctx := context.Background()
	var lay zktest.Layout
	e := gateway(t, &lay)
	l := grant(t, e, time.Minute)
	register(t, e, "gap", "a", "1", l)
	sub, _, err := e.reg.Watch(ctx, "gap", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Trim the whole journal behind the cache's back and remove a member
	// without journaling it: only a reread can notice.
	c := e.sess.Conn()
	kids, _, _ := c.Children(lay.Log("gap"))
	for _, k := range kids {
		if err := c.Delete(lay.Log("gap")+"/"+k, -1); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(lay.Member("gap", "a"), -1); err != nil {
		t.Fatal(err)
	}
	register(t, e, "gap", "b", "2", l)
	got := map[string]registry.EventType{}
	for len(got) < 2 {
		ev := next(t, sub)
		got[ev.Member.ID] = ev.Type
	}
	if got["a"] != registry.Left || got["b"] != registry.Joined {
		t.Fatalf("events after a journal gap: %v", got)
	}
	v, _ := e.reg.Lookup(ctx, "gap", "", false)
	if ids(v.Members) != "b=2" {
		t.Fatalf("Lookup after gap = %s", ids(v.Members))
	}
}

// TestJournalBoundedWithoutCache: writers trim the journal even when no
// gateway caches (watches or looks up) the group.
func TestJournalBoundedWithoutCache(t *testing.T) {
	var lay zktest.Layout
	e := gateway(t, &lay, registry.WithJournal(10, 20))
	l := grant(t, e, time.Minute)
	for i := 0; i < 60; i++ {
		register(t, e, "uncached", "m", fmt.Sprint(i), l)
	}
	if n := e.reg.Groups(); n != 0 {
		t.Fatalf("%d groups cached; the test needs none", n)
	}
	e.reg.Close() // waits for trims in flight
	kids, _, err := e.sess.Conn().Children(lay.Log("uncached"))
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) > 20+5 {
		t.Fatalf("journal holds %d entries, want at most 25", len(kids))
	}
}
