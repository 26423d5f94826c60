package checker

import (
	"sort"
	"time"
)

// participation is one AwaitBarrier of a client: from its call until its
// release or giving up, whichever the client saw first.
type participation struct {
	client   string
	arrived  time.Time
	end      time.Time // zero: neither released nor gave up
	released bool
}

// CheckBarriers checks barriers. A barrier name stands for one use of the
// barrier: the run should give each round its own name. The threshold is
// the first non-zero Threshold of the barrier's arrivals.
//
//   - early release: a release seen at r is a violation if fewer than N
//     distinct participants had called AwaitBarrier before r, if its client
//     had not, or if it reports fewer than N arrived (one check per release);
//   - release: whenever N participants were present at once (at the
//     arrival of one of them, all had arrived, none had ended, and none gave
//     up within WithReleaseWithin of that moment), each of them must be
//     released; one that gave up later, or never saw a release, is a
//     violation (one check per such participant).
func CheckBarriers(h *History, opts ...Option) Result {
	o := newOptions(opts)
	r := Result{Name: "barriers"}
	byBarrier := map[string][]Event{}
	for _, e := range filter(h.Events(), KindBarrierArrive, KindBarrierReleased, KindBarrierGaveUp) {
		byBarrier[e.Barrier] = append(byBarrier[e.Barrier], e)
	}
	for _, name := range sortedKeys(byBarrier) {
		checkBarrier(&r, name, byBarrier[name], o.releaseWithin)
	}
	sortExamples(&r)
	return r
}

// checkBarrier checks one barrier's events, in time order.
func checkBarrier(r *Result, name string, evs []Event, within time.Duration) {
	n := 0
	var parts []*participation
	open := map[string]*participation{} // client's participation not yet ended
	for _, e := range evs {
		switch e.Kind {
		case KindBarrierArrive:
			if n == 0 {
				n = e.Threshold
			}
			p := &participation{client: e.Client, arrived: e.Time}
			parts = append(parts, p)
			open[e.Client] = p
		case KindBarrierReleased, KindBarrierGaveUp:
			if p := open[e.Client]; p != nil {
				p.end, p.released = e.Time, e.Kind == KindBarrierReleased
				delete(open, e.Client)
			}
		}
	}
	if n <= 0 {
		r.Unchecked++
		r.note("unchecked: barrier %s: no arrival gave a threshold", name)
		return
	}
	for _, e := range evs {
		if e.Kind != KindBarrierReleased {
			continue
		}
		r.check()
		arrived := map[string]bool{}
		for _, p := range parts {
			if p.arrived.Before(e.Time) {
				arrived[p.client] = true
			}
		}
		switch {
		case !arrived[e.Client]:
			r.fail("early release: barrier %s: %s released at %s without having arrived", name, e.Client, ts(e.Time))
		case len(arrived) < n:
			r.fail("early release: barrier %s: %s released at %s when %d of %d had arrived", name, e.Client, ts(e.Time), len(arrived), n)
		case e.Arrived > 0 && e.Arrived < n:
			r.fail("early release: barrier %s: %s released at %s reporting %d of %d arrived", name, e.Client, ts(e.Time), e.Arrived, n)
		}
	}
	// Participants present together with at least N-1 others at some
	// arrival time q must be released.
	expected := map[*participation]time.Time{} // to when N were present
	for _, q := range parts {
		var present []*participation
		for _, p := range parts {
			if p.arrived.After(q.arrived) || !p.end.IsZero() && p.end.Before(q.arrived) {
				continue // not yet there, or gone (a released one may have left)
			}
			if !p.end.IsZero() && !p.released && p.end.Before(q.arrived.Add(within)) {
				continue // gave up early enough to stop the release
			}
			present = append(present, p)
		}
		if len(present) < n {
			continue
		}
		for _, p := range present {
			if _, ok := expected[p]; !ok {
				expected[p] = q.arrived
			}
		}
	}
	ps := make([]*participation, 0, len(expected))
	for p := range expected {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].arrived.Before(ps[j].arrived) })
	for _, p := range ps {
		r.check()
		switch {
		case p.released:
		case p.end.IsZero():
			r.fail("release: barrier %s: %s (arrived %s) never released though %d were present at %s", name, p.client, ts(p.arrived), n, ts(expected[p]))
		default:
			r.fail("release: barrier %s: %s (arrived %s) gave up at %s unreleased though %d were present at %s", name, p.client, ts(p.arrived), ts(p.end), n, ts(expected[p]))
		}
	}
}
