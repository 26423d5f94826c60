package checker

import (
	"strings"
	"testing"
	"time"
)

// keepalive builds an acknowledged renewal of lease with a 2s TTL, called
// at ms and answered 10 ms later.
func keepalive(ms int, lease string) Event {
	return Event{Time: at(ms + 10), Kind: KindKeepAliveOK, Client: "c1", Lease: lease, TTL: 2 * time.Second,
		Call: at(ms), Return: at(ms + 10)}
}

// lookup builds a LINEARIZABLE lookup of group g over [ms, ms+10].
func lookup(ms int, client string, members map[string]string) Event {
	return Event{Time: at(ms + 10), Kind: KindLookup, Client: client, Group: "g", Members: members,
		Call: at(ms), Return: at(ms + 10)}
}

// abandon builds a LeaseAbandoned with a 2s TTL, owned by replica r0.
func abandon(ms int, lease string) Event {
	return Event{Time: at(ms), Kind: KindLeaseAbandoned, Client: "c1", Lease: lease, TTL: 2 * time.Second, Replica: "r0"}
}

// fault builds a fault on replica from ms to ms+dur.
func fault(ms, dur int, replica string) Event {
	return Event{Time: at(ms + dur), Kind: KindFault, Value: "kill " + replica, Replica: replica, From: at(ms), To: at(ms + dur)}
}

// drain builds a drain of replica from ms to ms+dur: its leases move to
// the others; it costs no session.
func drain(ms, dur int, replica string) Event {
	return Event{Time: at(ms + dur), Kind: KindFault, Value: "drained " + replica, Drained: replica, From: at(ms), To: at(ms + dur)}
}

// leaseCall builds a call about lease L1 over [ms, ms+10].
func leaseCall(kind Kind, ms int, err string) Event {
	return Event{Time: at(ms + 10), Kind: kind, Client: "c1", Lease: "L1", Call: at(ms), Return: at(ms + 10), Err: err}
}

