package checker

import (
	"sort"
	"time"
)

// grain is the resolution of the truth's times (ZooKeeper's ctime is in
// milliseconds, truncated): a change at Time happened in [Time, Time+grain).
const grain = time.Millisecond

// CheckLeaseLifetime checks when leases end, against the lease contract:
// a lease never ends before TTL after the last renewal whose answer reached
// the client (a Grant, a KeepAlive, or a Register under it that succeeded),
// and it ends at most TTL + the late grace after it while its owning
// replica lives, TTL + the failover grace when that replica fails.
//
// A lease's end is read in the truth: the journal times each deletion of
// its members exactly (the commit time of the transaction), so every
// member is watched continuously, not probed now and then. A member's
// tenure under a lease runs from the put that created it to the deletion
// that removed it; deletions a Deregister of the member under the lease
// explains (a successful one at its revision, or between its call and
// answer; one with an unknown outcome at any time after its call) are not
// the lease's end. A renewal acknowledged at [Call, Return] happened at
// some instant in between: the lease is promised until at least Call +
// TTL, and ends at the latest TTL + grace after Return, or after the
// Return of a later renewal that may have taken effect: a keepalive whose
// outcome is unknown, or a Register that failed for another reason than
// the lease being gone (the gateway renews a lease before registering).
//
// It returns three results:
//
//   - "lease-early": a member deleted before the latest Call of any
//     acknowledged renewal of its lease + TTL (one check per tenure ended
//     by its lease), and a keepalive or Register answered NOT_FOUND before
//     that time (one check per such answer after a renewal). A lease is
//     exempt from its Revoke's call on;
//   - "expiry": a member of a lease whose owning replica kept its
//     ZooKeeper session still present later than TTL + the late grace
//     (WithLateGrace) after the lease's last renewal (one check per tenure
//     standing at the lease's last renewal; unchecked while the truth ends
//     before the deadline);
//   - "expiry-failover": the same for leases whose owner (the Replica of
//     its last KindLeaseAbandoned; "" counts as any, as does an owner a
//     drain (Event.Drained) overlapping the window moved the lease off) a
//     fault naming it, or
//     "*", may have cost its session: such a fault overlapped the time from
//     a TTL before the last renewal to the strict deadline, each fault
//     counting until a late grace past its end. They get the failover grace
//     (WithFailoverGrace), since another replica may take over a lease only
//     once its owner's session has expired (docs/REPLICAS.md);
//   - "expiry-multifault": leases hit by more than one failure around
//     their end (the contract is stated for a single failure): after the
//     owner's, any other fault of any replica (the lease may have moved
//     there) overlapping the window, which each such fault extends by the
//     failover grace's extra over the late grace. k failures allow TTL +
//     the late grace + k extras.
func CheckLeaseLifetime(h *History, t *Truth, opts ...Option) Report {
	o := newOptions(opts)
	failover := max(o.failoverGrace, o.lateGrace)
	early := Result{Name: "lease-early"}
	strict := Result{Name: "expiry"}
	slow := Result{Name: "expiry-failover"}
	multi := Result{Name: "expiry-multifault"}
	evs := h.Events()
	leases := leaseHistories(evs)
	var faults, drains []Event
	for _, f := range filter(evs, KindFault) {
		if !f.From.IsZero() && f.Replica != "" {
			faults = append(faults, f)
		}
		if !f.From.IsZero() && f.Drained != "" {
			drains = append(drains, f)
		}
	}
	deregs := byMember(evs, KindDeregister)
	tenures := tenuresOf(t)
	for _, tn := range tenures {
		l := leases[tn.lease]
		if l == nil || l.lastCall.IsZero() || l.ttl == 0 {
			early.Unchecked++
			early.note("unchecked: %s/%s of lease %s: no acknowledged renewal or TTL recorded", t.Group, tn.member, short(tn.lease))
			continue
		}
		if tn.end == nil || deregistered(deregs[memberKey{t.Group, tn.member}], tn) {
			continue
		}
		end := tn.end.Time
		if !l.revoked.IsZero() && !end.Add(grain).Before(l.revoked) {
			continue // revoked: it may end at once
		}
		early.check()
		if promised := l.lastCall.Add(l.ttl); end.Add(grain).Before(promised) {
			early.fail("%s/%s of lease %s deleted at %s (revision %d), %v before %s: TTL %v after the %s called at %s (answered %s); owner %q",
				t.Group, tn.member, short(tn.lease), ts(end), tn.end.Rev, promised.Sub(end).Round(time.Millisecond),
				ts(promised), l.ttl, l.lastKind, ts(l.lastCall), ts(l.lastCallReturn), l.owner)
		}
	}
	for _, e := range evs {
		lost := e.Kind == KindLeaseLost || e.Kind == KindRegister && e.Lease != "" && e.Err == ErrNotFound
		l := leases[e.Lease]
		if !lost || l == nil || l.lastCall.IsZero() {
			continue
		}
		if !l.revoked.IsZero() && !e.Return.Before(l.revoked) {
			continue
		}
		early.check()
		if l.lastCall.After(e.Return) {
			early.fail("lease %s of %s reported gone (%s answered NOT_FOUND at %s), yet a %s called at %s, after it, succeeded; owner %q",
				short(e.Lease), e.Client, e.Kind, ts(e.Return), l.lastKind, ts(l.lastCall), l.owner)
		} else if promised := l.lastCall.Add(l.ttl); e.Return.Before(promised) {
			early.fail("lease %s of %s reported gone (%s answered NOT_FOUND at %s), %v before %s: TTL %v after the %s called at %s; owner %q",
				short(e.Lease), e.Client, e.Kind, ts(e.Return), promised.Sub(e.Return).Round(time.Millisecond), ts(promised), l.ttl, l.lastKind, ts(l.lastCall), l.owner)
		}
	}
	for _, key := range sortedKeys(leases) {
		l := leases[key]
		if l.lastCall.IsZero() || l.ttl == 0 {
			continue
		}
		last := l.lastReturn
		if l.lastMaybe.After(last) {
			last = l.lastMaybe
		}
		r, grace := &strict, o.lateGrace
		from, to := l.lastReturn.Add(-l.ttl), last.Add(l.ttl+o.lateGrace)
		owner := l.owner
		if drainedIn(drains, owner, from, to) {
			// A drain of its owner moved the lease to another replica
			// (any): from then on its owner is not known, and any
			// replica's fault counts, as after a revoke.
			owner = ""
		}
		switch k := failures(faults, owner, from, to, o.lateGrace, failover-o.lateGrace); {
		case k == 1:
			r, grace = &slow, failover
		case k > 1:
			r, grace = &multi, o.lateGrace+time.Duration(k)*(failover-o.lateGrace)
		}
		deadline := last.Add(l.ttl + grace)
		for _, tn := range tenures {
			if tn.lease != key || tn.from.Time.After(deadline) || tn.end != nil && tn.end.Time.Before(l.lastCall) {
				continue
			}
			switch {
			case tn.end != nil && tn.end.Time.After(deadline):
				r.check()
				r.fail("%s/%s of lease %s deleted at %s (revision %d), %v after its deadline %s: TTL %v + %v after the last renewal answered at %s; owner %q",
					t.Group, tn.member, short(key), ts(tn.end.Time), tn.end.Rev, tn.end.Time.Sub(deadline).Round(time.Millisecond),
					ts(deadline), l.ttl, grace, ts(last), l.owner)
			case tn.end != nil:
				r.check()
			case t.KnownAt.After(deadline):
				r.check()
				r.fail("%s/%s of lease %s still present at %s, the end of the truth, past its deadline %s: TTL %v + %v after the last renewal answered at %s; owner %q",
					t.Group, tn.member, short(key), ts(t.KnownAt), ts(deadline), l.ttl, grace, ts(last), l.owner)
			default:
				r.Unchecked++
				r.note("unchecked: %s/%s of lease %s: the truth ends at %s, before its deadline %s", t.Group, tn.member, short(key), ts(t.KnownAt), ts(deadline))
			}
		}
	}
	for _, r := range []*Result{&early, &strict, &slow, &multi} {
		sortExamples(r)
	}
	return Report{early, strict, slow, multi}
}

