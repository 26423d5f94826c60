package checker

import "time"

// CheckExpiry checks that a lease not kept alive ends in time: a member
// registered under a lease abandoned at t is gone by t + TTL + grace, where
// grace is the probe grace (WithProbeGrace, default 1s). A MemberProbe after
// that deadline finding the member present is a violation, unless another
// owner registered it again before the probe. A member with no probe after
// its deadline counts as unchecked, not as a pass. One check per lease and
// member.
//
// It returns two results. "expiry" holds the leases whose owning replica
// (the abandon event's Replica) kept its ZooKeeper session around the
// lease's end: they get the probe grace. "expiry-failover" holds the rest:
// a fault naming the owner, or "*", overlapped the time from a TTL before
// the abandon to the strict deadline (a fault counts until a probe grace
// past its end, the time its victim's session may take to expire). They
// get the failover grace (WithFailoverGrace), since another replica may
// delete what a lease owns only once the owner's session has expired
// (docs/REPLICAS.md). An abandon event with no Replica counts as hit by
// any replica's fault.
func CheckExpiry(h *History, opts ...Option) Report {
	o := newOptions(opts)
	failover := o.failoverGrace
	if failover < o.probeGrace {
		failover = o.probeGrace
	}
	strict := Result{Name: "expiry"}
	slow := Result{Name: "expiry-failover"}
	evs := h.Events()
	ttls := leaseTTLs(evs)
	var faults []Event
	for _, f := range filter(evs, KindFault) {
		if !f.From.IsZero() && f.Replica != "" {
			faults = append(faults, f)
		}
	}
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
		r, grace := &strict, o.probeGrace
		if ownerHit(faults, ab, ttl, o.probeGrace) {
			r, grace = &slow, failover
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
			deadline := ab.Time.Add(ttl + grace)
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
				r.fail("%s/%s still present at %s, lease %s (owner %q) abandoned at %s with TTL %s (deadline %s)", m.group, m.member, ts(present.Time), short(ab.Lease), ab.Replica, ts(ab.Time), ttl, ts(deadline))
			default:
				r.check()
			}
		}
	}
	sortExamples(&strict)
	sortExamples(&slow)
	return Report{strict, slow}
}

// ownerHit reports whether a fault that may have cost the owner of the
// lease abandoned in ab its ZooKeeper session overlaps [ab - ttl, ab + ttl
// + grace], each fault extended by grace past its end.
func ownerHit(faults []Event, ab Event, ttl, grace time.Duration) bool {
	from, to := ab.Time.Add(-ttl), ab.Time.Add(ttl+grace)
	for _, f := range faults {
		if f.Replica != "*" && ab.Replica != "" && f.Replica != ab.Replica {
			continue
		}
		if !f.From.After(to) && !f.To.Add(grace).Before(from) {
			return true
		}
	}
	return false
}

// leaseTTLs returns each lease's TTL as the events record it.
func leaseTTLs(evs []Event) map[string]time.Duration {
	ttls := map[string]time.Duration{}
	for _, e := range evs {
		if e.Lease != "" && e.TTL > 0 && e.Kind != KindRestoredWithinTTL {
			ttls[e.Lease] = e.TTL
		}
	}
	return ttls
}
