package checker

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Observation is one source's view of a group's members at a time: a
// watcher's state after applying its stream, or a Lookup's answer.
type Observation struct {
	Source   string // the watcher or client, e.g. "watch-1@replica-2"
	Time     time.Time
	Group    string
	Members  map[string]string // member id to value
	Revision int64
}

// CheckConvergence checks that every source converges to the ground truth
// once churn stops.
//
// The run stops all membership changes at time at, reads the ground truth
// (truth: group to member id to value) straight from ZooKeeper, waits, then
// records each source's state (a watcher's members, a CACHED and a
// LINEARIZABLE Lookup per replica) at or after at+within (2s, say). For each
// source and group, the source's last observation is checked: if it was
// taken at or after at+within it must equal the truth for that group (a
// group missing from truth has no members), else it counts as unchecked.
func CheckConvergence(truth map[string]map[string]string, at time.Time, observed []Observation, within time.Duration) Result {
	r := Result{Name: "convergence"}
	deadline := at.Add(within)
	type key struct{ source, group string }
	last := map[key]Observation{}
	for _, ob := range observed {
		k := key{ob.Source, ob.Group}
		if prev, ok := last[k]; !ok || !ob.Time.Before(prev.Time) {
			last[k] = ob
		}
	}
	keys := make([]key, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].group != keys[j].group {
			return keys[i].group < keys[j].group
		}
		return keys[i].source < keys[j].source
	})
	for _, k := range keys {
		ob := last[k]
		if ob.Time.Before(deadline) {
			r.Unchecked++
			r.note("unchecked: %s has no view of group %s at or after %s (last %s)", k.source, k.group, ts(deadline), ts(ob.Time))
			continue
		}
		r.check()
		if d := diffMembers(truth[k.group], ob.Members); d != "" {
			r.fail("%s: group %s at %s (revision %d) differs from ZooKeeper at %s: %s", k.source, k.group, ts(ob.Time), ob.Revision, ts(at), d)
		}
	}
	// Violations first in Examples: notes were appended as met.
	sortExamples(&r)
	return r
}

// diffMembers describes how got differs from want, "" when equal.
func diffMembers(want, got map[string]string) string {
	var missing, extra, changed []string
	for id, v := range want {
		g, ok := got[id]
		switch {
		case !ok:
			missing = append(missing, id)
		case g != v:
			changed = append(changed, fmt.Sprintf("%s=%q want %q", id, g, v))
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			extra = append(extra, id)
		}
	}
	var parts []string
	for _, p := range []struct {
		label string
		ids   []string
	}{{"missing", missing}, {"extra", extra}, {"value", changed}} {
		if len(p.ids) > 0 {
			sort.Strings(p.ids)
			parts = append(parts, p.label+" "+strings.Join(p.ids, ","))
		}
	}
	return strings.Join(parts, "; ")
}

// sortExamples puts violations before notes, keeping each group's order.
func sortExamples(r *Result) {
	sort.SliceStable(r.Examples, func(i, j int) bool {
		return !strings.HasPrefix(r.Examples[i], "unchecked:") && strings.HasPrefix(r.Examples[j], "unchecked:")
	})
}

// ownership is one registration of a member under a lease: from the
// Register's answer until a Deregister of the member could have removed it.
type ownership struct {
	group, member, lease string
	from, until          time.Time // until zero: never deregistered
	revision             int64
}

// holds reports whether the registration stood over [a, b].
func (ow ownership) holds(a, b time.Time) bool {
	return !a.Before(ow.from) && (ow.until.IsZero() || b.Before(ow.until))
}

// ownerships derives registrations from successful Registers under a lease.
// Each ends at the call of the first Deregister of the member that could
// take effect after the Register: one with the same lease (only the owner
// can deregister), not known to have failed, and not answered before the
// Register was called (an unknown outcome may take effect at any time after
// its call). Overlapping registrations of one member under one lease (a
// repeated Register) merge into one.
func ownerships(evs []Event) []ownership {
	deregs := byMember(evs, KindDeregister)
	var out []ownership
	last := map[string]int{} // group/member/lease to index in out
	for _, e := range evs {
		if e.Kind != KindRegister || e.Lease == "" || !e.ok() {
			continue
		}
		ow := ownership{group: e.Group, member: e.Member, lease: e.Lease, from: e.Return, revision: e.Revision}
		for _, d := range deregs[memberKey{e.Group, e.Member}] {
			if d.Lease != e.Lease || d.definiteFailure() || d.ok() && d.Return.Before(e.Call) {
				continue
			}
			if ow.until.IsZero() || d.Call.Before(ow.until) {
				ow.until = d.Call
			}
		}
		k := e.Group + "/" + e.Member + "/" + e.Lease
		if i, ok := last[k]; ok && (out[i].until.IsZero() || out[i].until.After(ow.from)) {
			if ow.until.IsZero() || !out[i].until.IsZero() && ow.until.After(out[i].until) {
				out[i].until = ow.until
			}
			continue
		}
		last[k] = len(out)
		out = append(out, ow)
	}
	return out
}

// CheckNoLeft checks that a member whose lease was kept alive never LEFT:
// for each LeaseKept interval [From, To] and each member the lease had
// registered (a successful Register, not deregistered since), no watcher saw
// a LEFT of that member inside the interval, unless the LEFT's revision
// predates the registration. One check per interval and member.
func CheckNoLeft(h *History) Result {
	r := Result{Name: "no-left"}
	evs := h.Events()
	owns := map[string][]ownership{}
	for _, ow := range ownerships(evs) {
		owns[ow.lease] = append(owns[ow.lease], ow)
	}
	watched := byMember(evs, KindWatchEvent)
	for _, kept := range filter(evs, KindLeaseKept) {
		for _, ow := range owns[kept.Lease] {
			if kept.To.Before(ow.from) || !ow.until.IsZero() && !ow.until.After(kept.From) {
				continue // not registered during the interval
			}
			r.check()
			for _, w := range watched[memberKey{ow.group, ow.member}] {
				if w.Type != WatchLeft || w.Time.Before(kept.From) || w.Time.After(kept.To) || !ow.holds(w.Time, w.Time) {
					continue
				}
				if w.Revision != 0 && ow.revision != 0 && w.Revision < ow.revision {
					continue // an earlier registration's departure
				}
				r.fail("%s saw %s/%s LEFT at %s (revision %d) while lease %s was kept alive %s..%s", w.Client, w.Group, w.Member, ts(w.Time), w.Revision, short(kept.Lease), ts(kept.From), ts(kept.To))
				break
			}
		}
	}
	return r
}

// short abbreviates a lease id for examples.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
