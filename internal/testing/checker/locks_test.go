package checker

import (
	"strings"
	"testing"
)

// lk builds a lock event of lock "l".
func lk(ms int, kind Kind, client string, token int64, shared bool) Event {
	return Event{Time: at(ms), Kind: kind, Client: client, Lock: "l", Token: token, Shared: shared}
}

// lkJeopardy builds a lock JEOPARDY with its deadline.
func lkJeopardy(ms int, client string, token int64, deadlineMS int) Event {
	e := lk(ms, KindLockJeopardy, client, token, false)
	e.Deadline = at(deadlineMS)
	return e
}

// lkWrite builds an operation on the fenced resource.
func lkWrite(ms int, client string, token int64, shared, accepted bool) Event {
	e := lk(ms, KindLockWrite, client, token, shared)
	e.Accepted = accepted
	return e
}

// TestCheckLocks feeds CheckLocks a correct history and broken ones: each
// broken one must fail (the mutation tests of the lock checker).
func TestCheckLocks(t *testing.T) {
	x, s := false, true
	for _, tc := range []struct {
		name               string
		evs                []Event
		checks, violations int
		want               string // in the first example
	}{
		{
			name: "correct: handovers, readers together, jeopardy expiry, fenced writes",
			evs: []Event{
				lk(0, KindLockHeld, "a", 10, x),
				lkWrite(10, "a", 10, x, true),
				lk(100, KindLockReleased, "a", 10, x),
				lk(110, KindLockHeld, "r1", 20, s),
				lk(115, KindLockHeld, "r2", 21, s), // readers share
				lkWrite(120, "r2", 21, s, true),
				lkWrite(125, "r1", 20, s, true), // readers in any order
				lk(200, KindLockReleased, "r1", 20, s),
				lk(210, KindLockReleased, "r2", 21, s),
				lk(300, KindLockHeld, "b", 30, x),
				lkJeopardy(350, "b", 30, 400),
				lkWrite(360, "a", 10, x, false),   // the old holder is refused
				lk(500, KindLockHeld, "c", 40, x), // b's deadline passed
				lkWrite(510, "c", 40, x, true),
				lk(600, KindLockEnded, "c", 40, x),
				{Time: at(50), Kind: KindLockHeld, Client: "z", Lock: "other", Token: 5}, // another lock
			},
			// r1 new (1 token + 1 hold), r2 new (1 + 1: a; r1 is a reader),
			// b new (1 + 3), c new (1 + 4), four accepted operations.
			checks: 17,
		},
		{
			name:       "two writers at once",
			evs:        []Event{lk(0, KindLockHeld, "a", 10, x), lk(100, KindLockHeld, "b", 20, x), lk(200, KindLockReleased, "a", 10, x)},
			checks:     2,
			violations: 1,
			want:       "exclusion: lock l: b HELD (shared false) with token 20",
		},
		{
			name:       "a writer while a reader reads",
			evs:        []Event{lk(0, KindLockHeld, "r", 10, s), lk(100, KindLockHeld, "w", 20, x)},
			checks:     2,
			violations: 1,
			want:       "exclusion",
		},
		{
			name:       "a reader while a writer writes",
			evs:        []Event{lk(0, KindLockHeld, "w", 10, x), lk(100, KindLockHeld, "r", 20, s)},
			checks:     2,
			violations: 1,
			want:       "exclusion",
		},
		{
			name:       "held before the jeopardy deadline",
			evs:        []Event{lk(0, KindLockHeld, "a", 10, x), lkJeopardy(100, "a", 10, 500), lk(300, KindLockHeld, "b", 20, x)},
			checks:     2,
			violations: 1,
			want:       "exclusion",
		},
		{
			name:       "a token going back",
			evs:        []Event{lk(0, KindLockHeld, "a", 20, x), lk(100, KindLockReleased, "a", 20, x), lk(200, KindLockHeld, "b", 10, x)},
			checks:     2,
			violations: 1,
			want:       "tokens: lock l: new hold of b",
		},
		{
			name:       "a reader's token below a writer's",
			evs:        []Event{lk(0, KindLockHeld, "w", 20, x), lk(100, KindLockReleased, "w", 20, x), lk(200, KindLockHeld, "r", 10, s)},
			checks:     2,
			violations: 1,
			want:       "tokens",
		},
		{
			name:       "one token, two holders",
			evs:        []Event{lk(0, KindLockHeld, "a", 10, x), lk(100, KindLockHeld, "b", 10, x)},
			checks:     1,
			violations: 1,
			want:       "tokens: lock l: token 10 HELD for b",
		},
		{
			name: "the resource admits a stale writer",
			evs: []Event{lk(0, KindLockHeld, "a", 10, x), lk(100, KindLockLost, "a", 10, x), lk(110, KindLockHeld, "b", 20, x),
				lkWrite(120, "b", 20, x, true), lkWrite(130, "a", 10, x, true)},
			checks:     4,
			violations: 1,
			want:       "fencing: lock l: operation with token 10",
		},
		{
			name: "the resource admits a reader after a newer writer",
			evs: []Event{lk(0, KindLockHeld, "r", 10, s), lk(100, KindLockLost, "r", 10, s), lk(110, KindLockHeld, "w", 20, x),
				lkWrite(120, "w", 20, x, true), lkWrite(130, "r", 10, s, true)},
			checks:     4,
			violations: 1,
			want:       "fencing",
		},
		{
			name:       "the resource admits a token nobody held",
			evs:        []Event{lkWrite(10, "a", 7, x, true)},
			checks:     1,
			violations: 1,
			want:       "that no one held",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistory()
			for _, e := range tc.evs {
				h.Record(e)
			}
			r := CheckLocks(h)
			if r.Checks != tc.checks || r.Violations != tc.violations {
				t.Fatalf("checks %d violations %d, want %d and %d: %v", r.Checks, r.Violations, tc.checks, tc.violations, r.Examples)
			}
			if tc.want != "" && (len(r.Examples) == 0 || !strings.Contains(r.Examples[0], tc.want)) {
				t.Fatalf("examples %q, want one with %q", r.Examples, tc.want)
			}
		})
	}
}
