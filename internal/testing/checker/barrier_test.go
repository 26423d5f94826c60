package checker

import (
	"strings"
	"testing"
	"time"
)

// arrive builds an AwaitBarrier call start at barrier b with threshold n.
func arrive(ms int, client string, n int) Event {
	return Event{Time: at(ms), Kind: KindBarrierArrive, Client: client, Barrier: "b", Threshold: n}
}

// released builds a release seen by client.
func released(ms int, client string, arrived int) Event {
	return Event{Time: at(ms), Kind: KindBarrierReleased, Client: client, Barrier: "b", Arrived: arrived}
}

// gaveUp builds a participant giving up.
func gaveUp(ms int, client string) Event {
	return Event{Time: at(ms), Kind: KindBarrierGaveUp, Client: client, Barrier: "b"}
}

func TestCheckBarriers(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		evs                           []Event
		checks, violations, unchecked int
		want                          string
	}{
		{
			name: "all released once three arrived",
			evs: []Event{arrive(0, "a", 3), arrive(10, "b", 3), arrive(20, "c", 3),
				released(30, "c", 3), released(31, "a", 3), released(32, "b", 3),
				{Time: at(5), Kind: KindBarrierArrive, Client: "x", Barrier: "other", Threshold: 1},
				{Time: at(6), Kind: KindBarrierReleased, Client: "x", Barrier: "other", Arrived: 1}},
			checks: 8, // four releases, four participants expected released
		},
		{
			name:       "release before N",
			evs:        []Event{arrive(0, "a", 3), arrive(10, "b", 3), released(15, "a", 2), arrive(20, "c", 3), released(30, "b", 3), released(30, "c", 3)},
			checks:     3, // a left early: never three together
			violations: 1,
			want:       "early release: barrier b: a released at 03:04:05.015 when 2 of 3 had arrived",
		},
		{
			name:       "release reporting fewer than N",
			evs:        []Event{arrive(0, "a", 2), arrive(10, "b", 2), released(30, "a", 1), released(30, "b", 2)},
			checks:     4,
			violations: 1,
			want:       "reporting 1 of 2",
		},
		{
			name:       "released without arriving",
			evs:        []Event{arrive(0, "a", 1), released(10, "a", 1), released(20, "z", 1)},
			checks:     3,
			violations: 1,
			want:       "z released at 03:04:05.020 without having arrived",
		},
		{
			name: "a participant gave up: never N together",
			evs: []Event{arrive(0, "a", 3), arrive(10, "b", 3), gaveUp(15, "a"), arrive(20, "c", 3),
				gaveUp(60_000, "b"), gaveUp(60_000, "c")},
		},
		{
			name:       "N present, nobody released",
			evs:        []Event{arrive(0, "a", 2), arrive(10, "b", 2), gaveUp(60_000, "a")},
			checks:     2,
			violations: 2,
			want:       "release: barrier b: a (arrived 03:04:05.000) gave up at 03:05:05.000 unreleased",
		},
		{
			name:   "late arrival after the others were released and gone",
			evs:    []Event{arrive(0, "a", 2), arrive(10, "b", 2), released(20, "a", 2), released(20, "b", 2), arrive(100, "c", 2), gaveUp(60_000, "c")},
			checks: 4,
		},
		{
			name:      "no threshold",
			evs:       []Event{arrive(0, "a", 0), released(10, "a", 0)},
			unchecked: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckBarriers(history(tc.evs...), WithReleaseWithin(5*time.Second))
			assertResult(t, r, tc.checks, tc.violations, tc.unchecked)
			if tc.want != "" && (len(r.Examples) == 0 || !strings.Contains(r.Examples[0], tc.want)) {
				t.Errorf("examples %q lack %q", r.Examples, tc.want)
			}
		})
	}
}
