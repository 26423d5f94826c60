package registry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testing/checker"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
)

// history records a group's acknowledged writes, for checker.CheckPages.
type history []checker.PageWrite

func pagedOf(ms []*registry.Member) []checker.PagedMember {
	out := make([]checker.PagedMember, len(ms))
	for i, m := range ms {
		out[i] = checker.PagedMember{ID: m.ID, Value: m.Value}
	}
	return out
}

// TestPagesAtOneRevision reads a group larger than a page while members
// join, leave and change between pages: the pages together are the group
// at the first page's revision.
func TestPagesAtOneRevision(t *testing.T) {
	var lay zktest.Layout
	e := gateway(t, &lay)
	ctx := context.Background()
	var h history
	put := func(id, v string) {
		_, rev, err := e.reg.Register(ctx, registry.RegisterParams{Group: "big", ID: id, Value: v, Persistent: true})
		if err != nil {
			t.Fatal(err)
		}
		h = append(h, checker.PageWrite{ID: id, Value: v, Rev: rev})
	}
	del := func(id string) {
		rev, err := e.reg.Deregister(ctx, "big", id, "")
		if err != nil {
			t.Fatal(err)
		}
		h = append(h, checker.PageWrite{ID: id, Del: true, Rev: rev})
	}
	for i := range 120 {
		put(fmt.Sprintf("m%03d", i), "v0")
	}
	q := registry.PageQuery{Limit: 25, MaxBytes: 1 << 20}
	p, err := e.reg.LookupPage(ctx, "big", q, true)
	if err != nil {
		t.Fatal(err)
	}
	rev, pages := p.Rev, [][]checker.PagedMember{pagedOf(p.Members)}
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
		pages = append(pages, pagedOf(p.Members))
	}
	if len(pages) != 5 {
		t.Errorf("%d pages of 25 for 120 members, want 5", len(pages))
	}
	if err := checker.CheckPages(pages, rev, h); err != nil {
		t.Fatal(err)
	}
	// The cache moved on meanwhile: a first page now is another revision.
	now, err := e.reg.LookupPage(ctx, "big", registry.PageQuery{Limit: 1000, MaxBytes: 1 << 20}, true)
	if err != nil || now.Rev <= rev || now.More {
		t.Fatalf("a read now: rev %d (first read %d), more %v, %v", now.Rev, rev, now.More, err)
	}
	if err := checker.CheckPages([][]checker.PagedMember{pagedOf(now.Members)}, now.Rev, h); err != nil {
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