func TestCheckLeaseLifetime(t *testing.T) {
	// L1 (TTL 2 s) is granted at 0, registers a at 20 (put at 25), is
	// renewed at 600 (answered 610) and abandoned at 700, owned by r0. So
	// it may end from 2600 (call + TTL) and must by 3610 (answer + TTL +
	// 1 s), or by 5610 if r0 failed (+ the 2 s session timeout).
	base := []Event{keepalive(0, "L1"), reg(20, "c1", "a", "1", "L1", ""), keepalive(600, "L1"), abandon(700, "L1")}
	with := func(evs ...Event) []Event { return append(append([]Event(nil), base...), evs...) }
	gone := func(ms int) *Truth {
		return truthOf(300, 10_000, put(100, 25, "a", "1", "L1"), del(200, ms, "a"))
	}
	present := func(knownMS int) *Truth { return truthOf(300, knownMS, put(100, 25, "a", "1", "L1")) }
	dr := dereg(1000, "c1", "a", "L1", "")
	dr.Revision = 200
	for _, tc := range []struct {
		name                string
		evs                 []Event
		truth               *Truth
		early, strict, slow [3]int // checks, violations, unchecked
		multi               [3]int
		want                string // in the first example of the result that fails
	}{
		{name: "ends between TTL and TTL + 1 s", evs: base, truth: gone(2650), early: [3]int{1, 0, 0}, strict: [3]int{1, 0, 0}},
		{
			name: "deleted 100 ms before TTL after the last ack", evs: base, truth: gone(2500),
			early: [3]int{1, 1, 0}, strict: [3]int{1, 0, 0}, want: "100ms before 03:04:07.600",
		},
		{
			name: "deleted 1.5 s after TTL, owner alive", evs: base, truth: gone(4110),
			early: [3]int{1, 0, 0}, strict: [3]int{1, 1, 0}, want: "500ms after its deadline",
		},
		{
			name: "deleted 1.5 s after TTL, another replica failed", evs: with(fault(1000, 3000, "r1")), truth: gone(4110),
			early: [3]int{1, 0, 0}, strict: [3]int{1, 1, 0}, want: "500ms after its deadline",
		},
		{
			name: "deleted 1.5 s after TTL, owner failed", evs: with(fault(1000, 3000, "r0")), truth: gone(4110),
			early: [3]int{1, 0, 0}, slow: [3]int{1, 0, 0},
		},
		{
			name: "owner failed, deleted after TTL + session timeout + 1 s", evs: with(fault(1000, 3000, "r0")), truth: gone(5700),
			early: [3]int{1, 0, 0}, slow: [3]int{1, 1, 0}, want: "90ms after its deadline",
		},
		{
			name: "owner failed, then the replica that took the lease over: TTL + 1 s + 2 session timeouts",
			evs:  with(fault(1000, 1500, "r0"), fault(3000, 2500, "r1")), truth: gone(7500),
			early: [3]int{1, 0, 0}, multi: [3]int{1, 0, 0},
		},
		{
			name: "two failures, deleted after TTL + 1 s + 2 session timeouts", evs: with(fault(1000, 1500, "r0"), fault(3000, 2500, "r1")),
			truth: gone(7700), early: [3]int{1, 0, 0}, multi: [3]int{1, 1, 0}, want: "90ms after its deadline",
		},
		{
			name: "owner drained, then the replica that took the lease over failed", evs: with(drain(1000, 100, "r0"), fault(3000, 1000, "r1")),
			truth: gone(4110), early: [3]int{1, 0, 0}, slow: [3]int{1, 0, 0},
		},
		{
			name: "owner drained, no other fault, ended late", evs: with(drain(1000, 100, "r0")), truth: gone(4110),
			early: [3]int{1, 0, 0}, strict: [3]int{1, 1, 0}, want: "500ms after its deadline",
		},
		{
			name: "another replica drained, a third failed: the owner's fault is what counts", evs: with(drain(1000, 100, "r2"), fault(3000, 1000, "r1")),
			truth: gone(4110), early: [3]int{1, 0, 0}, strict: [3]int{1, 1, 0}, want: "500ms after its deadline",
		},
		{
			name: "the ZooKeeper leader's fault counts for every owner", evs: with(fault(3000, 500, "*")), truth: gone(4110),
			early: [3]int{1, 0, 0}, slow: [3]int{1, 0, 0},
		},
		{
			name: "never deleted", evs: base, truth: present(10_000),
			strict: [3]int{1, 1, 0}, want: "still present at 03:04:15.000",
		},
		{name: "the truth ends before the deadline", evs: base, truth: present(3000), strict: [3]int{0, 0, 1}},
		{
			name: "keepalive NotFound right after an ack", evs: with(leaseCall(KindLeaseLost, 620, ErrNotFound)), truth: gone(2650),
			early: [3]int{2, 1, 0}, strict: [3]int{1, 0, 0}, want: "answered NOT_FOUND at 03:04:05.630",
		},
		{
			name: "Register NotFound right after an ack", evs: with(reg(640, "c1", "b", "1", "L1", ErrNotFound)), truth: gone(2650),
			early: [3]int{2, 1, 0}, strict: [3]int{1, 0, 0}, want: "(register answered NOT_FOUND",
		},
		{
			name: "renewed after a NOT_FOUND", evs: with(reg(640, "c1", "b", "1", "L1", ErrNotFound), keepalive(700, "L1")), truth: gone(2750),
			early: [3]int{2, 1, 0}, strict: [3]int{1, 0, 0}, want: "yet a keepalive called at 03:04:05.700, after it, succeeded",
		},
		{
			name: "renewed after its member was deleted", evs: with(keepalive(2700, "L1")), truth: gone(2650),
			early: [3]int{1, 1, 0}, want: "the keepalive called at 03:04:07.700",
		},
		{name: "revoked: may end at once", evs: with(leaseCall(KindRevoke, 1000, "")), truth: gone(1005), strict: [3]int{1, 0, 0}},
		{
			name: "revoked through another replica, which then failed: its fault counts", evs: with(leaseCall(KindRevoke, 700, "DeadlineExceeded"), fault(1000, 3000, "r1")),
			truth: gone(4110), early: [3]int{0, 0, 0}, slow: [3]int{1, 0, 0},
		},
		{
			name: "revoked, no fault, ended late", evs: with(leaseCall(KindRevoke, 700, "DeadlineExceeded")),
			truth: gone(4110), early: [3]int{0, 0, 0}, strict: [3]int{1, 1, 0}, want: "500ms after its deadline",
		},
		{
			name: "a revoke that found no lease exempts nothing", evs: with(leaseCall(KindRevoke, 1000, ErrNotFound)), truth: gone(1005),
			early: [3]int{1, 1, 0}, strict: [3]int{1, 0, 0},
		},
		{name: "deregistered", evs: with(dr), truth: gone(1005), strict: [3]int{1, 0, 0}},
		{
			name: "a Register refused after the lease's renewal may have renewed it", evs: with(reg(700, "c1", "b", "1", "L1", ErrAlreadyExists)),
			truth: gone(3700), early: [3]int{1, 0, 0}, strict: [3]int{1, 0, 0},
		},
		{
			name: "a keepalive of unknown outcome may have renewed it", evs: with(leaseCall(KindKeepAliveFailed, 700, "DeadlineExceeded")),
			truth: gone(3700), early: [3]int{1, 0, 0}, strict: [3]int{1, 0, 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := CheckLeaseLifetime(history(tc.evs...), tc.truth, WithLateGrace(time.Second), WithFailoverGrace(3*time.Second))
			for i, want := range [][3]int{tc.early, tc.strict, tc.slow, tc.multi} {
				r := rep[i]
				assertResult(t, r, want[0], want[1], want[2])
				if tc.want != "" && want[1] > 0 && (len(r.Examples) == 0 || !strings.Contains(r.Examples[0], tc.want)) {
					t.Errorf("%s examples %q lack %q", r.Name, r.Examples, tc.want)
				}
			}
		})
	}
}
