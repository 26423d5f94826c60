package checker

import (
	"strings"
	"testing"
)

// groupTruth is the truth the watch and snapshot tests share: a joins (10),
// b joins (20), x joins, is updated and leaves (22, 24, 26), a is updated
// (30), one transaction deletes b and adds c (40), a leaves (50).
func groupTruth() *Truth {
	return truthOf(60, 5000,
		put(10, 100, "a", "1", "L1"), put(20, 200, "b", "1", "L2"),
		put(22, 220, "x", "1", "L2"), put(24, 240, "x", "2", "L2"), del(26, 260, "x"),
		put(30, 300, "a", "2", "L1"), del(40, 400, "b"), put(40, 400, "c", "1", "L3"), del(50, 500, "a"))
}

// snap is a SNAPSHOT message of watcher w at rev.
func snap(w string, rev int64, resync bool, members map[string]string) Event {
	return Event{Kind: KindWatchEvent, Client: w, Group: "g", Type: WatchSnapshot, Revision: rev, Members: members, Resync: resync}
}

// wev is a JOINED, UPDATED or LEFT message of watcher w.
func wev(w string, typ WatchType, rev int64, member, value string) Event {
	return Event{Kind: KindWatchEvent, Client: w, Group: "g", Type: typ, Revision: rev, Member: member, Value: value}
}

// cleanStream is every message a watcher that started at revision 5 gets.
func cleanStream(w string) []Event {
	return []Event{
		snap(w, 5, false, nil),
		wev(w, WatchJoined, 10, "a", "1"), wev(w, WatchJoined, 20, "b", "1"),
		wev(w, WatchJoined, 22, "x", "1"), wev(w, WatchUpdated, 24, "x", "2"), wev(w, WatchLeft, 26, "x", "2"),
		wev(w, WatchUpdated, 30, "a", "2"), wev(w, WatchLeft, 40, "b", "1"), wev(w, WatchJoined, 40, "c", "1"),
		wev(w, WatchLeft, 50, "a", "2"),
	}
}

// without returns evs without the messages at the given indexes.
func without(evs []Event, drop ...int) []Event {
	skip := map[int]bool{}
	for _, i := range drop {
		skip[i] = true
	}
	var out []Event
	for i, e := range evs {
		if !skip[i] {
			out = append(out, e)
		}
	}
	return out
}

// withMore sets More on the messages at the given indexes.
func withMore(evs []Event, idx ...int) []Event {
	out := append([]Event(nil), evs...)
	for _, i := range idx {
		out[i].More = true
	}
	return out
}

