package checker

import (
	"strings"
	"testing"
	"time"
)

// abandon builds a LeaseAbandoned with a 2s TTL, owned by replica r0.
func abandon(ms int, lease string) Event {
	return Event{Time: at(ms), Kind: KindLeaseAbandoned, Client: "c2", Lease: lease, TTL: 2 * time.Second, Replica: "r0"}
}

// fault builds a fault on replica from ms to ms+dur.
func fault(ms, dur int, replica string) Event {
	return Event{Time: at(ms + dur), Kind: KindFault, Value: "kill " + replica, Replica: replica, From: at(ms), To: at(ms + dur)}
}

func TestCheckExpiry(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		evs                           []Event
		failover                      bool // the result is expiry-failover's
		checks, violations, unchecked int
		want                          string
	}{
		{
			name:   "abandoned member gone by TTL+1s",
			evs:    []Event{reg(0, "c2", "b", "v", "L2", ""), abandon(1000, "L2"), probe(3500, "b", true), probe(4100, "b", false)},
			checks: 1,
		},
		{
			name:       "abandoned member not gone after TTL+1s",
			evs:        []Event{reg(0, "c2", "b", "v", "L2", ""), abandon(1000, "L2"), probe(4100, "b", true)},
			checks:     1,
			violations: 1,
			want:       "g/b still present at 03:04:09.100",
		},
		{
			name: "possibly registered member not gone",
			evs: []Event{reg(0, "c2", "b", "v", "L2", "DeadlineExceeded"), reg(20, "c2", "c", "v", "L2", ErrAlreadyExists),
				abandon(1000, "L2"), probe(4100, "b", true), probe(4100, "c", true)},
			checks:     1,
			violations: 1,
		},
		{
			name:      "no probe after the deadline",
			evs:       []Event{reg(0, "c2", "b", "v", "L2", ""), abandon(1000, "L2"), probe(3900, "b", false)},
			unchecked: 1,
		},
		{
			name: "member taken over by another lease",
			evs: []Event{reg(0, "c2", "b", "v", "L2", ""), abandon(1000, "L2"), reg(3800, "c3", "b", "w", "L3", ""),
				probe(4100, "b", true)},
			unchecked: 1,
		},
		{
			name:   "another replica's fault keeps the strict bound",
			evs:    []Event{reg(0, "c2", "b", "v", "L2", ""), abandon(1000, "L2"), fault(1500, 3000, "r1"), probe(4100, "b", true)},
			checks: 1, violations: 1,
		},
		{
			name:     "owner's fault: the failover grace applies",
			evs:      []Event{reg(0, "c2", "b", "v", "L2", ""), abandon(1000, "L2"), fault(1500, 3000, "r0"), probe(4100, "b", true), probe(6100, "b", false)},
			failover: true,
			checks:   1,
		},
		{
			name:     "owner's fault not healed a TTL before the abandon",
			evs:      []Event{reg(0, "c2", "b", "v", "L2", ""), fault(-2500, 500, "r0"), abandon(1000, "L2"), probe(6100, "b", true)},
			failover: true,
			checks:   1, violations: 1,
		},
		{
			name:   "owner's fault long healed",
			evs:    []Event{reg(0, "c2", "b", "v", "L2", ""), fault(-4000, 500, "r0"), abandon(1000, "L2"), probe(4100, "b", true)},
			checks: 1, violations: 1,
		},
		{
			name:     "every replica's fault",
			evs:      []Event{reg(0, "c2", "b", "v", "L2", ""), abandon(1000, "L2"), fault(3900, 100, "*"), probe(6100, "b", false)},
			failover: true,
			checks:   1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := CheckExpiry(history(tc.evs...), WithFailoverGrace(3*time.Second))
			r, other := rep[0], rep[1]
			if tc.failover {
				r, other = other, r
			}
			assertResult(t, r, tc.checks, tc.violations, tc.unchecked)
			assertResult(t, other, 0, 0, 0)
			if tc.want != "" && (len(r.Examples) == 0 || !strings.Contains(r.Examples[0], tc.want)) {
				t.Errorf("examples %q lack %q", r.Examples, tc.want)
			}
		})
	}
}
