package checker

import (
	"sort"
	"time"
)

// CheckLeases checks lease lifetimes:
//
//   - kept: a lease renewed at most the keepalive gap apart (WithKeepAliveGap;
//     default half its TTL) is not lost: a LeaseLost that comes no more than
//     that gap after the lease's previous renewal is a violation (one check
//     per LeaseLost after a renewal);
//   - registrations: a lease that is renewed (KeepAliveOK, or a successful
//     Register under it) was alive between any two renewals, since a lease
//     never comes back, so its members stand too. Every successful
//     LINEARIZABLE Lookup of the member's group that lies between the
//     member's Register answer and the lease's last renewal, with no
//     Deregister of the member called before it ended, must show the member,
//     unless a RestoredWithinTTL of that member overlapping the lookup, with
//     To-From <= TTL, explains the gap (one check per lookup and member);
//   - abandoned: a member registered under a lease abandoned at t is gone by
//     t + TTL + 1s: a MemberProbe after that deadline finding it present is
//     a violation, unless another owner registered the member again before
//     the probe. A member with no probe after the deadline counts as
//     unchecked, not as a pass (one check per lease and member).
func CheckLeases(h *History, opts ...Option) Result {
	o := newOptions(opts)
	r := Result{Name: "leases"}
	evs := h.Events()
	renewals := map[string][]time.Time{}
	ttls := map[string]time.Duration{}
	for _, e := range evs {
		if e.Lease != "" && e.TTL > 0 && e.Kind != KindRestoredWithinTTL {
			ttls[e.Lease] = e.TTL
		}
		switch {
		case e.Kind == KindKeepAliveOK:
			renewals[e.Lease] = append(renewals[e.Lease], e.Time)
		case e.Kind == KindRegister && e.Lease != "" && e.ok():
			renewals[e.Lease] = append(renewals[e.Lease], e.Return)
		}
	}
	for _, rs := range renewals {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Before(rs[j]) })
	}
	checkLost(&r, evs, renewals, ttls, o.keepAliveGap)
	checkKeptMembers(&r, evs, renewals)
	checkAbandoned(&r, evs, ttls, o.probeGrace)
	sortExamples(&r)
	return r
}

// lastBefore returns the latest of ts before t, or zero.
func lastBefore(ts []time.Time, t time.Time) time.Time {
	i := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(t) })
	if i == 0 {
		return time.Time{}
	}
	return ts[i-1]
}

// checkLost flags leases lost although renewed within the keepalive gap.
func checkLost(r *Result, evs []Event, renewals map[string][]time.Time, ttls map[string]time.Duration, gap time.Duration) {
	for _, e := range filter(evs, KindLeaseLost) {
		prev := lastBefore(renewals[e.Lease], e.Time)
		g := gap
		if g == 0 {
			g = ttls[e.Lease] / 2
		}
		if prev.IsZero() || g == 0 {
			continue
		}
		r.check()
		if e.Time.Sub(prev) <= g {
			r.fail("kept: lease %s of %s lost at %s, %s after its renewal at %s (gap allowed %s)", short(e.Lease), e.Client, ts(e.Time), e.Time.Sub(prev), ts(prev), g)
		}
	}
}

// checkKeptMembers checks that lookups between renewals show the member.
func checkKeptMembers(r *Result, evs []Event, renewals map[string][]time.Time) {
	lookups := map[string][]Event{}
	for _, l := range filter(evs, KindLookup) {
		lookups[l.Group] = append(lookups[l.Group], l)
	}
	restores := byMember(evs, KindRestoredWithinTTL)
	for _, ow := range ownerships(evs) {
		rs := renewals[ow.lease]
		if len(rs) == 0 {
			continue
		}
		alive := rs[len(rs)-1]
		for _, l := range lookups[ow.group] {
			if !l.ok() || l.Member != "" && l.Member != ow.member {
				continue
			}
			if l.Call.Before(ow.from) || l.Return.After(alive) || !ow.holds(l.Call, l.Return) {
				continue
			}
			r.check()
			if _, ok := l.Members[ow.member]; ok || restored(restores[memberKey{ow.group, ow.member}], ow, l) {
				continue
			}
			r.fail("registrations: lookup by %s %s..%s (revision %d) misses %s/%s of lease %s, renewed until %s", l.Client, ts(l.Call), ts(l.Return), l.Revision, ow.group, ow.member, short(ow.lease), ts(alive))
		}
	}
}

// restored reports whether a RestoredWithinTTL explains l missing ow.
func restored(restores []Event, ow ownership, l Event) bool {
	for _, e := range restores {
		if e.Lease != "" && e.Lease != ow.lease {
			continue
		}
		if e.TTL > 0 && e.To.Sub(e.From) > e.TTL {
			continue
		}
		if !e.From.After(l.Return) && !e.To.Before(l.Call) {
			return true
		}
	}
	return false
}

// checkAbandoned checks that abandoned leases' members are gone in time.
func checkAbandoned(r *Result, evs []Event, ttls map[string]time.Duration, probeGrace time.Duration) {
	probes := byMember(evs, KindMemberProbe)
	registers := byMember(evs, KindRegister)
	byLease := map[string][]Event{}
	for _, e := range filter(evs, KindRegister) {
		byLease[e.Lease] = append(byLease[e.Lease], e)
	}
	for _, ab := range filter(evs, KindLeaseAbandoned) {
		ttl := ab.TTL
		if ttl == 0 {
			ttl = ttls[ab.Lease]
		}
		seen := map[memberKey]bool{}
		for _, reg := range byLease[ab.Lease] {
			m := memberKey{reg.Group, reg.Member}
			if !reg.Call.Before(ab.Time) || reg.definiteFailure() || seen[m] {
				continue
			}
			seen[m] = true
			if ttl == 0 {
				r.Unchecked++
				r.note("unchecked: lease %s abandoned at %s has no known TTL", short(ab.Lease), ts(ab.Time))
				continue
			}
			deadline := ab.Time.Add(ttl + probeGrace)
			// Another owner may register the member again afterwards.
			var reused time.Time
			for _, other := range registers[m] {
				if other.Lease != ab.Lease && other.Call.After(ab.Time) && !other.definiteFailure() &&
					(reused.IsZero() || other.Call.Before(reused)) {
					reused = other.Call
				}
			}
			checked, present := false, Event{}
			for _, p := range probes[m] {
				if p.Time.After(deadline) && (reused.IsZero() || p.Time.Before(reused)) {
					checked = true
					if p.Present && present.Time.IsZero() {
						present = p
					}
				}
			}
			switch {
			case !checked:
				r.Unchecked++
				r.note("unchecked: no probe of %s/%s after %s (lease %s abandoned at %s, TTL %s)", m.group, m.member, ts(deadline), short(ab.Lease), ts(ab.Time), ttl)
			case !present.Time.IsZero():
				r.check()
				r.fail("abandoned: %s/%s still present at %s, lease %s abandoned at %s with TTL %s (deadline %s)", m.group, m.member, ts(present.Time), short(ab.Lease), ts(ab.Time), ttl, ts(deadline))
			default:
				r.check()
			}
		}
	}
}
