package checker

import (
	"strings"
	"testing"
	"time"
)

// keepalive builds a successful renewal of lease with a 3s TTL.
func keepalive(ms int, lease string) Event {
	return Event{Time: at(ms), Kind: KindKeepAliveOK, Client: "c1", Lease: lease, TTL: 3 * time.Second}
}

// lookup builds a LINEARIZABLE lookup of group g over [ms, ms+10].
func lookup(ms int, client string, members map[string]string) Event {
	return Event{Time: at(ms + 10), Kind: KindLookup, Client: client, Group: "g", Members: members,
		Call: at(ms), Return: at(ms + 10)}
}

// probe builds a ground-truth probe of g/member.
func probe(ms int, member string, present bool) Event {
	return Event{Time: at(ms), Kind: KindMemberProbe, Group: "g", Member: member, Present: present}
}

func TestCheckLeases(t *testing.T) {
	has := map[string]string{"a": "v"}
	kept := []Event{reg(0, "c1", "a", "v", "L1", ""), keepalive(1000, "L1"), keepalive(2000, "L1"), keepalive(3000, "L1")}
	with := func(evs ...Event) []Event { return append(append([]Event(nil), kept...), evs...) }
	for _, tc := range []struct {
		name                          string
		evs                           []Event
		checks, violations, unchecked int
		want                          string
	}{
		{
			name: "kept lease keeps its member",
			// the lookup after the last renewal is not checked
			evs:    with(lookup(1500, "c3", has), lookup(2500, "c3", has), lookup(3500, "c3", nil)),
			checks: 2,
		},
		{
			name:       "member missing while kept alive",
			evs:        with(lookup(1500, "c3", has), lookup(2500, "c3", map[string]string{"b": "x"})),
			checks:     2,
			violations: 1,
			want:       "registrations: lookup by c3",
		},
		{
			name: "missing member restored within TTL",
			evs: with(lookup(2500, "c3", nil), Event{Time: at(2800), Kind: KindRestoredWithinTTL,
				Group: "g", Member: "a", From: at(2400), To: at(2800), TTL: 3 * time.Second}),
			checks: 1,
		},
		{
			name: "restored too late",
			evs: with(lookup(2500, "c3", nil), Event{Time: at(6000), Kind: KindRestoredWithinTTL,
				Group: "g", Member: "a", From: at(2400), To: at(6000), TTL: 3 * time.Second}),
			checks:     1,
			violations: 1,
		},
		{
			name:   "deregistered member may be missing",
			evs:    with(dereg(1800, "c1", "a", "L1", ""), lookup(2500, "c3", nil)),
			checks: 0,
		},
		{
			name:       "lease lost although renewed",
			evs:        with(Event{Time: at(4000), Kind: KindLeaseLost, Client: "c1", Lease: "L1"}),
			checks:     1,
			violations: 1,
			want:       "kept: lease L1 of c1 lost",
		},
		{
			name:   "lease lost after renewals stopped",
			evs:    with(Event{Time: at(6000), Kind: KindLeaseLost, Client: "c1", Lease: "L1"}),
			checks: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckLeases(history(tc.evs...))
			assertResult(t, r, tc.checks, tc.violations, tc.unchecked)
			if tc.want != "" && (len(r.Examples) == 0 || !strings.Contains(r.Examples[0], tc.want)) {
				t.Errorf("examples %q lack %q", r.Examples, tc.want)
			}
		})
	}
}

func TestCheckLeasesKeepAliveGap(t *testing.T) {
	h := history(keepalive(1000, "L1"), Event{Time: at(2900), Kind: KindLeaseLost, Lease: "L1"})
	assertResult(t, CheckLeases(h), 1, 0, 0) // 1.9s > TTL/2
	assertResult(t, CheckLeases(h, WithKeepAliveGap(2*time.Second)), 1, 1, 0)
}