func TestCheckWatchDelivery(t *testing.T) {
	clean := cleanStream("w")
	wrong := append([]Event(nil), clean...)
	wrong[1].Value = "9"
	joinedTwice := append([]Event(nil), clean...)
	joinedTwice[6] = wev("w", WatchJoined, 30, "a", "2")
	for _, tc := range []struct {
		name                          string
		evs                           []Event
		more                          bool
		checks, violations, unchecked int
		want                          string
	}{
		{name: "every change delivered", evs: clean, checks: 8},
		{name: "two watchers", evs: append(cleanStream("w1"), cleanStream("w2")...), checks: 16},
		{name: "missing JOINED", evs: without(clean, 2), checks: 8, violations: 1, want: "missed revision 20 (put b=\"1\")"},
		{name: "missing UPDATED", evs: without(clean, 6), checks: 8, violations: 1, want: "missed revision 30"},
		{name: "missing LEFT of a transaction", evs: without(clean, 7), checks: 8, violations: 1, want: "missing b LEFT"},
		{
			name:   "a member's join, update and leave all missed",
			evs:    without(clean, 3, 4, 5),
			checks: 8, violations: 3, want: "missed revision 22",
		},
		{name: "wrong value", evs: wrong, checks: 8, violations: 1, want: `a JOINED="9", want JOINED="1"`},
		{name: "JOINED for a present member", evs: joinedTwice, checks: 8, violations: 1, want: `a JOINED="2", want UPDATED="2"`},
		{
			name: "resync snapshot covers a gap",
			evs: append([]Event{clean[0], clean[1], snap("w", 30, true, map[string]string{"a": "2", "b": "1"})},
				clean[7:]...),
			checks: 4, // 10, the snapshot, 40, 50
		},
		{
			name:   "the same gap without a snapshot",
			evs:    append([]Event{clean[0], clean[1]}, clean[7:]...),
			checks: 8, violations: 5, want: "missed revision 20",
		},
		{
			name: "mid-stream snapshot not marked resync",
			evs: append([]Event{clean[0], clean[1], snap("w", 30, false, map[string]string{"a": "2", "b": "1"})},
				clean[7:]...),
			checks: 4, violations: 1, want: "without resync",
		},
		{
			name:   "revision repeated",
			evs:    append(append([]Event(nil), clean[:3]...), wev("w", WatchUpdated, 10, "a", "1")),
			checks: 3, violations: 1, want: "revisions must rise",
		},
		{name: "events beyond the truth", evs: append(clean, wev("w", WatchJoined, 70, "d", "1")), checks: 8, unchecked: 1},
		{name: "more: a revision in one state", evs: withMore(clean, 7), more: true, checks: 8},
		{
			name: "more: a revision torn in two states",
			evs:  clean, more: true,
			checks: 9, violations: 2, want: "missing c JOINED",
		},
		{
			name: "more: more on a revision's last message",
			evs:  withMore(clean, 7, 8), more: true,
			checks: 8, violations: 1, want: "its last message said more",
		},
		{name: "more: stream ends inside a revision", evs: withMore(clean[:8], 7), more: true, checks: 6, unchecked: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []Option
			if tc.more {
				opts = append(opts, WithMore())
			}
			r := CheckWatchDelivery(history(tc.evs...), groupTruth(), opts...)
			assertResult(t, r, tc.checks, tc.violations, tc.unchecked)
			if tc.want != "" && (len(r.Examples) == 0 || !strings.Contains(r.Examples[0], tc.want)) {
				t.Errorf("examples %q lack %q", r.Examples, tc.want)
			}
		})
	}
}

func TestCheckSnapshots(t *testing.T) {
	lk := func(kind Kind, rev int64, members map[string]string) Event {
		return Event{Kind: kind, Client: "c", Group: "g", Revision: rev, Members: members, Call: at(1000), Return: at(1010), Time: at(1010)}
	}
	ok := []Event{
		snap("w", 5, false, nil),
		lk(KindLookup, 40, map[string]string{"a": "2", "c": "1"}),
		lk(KindCachedLookup, 35, map[string]string{"a": "2", "b": "1"}), // no change at 35: the state after 30
		snap("w", 24, true, map[string]string{"a": "1", "b": "1", "x": "2"}),
	}
	one := lk(KindCachedLookup, 40, map[string]string{"c": "1"})
	one.Member = "c"
	failed := lk(KindLookup, 40, nil)
	failed.Err = "Unavailable"
	for _, tc := range []struct {
		name                          string
		evs                           []Event
		checks, violations, unchecked int
		want                          string
	}{
		{name: "exact reads", evs: append(ok, one, failed), checks: 5},
		{
			name:   "torn lookup: c joined but b not yet left",
			evs:    append(ok, lk(KindCachedLookup, 40, map[string]string{"a": "2", "b": "1", "c": "1"})),
			checks: 5, violations: 1, want: "extra b (b: changed at 40 (this revision: del b, put c=\"1\"))",
		},
		{
			name:   "torn snapshot: b left but c not yet joined",
			evs:    append(ok, snap("w2", 40, false, map[string]string{"a": "2"})),
			checks: 5, violations: 1, want: "snapshot (resync false) of w2",
		},
		{
			name:   "stale lookup",
			evs:    append(ok, lk(KindLookup, 30, map[string]string{"a": "1", "b": "1"})),
			checks: 5, violations: 1, want: `value a="1" want "2"`,
		},
		{name: "beyond the truth", evs: append(ok, lk(KindLookup, 61, nil)), checks: 4, unchecked: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckSnapshots(history(tc.evs...), groupTruth())
			assertResult(t, r, tc.checks, tc.violations, tc.unchecked)
			if tc.want != "" && (len(r.Examples) == 0 || !strings.Contains(r.Examples[0], tc.want)) {
				t.Errorf("examples %q lack %q", r.Examples, tc.want)
			}
		})
	}
}