// leaseHistory is what the history tells of one lease.
type leaseHistory struct {
	ttl            time.Duration
	lastCall       time.Time // the latest call of an acknowledged renewal
	lastCallReturn time.Time // its answer
	lastKind       string    // what it was: grant, keepalive, register
	lastReturn     time.Time // the latest answer of an acknowledged renewal
	lastMaybe      time.Time // the latest Return of a renewal with an unknown outcome
	revoked        time.Time // the earliest call of a Revoke not known to have failed
	owner          string
}

// leaseHistories gathers each lease's renewals, revokes and owner.
func leaseHistories(evs []Event) map[string]*leaseHistory {
	out := map[string]*leaseHistory{}
	get := func(id string) *leaseHistory {
		if out[id] == nil {
			out[id] = &leaseHistory{}
		}
		return out[id]
	}
	for _, e := range evs {
		if e.Lease == "" {
			continue
		}
		call, ret := e.Call, e.Return
		if call.IsZero() {
			call = e.Time
		}
		if ret.IsZero() {
			ret = e.Time
		}
		switch {
		case e.Kind == KindKeepAliveOK, e.Kind == KindRegister && e.ok():
			l := get(e.Lease)
			if e.TTL > 0 {
				l.ttl = e.TTL
			}
			if call.After(l.lastCall) {
				l.lastCall, l.lastCallReturn, l.lastKind = call, ret, renewalKind(e)
			}
			if ret.After(l.lastReturn) {
				l.lastReturn = ret
			}
		case e.Kind == KindKeepAliveFailed && e.unknown(), e.Kind == KindRegister && e.Err != ErrNotFound:
			// A Register renews the lease before it registers: one that
			// failed otherwise than on the lease may have renewed it.
			if l := get(e.Lease); ret.After(l.lastMaybe) {
				l.lastMaybe = ret
			}
		case e.Kind == KindRevoke && !e.definiteFailure():
			if l := get(e.Lease); l.revoked.IsZero() || call.Before(l.revoked) {
				l.revoked = call
			}
		case e.Kind == KindLeaseAbandoned:
			l := get(e.Lease)
			l.owner = e.Replica
			if e.TTL > 0 && l.ttl == 0 {
				l.ttl = e.TTL
			}
		}
	}
	// A Revoke moves the lease to the replica that serves it (any: the
	// client balances its calls), which then removes what it owns: after
	// a revoke the owner is not known, and any replica's fault counts.
	for _, l := range out {
		if !l.revoked.IsZero() {
			l.owner = ""
		}
	}
	return out
}

