package checker

import (
	"sort"
	"time"
)

// CheckSemaphores checks semaphores over the history, from the holders'
// reports:
//
//   - permits: when a permit begins (a token first HELD), the permits live
//     then, this one included, are at most the semaphore's N. A permit is
//     live from its HELD until it is RELEASED, LOST or ended, or its
//     JEOPARDY deadline passes without a HELD resuming it (one check per
//     new permit);
//   - tokens: a token is one client's, and a semaphore has one N (one check
//     per HELD after the first of a token).
//
// Option WithSlack tolerates events of different clients that close: an
// end heard less than slack after a new HELD counts as before it.
func CheckSemaphores(h *History, opts ...Option) Result {
	o := newOptions(opts)
	r := Result{Name: "semaphore"}
	bySem := map[string][]Event{}
	for _, e := range h.Events() {
		switch e.Kind {
		case KindPermitHeld, KindPermitJeopardy, KindPermitReleased, KindPermitLost, KindPermitEnded:
			bySem[e.Semaphore] = append(bySem[e.Semaphore], e)
		}
	}
	names := make([]string, 0, len(bySem))
	for name := range bySem {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		evs := bySem[name]
		permits := buildPermits(evs)
		checkPermits(&r, name, evs, permits, o.slack)
	}
	return r
}

// buildPermits derives each permit's live spans from a semaphore's
// events: a term per token, as buildTerms does for an election's.
func buildPermits(evs []Event) map[int64]*term {
	kinds := map[Kind]Kind{KindPermitHeld: KindElected, KindPermitJeopardy: KindJeopardy,
		KindPermitReleased: KindResigned, KindPermitLost: KindLost, KindPermitEnded: KindTermEnded}
	mapped := make([]Event, len(evs))
	for i, e := range evs {
		mapped[i] = e
		mapped[i].Kind = kinds[e.Kind]
	}
	return buildTerms(mapped)
}

// checkPermits checks the count at each new permit, and that each token
// stays its client's and each HELD names the semaphore's N.
func checkPermits(r *Result, name string, evs []Event, permits map[int64]*term, slack time.Duration) {
	seen := map[int64]bool{}
	n := 0
	for _, e := range evs {
		if e.Kind != KindPermitHeld {
			continue
		}
		tm := permits[e.Token]
		if seen[e.Token] {
			r.check()
			if e.Client != tm.client {
				r.fail("tokens: semaphore %s: token %d HELD by %s at %s, already %s's", name, e.Token, e.Client, ts(e.Time), tm.client)
			}
			continue
		}
		seen[e.Token] = true
		if n == 0 {
			n = e.Permits
		} else if e.Permits != n {
			r.check()
			r.fail("tokens: semaphore %s: %s HELD at %s with %d permits, the semaphore has %d", name, e.Client, ts(e.Time), e.Permits, n)
		}
		r.check()
		live := []int64{e.Token}
		for _, other := range sortedTerms(permits) {
			if other.token != e.Token && seen[other.token] && other.liveAt(e.Time, slack) {
				live = append(live, other.token)
			}
		}
		if len(live) > n {
			r.fail("permits: semaphore %s: %s HELD token %d at %s while %d permits were live (tokens %v), N = %d",
				name, e.Client, e.Token, ts(e.Time), len(live), live, n)
		}
	}
}
