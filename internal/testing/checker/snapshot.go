package checker

import "fmt"

// CheckSnapshots checks that every read of a whole group is atomic: each
// successful Lookup (CACHED or LINEARIZABLE) and each SNAPSHOT message of a
// watch equals the truth at its revision, exactly: no member missing,
// extra, or with another value, so no part of a transaction without the
// rest (a torn read) and nothing from before or after the revision it
// names. A Lookup of one member is compared on that member. One check per
// read of t's group; a read whose revision the truth does not cover is
// unchecked.
func CheckSnapshots(h *History, t *Truth) Result {
	r := Result{Name: "snapshot-atomic"}
	for _, e := range h.Events() {
		if e.Group != t.Group {
			continue
		}
		var what string
		switch {
		case (e.Kind == KindLookup || e.Kind == KindCachedLookup) && e.ok():
			what = fmt.Sprintf("%s by %s %s..%s", e.Kind, e.Client, ts(e.Call), ts(e.Return))
		case e.Kind == KindWatchEvent && e.Type == WatchSnapshot:
			what = fmt.Sprintf("snapshot (resync %v) of %s at %s", e.Resync, e.Client, ts(e.Time))
		default:
			continue
		}
		want, known := t.At(e.Revision)
		if !known {
			r.Unchecked++
			r.note("unchecked: %s at revision %d, beyond the truth (complete to %d)", what, e.Revision, t.Known)
			continue
		}
		got := e.Members
		if e.Member != "" && e.Kind != KindWatchEvent {
			want = only(want, e.Member)
			got = only(got, e.Member)
		}
		r.check()
		if d := diffMembers(want, got); d != "" {
			r.fail("%s, revision %d: %s (%s)", what, e.Revision, d, t.explain(e.Revision, want, got))
		}
	}
	sortExamples(&r)
	return r
}

// only returns the entry of id in m, alone.
func only(m map[string]string, id string) map[string]string {
	out := map[string]string{}
	if v, ok := m[id]; ok {
		out[id] = v
	}
	return out
}

// explain says, for each member on which got differs from want (the truth
// at rev), the revisions of its changes around rev: a change at rev itself
// seen in part is a torn read; a change after rev, a read from the future;
// an older one, a stale read.
func (t *Truth) explain(rev int64, want, got map[string]string) string {
	ids := map[string]bool{}
	for id, v := range want {
		if g, ok := got[id]; !ok || g != v {
			ids[id] = true
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			ids[id] = true
		}
	}
	var parts []string
	for _, id := range sortedKeys(ids) {
		var before, after int64
		for _, c := range t.Changes {
			if c.Member != id {
				continue
			}
			if c.Rev <= rev {
				before = c.Rev
			} else {
				after = c.Rev
				break
			}
		}
		s := id + ":"
		if before != 0 {
			s += fmt.Sprintf(" changed at %d", before)
			if before == rev {
				s += fmt.Sprintf(" (this revision: %s)", t.describeRev(rev))
			}
		} else {
			s += " never changed before"
		}
		if after != 0 {
			s += fmt.Sprintf(", next at %d", after)
		}
		parts = append(parts, s)
	}
	return joinLimited(parts, 3)
}