// renewalKind names an acknowledged renewal for examples.
func renewalKind(e Event) string {
	switch {
	case e.Kind == KindRegister:
		return "register"
	case e.OpID == "grant":
		return "grant"
	}
	return "keepalive"
}

// tenure is a member's time under one lease, from the put that created it
// to the deletion that ended it (nil: it stood at the truth's end).
type tenure struct {
	member, lease string
	from          Change
	end           *Change
}

// tenuresOf returns the tenures of lease-owned members in the truth, in
// the order they began.
func tenuresOf(t *Truth) []tenure {
	var out []tenure
	cur := map[string]int{} // member to index in out
	for i, c := range t.Changes {
		if j, ok := cur[c.Member]; ok && (c.Del || out[j].lease != c.Lease) {
			out[j].end = &t.Changes[i]
			delete(cur, c.Member)
		}
		if c.Del || c.Lease == "" {
			continue
		}
		if _, ok := cur[c.Member]; !ok {
			cur[c.Member] = len(out)
			out = append(out, tenure{member: c.Member, lease: c.Lease, from: c})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].from.Seq < out[j].from.Seq })
	return out
}

// deregistered reports whether a Deregister of the member under its lease
// explains the deletion that ended tn.
func deregistered(deregs []Event, tn tenure) bool {
	end := tn.end
	for _, d := range deregs {
		if d.Lease != tn.lease || d.definiteFailure() {
			continue
		}
		switch {
		case d.ok() && d.Revision != 0:
			if d.Revision == end.Rev {
				return true
			}
		case d.ok():
			if !end.Time.Add(grain).Before(d.Call) && !end.Time.After(d.Return) {
				return true
			}
		default: // unknown outcome: it may apply at any time after its call
			if !end.Time.Add(grain).Before(d.Call) {
				return true
			}
		}
	}
	return false
}

// ownerHit reports whether a fault that may have cost owner its ZooKeeper
// session ("" : any replica) overlaps [from, to], each fault extended by
// grace past its end.
// failures counts the failures that may have delayed a lease's end: 0 when
// no fault that may have cost its owner its session (one naming the owner,
// or "*") overlaps [from, to]; otherwise 1 for that fault, plus each other
// fault of any replica overlapping the window from its start, the window's
// end moving by extra for each failure counted. Each fault counts until
// grace past its end.
func failures(faults []Event, owner string, from, to time.Time, grace, extra time.Duration) int {
	first := -1
	for i, f := range faults {
		if (f.Replica == "*" || owner == "" || f.Replica == owner) && !f.From.After(to) && !f.To.Add(grace).Before(from) {
			first = i
			break
		}
	}
	if first < 0 {
		return 0
	}
	k, start, end := 1, faults[first].From, to.Add(extra)
	counted := map[int]bool{first: true}
	for more := true; more; {
		more = false
		for i, f := range faults {
			if !counted[i] && !f.From.After(end) && !f.To.Add(grace).Before(start) {
				counted[i], more = true, true
				k++
				end = end.Add(extra)
			}
		}
	}
	return k
}

// drainedIn reports whether a drain of owner overlapped [from, to].
func drainedIn(drains []Event, owner string, from, to time.Time) bool {
	if owner == "" {
		return false
	}
	for _, d := range drains {
		if d.Drained == owner && !d.From.After(to) && !d.To.Before(from) {
			return true
		}
	}
	return false
}

func ownerHit(faults []Event, owner string, from, to time.Time, grace time.Duration) bool {
	for _, f := range faults {
		if f.Replica != "*" && owner != "" && f.Replica != owner {
			continue
		}
		if !f.From.After(to) && !f.To.Add(grace).Before(from) {
			return true
		}
	}
	return false
}
