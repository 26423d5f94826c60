package checker

import (
	"strings"
	"testing"
	"time"
)

// pe builds a permit event of semaphore "s" with N = 2.
func pe(ms int, kind Kind, client string, token int64) Event {
	return Event{Time: at(ms), Kind: kind, Client: client, Semaphore: "s", Permits: 2, Token: token}
}

// pj builds a permit's JEOPARDY with its deadline.
func pj(ms int, client string, token int64, deadlineMS int) Event {
	e := pe(ms, KindPermitJeopardy, client, token)
	e.Deadline = at(deadlineMS)
	return e
}

// TestCheckSemaphores feeds the checker correct histories and broken ones
// (three permits live at once of two; a JEOPARDY whose deadline had not
// passed; a LOST heard late; one token for two clients; another N), and
// sees it pass the first and fail each of the others.
func TestCheckSemaphores(t *testing.T) {
	for _, tc := range []struct {
		name               string
		evs                []Event
		opts               []Option
		checks, violations int
		want               string // in the first example
	}{
		{
			name: "correct: releases, a crash, a jeopardy deadline, a resumed permit",
			evs: []Event{
				pe(0, KindPermitHeld, "a", 10),
				pe(10, KindPermitHeld, "b", 11),
				pe(100, KindPermitReleased, "a", 10),
				pe(120, KindPermitHeld, "c", 12), // a released: b and c
				pj(200, "b", 11, 400),
				pe(300, KindPermitHeld, "b", 11), // resumed: the same permit
				pe(350, KindPermitEnded, "b", 11),
				pe(360, KindPermitHeld, "d", 13),
				pj(500, "c", 12, 600),
				pe(650, KindPermitHeld, "e", 14), // c's deadline passed
				pe(700, KindPermitLost, "d", 13),
				// another semaphore is independent
				{Time: at(5), Kind: KindPermitHeld, Client: "x", Semaphore: "t", Permits: 1, Token: 5},
			},
			// five new permits of s, one of t, one resumed.
			checks: 7,
		},
		{
			name:       "three live of two",
			evs:        []Event{pe(0, KindPermitHeld, "a", 10), pe(10, KindPermitHeld, "b", 11), pe(20, KindPermitHeld, "c", 12)},
			checks:     3,
			violations: 1,
			want:       "permits: semaphore s: c HELD token 12 at 03:04:05.020 while 3 permits were live",
		},
		{
			name: "held before the jeopardy deadline",
			evs: []Event{pe(0, KindPermitHeld, "a", 10), pe(10, KindPermitHeld, "b", 11), pj(100, "a", 10, 500),
				pe(300, KindPermitHeld, "c", 12)},
			checks:     3,
			violations: 1,
			want:       "permits",
		},
		{
			name: "resumed from jeopardy, then a third",
			evs: []Event{pe(0, KindPermitHeld, "a", 10), pe(10, KindPermitHeld, "b", 11), pj(100, "a", 10, 500),
				pe(200, KindPermitHeld, "a", 10), pe(700, KindPermitHeld, "c", 12)},
			checks:     4,
			violations: 1,
			want:       "permits",
		},
		{
			name: "LOST heard after the next HELD: strict",
			evs: []Event{pe(0, KindPermitHeld, "a", 10), pe(10, KindPermitHeld, "b", 11), pe(100, KindPermitHeld, "c", 12),
				pe(130, KindPermitLost, "a", 10)},
			checks:     3,
			violations: 1,
			want:       "permits",
		},
		{
			name: "LOST heard after the next HELD: within slack",
			evs: []Event{pe(0, KindPermitHeld, "a", 10), pe(10, KindPermitHeld, "b", 11), pe(100, KindPermitHeld, "c", 12),
				pe(130, KindPermitLost, "a", 10)},
			opts:   []Option{WithSlack(50 * time.Millisecond)},
			checks: 3,
		},
		{
			name:       "one token, two clients",
			evs:        []Event{pe(0, KindPermitHeld, "a", 10), pe(10, KindPermitHeld, "b", 10)},
			checks:     2,
			violations: 1,
			want:       "tokens: semaphore s: token 10 HELD by b",
		},
		{
			name: "another N",
			evs: []Event{pe(0, KindPermitHeld, "a", 10),
				{Time: at(10), Kind: KindPermitHeld, Client: "b", Semaphore: "s", Permits: 3, Token: 11}},
			checks:     3,
			violations: 1,
			want:       "with 3 permits, the semaphore has 2",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckSemaphores(history(tc.evs...), tc.opts...)
			assertResult(t, r, tc.checks, tc.violations, 0)
			if tc.want != "" && (len(r.Examples) == 0 || !strings.Contains(r.Examples[0], tc.want)) {
				t.Errorf("examples %q lack %q", r.Examples, tc.want)
			}
		})
	}
}
