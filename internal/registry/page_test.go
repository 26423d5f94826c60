package registry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// write is one acknowledged write of a history: a put of value (or a
// delete) of member id at revision rev.
type write struct {
	id, value string
	del       bool
	rev       int64
}

// stateAt is the group that a history of acknowledged writes makes at rev.
func stateAt(history []write, rev int64) map[string]string {
	st := map[string]string{}
	for _, w := range history {
		switch {
		case w.rev > rev:
		case w.del:
			delete(st, w.id)
		default:
			st[w.id] = w.value
		}
	}
	return st
}

// checkPages reports how the pages of a paged read differ from the group
// at rev as the history makes it: pages in ID order, nothing duplicated,
// nothing missed, every value as of rev.
func checkPages(pages [][]*registry.Member, rev int64, history []write) error {
	want := stateAt(history, rev)
	seen := map[string]bool{}
	last := ""
	var errs []string
	for pi, p := range pages {
		for _, m := range p {
			switch {
			case seen[m.ID]:
				errs = append(errs, fmt.Sprintf("page %d: %s again", pi, m.ID))
			case m.ID <= last:
				errs = append(errs, fmt.Sprintf("page %d: %s after %s", pi, m.ID, last))
			}
			seen[m.ID], last = true, max(last, m.ID)
			if v, ok := want[m.ID]; !ok {
				errs = append(errs, fmt.Sprintf("page %d: %s not in the group at %d", pi, m.ID, rev))
			} else if v != m.Value {
				errs = append(errs, fmt.Sprintf("page %d: %s=%s, at %d it was %s", pi, m.ID, m.Value, rev, v))
			}
		}
	}
	for id := range want {
		if !seen[id] {
			errs = append(errs, fmt.Sprintf("%s missed", id))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// TestCheckPagesCatchesBrokenReads feeds the checker broken reads: a
// checker that passes them could not fail the test below.
func TestCheckPagesCatchesBrokenReads(t *testing.T) {
	h := []write{{id: "a", value: "1", rev: 1}, {id: "b", value: "1", rev: 2}, {id: "c", value: "1", rev: 3},
		{id: "b", value: "2", rev: 5}, {id: "d", value: "1", rev: 6}, {id: "a", del: true, rev: 7}}
	m := func(id, v string) *registry.Member { return &registry.Member{ID: id, Value: v} }
	good := [][]*registry.Member{{m("a", "1"), m("b", "1")}, {m("c", "1")}}
	if err := checkPages(good, 4, h); err != nil {
		t.Fatalf("a good read: %v", err)
	}
	for name, pages := range map[string][][]*registry.Member{
		"duplicate":     {{m("a", "1"), m("b", "1")}, {m("b", "1"), m("c", "1")}},
		"missed":        {{m("a", "1")}, {m("c", "1")}},
		"newer value":   {{m("a", "1"), m("b", "2")}, {m("c", "1")}},
		"later join":    {{m("a", "1"), m("b", "1")}, {m("c", "1"), m("d", "1")}},
		"out of order":  {{m("b", "1"), m("a", "1")}, {m("c", "1")}},
		"next revision": {{m("b", "2"), m("c", "1")}},
	} {
		if err := checkPages(pages, 4, h); err == nil {
			t.Errorf("%s: the checker passed %v", name, pages)
		}
	}
}

// TestPagesAtOneRevision reads a group larger than a page while members
// join, leave and change between pages: the pages together are the group
// at the first page's revision.
func TestPagesAtOneRevision(t *testing.T) {
	var lay zktest.Layout
	e := gateway(t, &lay)
	ctx := context.Background()
	var h []write
	put := func(id, v string) {
		_, rev, err := e.reg.Register(ctx, registry.RegisterParams{Group: "big", ID: id, Value: v, Persistent: true})
		if err != nil {
			t.Fatal(err)
		}
		h = append(h, write{id: id, value: v, rev: rev})
	}
	del := func(id string) {
		rev, err := e.reg.Deregister(ctx, "big", id, "")
		if err != nil {
			t.Fatal(err)
		}
		h = append(h, write{id: id, del: true, rev: rev})
	}
	for i := range 120 {
		put(fmt.Sprintf("m%03d", i), "v0")
	}
	q := registry.PageQuery{Limit: 25, MaxBytes: 1 << 20}
	p, err := e.reg.LookupPage(ctx, "big", q, true)
	if err != nil {
		t.Fatal(err)
	}
	rev, pages := p.Rev, [][]*registry.Member{p.Members}
	for i := 0; p.More; i++ {
		// Between pages: a member before the cursor leaves, one after it
		// leaves, one joins at each end, one ahead changes.
		del(fmt.Sprintf("m%03d", i))
		del(fmt.Sprintf("m%03d", 119-i))
		put(fmt.Sprintf("a%03d", i), "new")
		put(fmt.Sprintf("z%03d", i), "new")
		put(fmt.Sprintf("m%03d", 100-i), fmt.Sprint("v", i+1))
		q.Rev, q.After = rev, p.Members[len(p.Members)-1].ID
		if p, err = e.reg.LookupPage(ctx, "big", q, false); err != nil {
			t.Fatalf("page %d: %v", i+1, err)
		}
		if p.Rev != rev {
			t.Fatalf("page %d at revision %d, the first at %d", i+1, p.Rev, rev)
		}
		pages = append(pages, p.Members)
	}
	if len(pages) != 5 {
		t.Errorf("%d pages of 25 for 120 members, want 5", len(pages))
	}
	if err := checkPages(pages, rev, h); err != nil {
		t.Fatal(err)
	}
	// The cache moved on meanwhile: a first page now is another revision.
	now, err := e.reg.LookupPage(ctx, "big", registry.PageQuery{Limit: 1000, MaxBytes: 1 << 20}, true)
	if err != nil || now.Rev <= rev || now.More {
		t.Fatalf("a read now: rev %d (first read %d), more %v, %v", now.Rev, rev, now.More, err)
	}
	if err := checkPages([][]*registry.Member{now.Members}, now.Rev, h); err != nil {
		t.Fatal(err)
	}
}

// TestPageRevisionGone: a revision no longer held (expired here, or held
// by another gateway) is refused with ErrRevisionGone, unless the group
// has not changed since it.
func TestPageRevisionGone(t *testing.T) {
	var lay zktest.Layout
	a := gateway(t, &lay, registry.WithPageHold(time.Nanosecond, 1), registry.WithIdleEviction(time.Hour))
	b, c := gateway(t, &lay), gateway(t, &lay)
	ctx := context.Background()
	for i := range 5 {
		register(t, a, "g", fmt.Sprint("m", i), "v", "")
	}
	q := registry.PageQuery{Limit: 2, MaxBytes: 1 << 20}
	p, err := a.reg.LookupPage(ctx, "g", q, true)
	if err != nil || !p.More {
		t.Fatalf("first page: %+v, %v", p, err)
	}
	q.Rev, q.After = p.Rev, p.Members[1].ID
	// Unchanged since: another gateway serves the revision from its cache.
	all := registry.PageQuery{Limit: 1000, MaxBytes: 1 << 20} // one page: holds nothing
	if p2, err := b.reg.LookupPage(ctx, "g", all, true); err != nil || p2.Rev < p.Rev {
		t.Fatalf("catch b up: %+v %v", p2, err)
	}
	if p2, err := b.reg.LookupPage(ctx, "g", q, false); err != nil || ids(p2.Members) != "m2=v,m3=v" {
		t.Fatalf("b, unchanged group: %+v, %v", p2, err)
	}
	// Changed since: a gateway that does not hold the revision refuses it
	// (b now holds it, having served a page of it).
	register(t, a, "g", "m9", "v", "")
	if _, err := c.reg.LookupPage(ctx, "g", all, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.reg.LookupPage(ctx, "g", q, false); !errors.Is(err, registry.ErrRevisionGone) {
		t.Fatalf("c, changed group: %v, want ErrRevisionGone", err)
	}
	if p2, err := b.reg.LookupPage(ctx, "g", q, false); err != nil || ids(p2.Members) != "m2=v,m3=v" {
		t.Fatalf("b, holding the revision: %+v, %v", p2, err)
	}
	// a held it; a second read's first page pushes it out (one held).
	if _, err := a.reg.LookupPage(ctx, "g", registry.PageQuery{Limit: 2, MaxBytes: 1 << 20}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.reg.LookupPage(ctx, "g", q, false); !errors.Is(err, registry.ErrRevisionGone) {
		t.Fatalf("a, pushed out: %v, want ErrRevisionGone", err)
	}
}

// TestPageBounds: a page holds at most limit members and maxBytes, and at
// least one member.
func TestPageBounds(t *testing.T) {
	var lay zktest.Layout
	e := gateway(t, &lay)
	ctx := context.Background()
	big := strings.Repeat("x", 1000)
	for i := range 10 {
		register(t, e, "b", fmt.Sprint("m", i), big, "")
	}
	one := (&registry.Member{Group: "b", ID: "m0", Value: big}).Size()
	for _, c := range []struct{ limit, bytes, want int }{
		{3, 1 << 20, 3}, {100, 1 << 20, 10}, {100, 3*one + one/2, 3}, {100, 1, 1},
	} {
		p, err := e.reg.LookupPage(ctx, "b", registry.PageQuery{Limit: c.limit, MaxBytes: c.bytes}, true)
		if err != nil || len(p.Members) != c.want || p.More != (c.want < 10) {
			t.Errorf("limit %d, %d bytes: %d members, more %v, %v; want %d", c.limit, c.bytes, len(p.Members), p.More, err, c.want)
		}
	}
}
