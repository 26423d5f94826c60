package checker

import (
	"strings"
	"testing"
	"time"
)

// el builds an election event of election "e".
func el(ms int, kind Kind, client string, token int64) Event {
	return Event{Time: at(ms), Kind: kind, Client: client, Election: "e", Token: token}
}

// jeopardy builds a JEOPARDY with its deadline.
func jeopardy(ms int, client string, token int64, deadlineMS int) Event {
	e := el(ms, KindJeopardy, client, token)
	e.Deadline = at(deadlineMS)
	return e
}

// write builds a resource write.
func write(ms int, client string, token int64, accepted bool) Event {
	e := el(ms, KindResourceWrite, client, token)
	e.Accepted = accepted
	return e
}

func TestCheckLeadership(t *testing.T) {
	for _, tc := range []struct {
		name               string
		evs                []Event
		opts               []Option
		checks, violations int
		want               string // in the first example
	}{
		{
			name: "correct: resign, jeopardy expiry, resumed term",
			evs: []Event{
				el(0, KindElected, "a", 10),
				jeopardy(100, "a", 10, 500),
				el(200, KindElected, "a", 10), // resumed: same term
				write(250, "a", 10, true),
				el(300, KindResigned, "a", 10),
				el(320, KindElected, "b", 20),
				write(330, "b", 20, true),
				write(340, "a", 10, false), // the deposed leader is refused
				jeopardy(400, "b", 20, 600),
				el(700, KindElected, "c", 30), // b's deadline passed
				write(710, "c", 30, true),
				el(800, KindTermEnded, "c", 30),
				el(900, KindElected, "c", 30), // campaign resumed with its lease
				el(1000, KindLost, "c", 30),
				// another election is independent
				{Time: at(50), Kind: KindElected, Client: "x", Election: "f", Token: 5},
			},
			// a re-elected (1), b new (1+1 earlier), c new (1+2), c again (1),
			// three accepted writes.
			checks: 10,
		},
		{
			name:       "two interleaved leaders",
			evs:        []Event{el(0, KindElected, "a", 10), el(100, KindElected, "b", 20), el(200, KindResigned, "a", 10)},
			checks:     2,
			violations: 1,
			want:       "overlap: election e: b ELECTED with token 20",
		},
		{
			name:       "elected before the jeopardy deadline",
			evs:        []Event{el(0, KindElected, "a", 10), jeopardy(100, "a", 10, 500), el(300, KindElected, "b", 20)},
			checks:     2,
			violations: 1,
			want:       "overlap",
		},
		{
			name:       "resumed from jeopardy, then a successor",
			evs:        []Event{el(0, KindElected, "a", 10), jeopardy(100, "a", 10, 500), el(200, KindElected, "a", 10), el(700, KindElected, "b", 20)},
			checks:     3,
			violations: 1,
			want:       "overlap",
		},
		{
			name:       "token going down",
			evs:        []Event{el(0, KindElected, "a", 20), el(50, KindResigned, "a", 20), el(100, KindElected, "b", 10)},
			checks:     2,
			violations: 1,
			want:       "tokens: election e: new term of b at 03:04:05.100 has token 10, lower than token 20",
		},
		{
			name:       "deposed leader elected again with its old token",
			evs:        []Event{el(0, KindElected, "a", 10), el(50, KindLost, "a", 10), el(100, KindElected, "b", 20), el(150, KindElected, "a", 10)},
			checks:     3,
			violations: 1,
			want:       "tokens: election e: a ELECTED again with token 10",
		},
		{
			name:       "one token, two clients",
			evs:        []Event{el(0, KindElected, "a", 10), el(100, KindElected, "b", 10)},
			checks:     1,
			violations: 1,
			want:       "already a's",
		},
		{
			name: "accepted writes interleave",
			evs: []Event{
				el(0, KindElected, "a", 10), el(50, KindTermEnded, "a", 10), el(100, KindElected, "b", 20),
				write(110, "a", 10, true), write(120, "b", 20, true), write(130, "a", 10, true),
			},
			checks:     5,
			violations: 1,
			want:       "fencing: election e: write with token 10 by a accepted at 03:04:05.130 after token 20",
		},
		{
			name:       "write with a token nobody was elected with",
			evs:        []Event{el(0, KindElected, "a", 10), write(10, "a", 10, true), write(20, "z", 99, true)},
			checks:     2,
			violations: 1,
			want:       "that no one was ELECTED with",
		},
		{
			name:       "LOST heard after the successor's ELECTED: strict",
			evs:        []Event{el(0, KindElected, "a", 10), el(100, KindElected, "b", 20), el(130, KindLost, "a", 10)},
			checks:     2,
			violations: 1,
			want:       "overlap",
		},
		{
			name:   "LOST heard after the successor's ELECTED: within slack",
			evs:    []Event{el(0, KindElected, "a", 10), el(100, KindElected, "b", 20), el(130, KindLost, "a", 10)},
			opts:   []Option{WithSlack(50 * time.Millisecond)},
			checks: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckLeadership(history(tc.evs...), tc.opts...)
			assertResult(t, r, tc.checks, tc.violations, 0)
			if tc.want != "" && (len(r.Examples) == 0 || !strings.Contains(r.Examples[0], tc.want)) {
				t.Errorf("examples %q lack %q", r.Examples, tc.want)
			}
		})
	}
}
