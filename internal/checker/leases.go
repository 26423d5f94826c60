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
//     To-From <= TTL, explains the gap (one check per lookup and member).
//
// CheckExpiry checks the other side: that leases not kept alive end.
func CheckLeases(h *History, opts ...Option) Result {
	o := newOptions(opts)
	r := Result{Name: "leases"}
	evs := h.Events()
	renewals := map[string][]time.Time{}
	ttls := leaseTTLs(evs)
	for _, e := range evs {
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
