package checker

import (
	"strings"
	"testing"
	"time"
)

func TestCheckConvergence(t *testing.T) {
	truth := map[string]map[string]string{"g": {"a": "1", "b": "2"}}
	stop := at(10_000)
	obs := func(src string, afterMS int, group string, members map[string]string) Observation {
		return Observation{Source: src, Time: stop.Add(time.Duration(afterMS) * time.Millisecond), Group: group, Members: members, Revision: 7}
	}
	observed := []Observation{
		obs("watch-1", 1000, "g", map[string]string{"a": "1"}), // still catching up: not checked
		obs("watch-1", 2500, "g", map[string]string{"a": "1", "b": "2"}),
		obs("lookup-2", 3000, "g", map[string]string{"a": "1", "b": "3", "c": "9"}),
		obs("watch-3", 1000, "g", map[string]string{"a": "1", "b": "2"}), // never sampled late
		obs("watch-1", 2000, "h", nil),                                   // a group with no members: at the deadline
	}
	r := CheckConvergence(truth, stop, observed, 2*time.Second)
	assertResult(t, r, 3, 1, 1)
	if len(r.Examples) != 2 ||
		!strings.Contains(r.Examples[0], `lookup-2: group g`) ||
		!strings.Contains(r.Examples[0], `extra c; value b="3" want "2"`) ||
		!strings.HasPrefix(r.Examples[1], "unchecked: watch-3") {
		t.Errorf("examples %q", r.Examples)
	}

	r = CheckConvergence(truth, stop, observed[:2], 2*time.Second)
	assertResult(t, r, 1, 0, 0)
}

// reg builds a register call of group g answered at ms+10.
func reg(ms int, client, member, value, lease, err string) Event {
	return Event{Time: at(ms + 10), Kind: KindRegister, Client: client, Group: "g", Member: member,
		Value: value, Lease: lease, Call: at(ms), Return: at(ms + 10), Err: err}
}

// dereg builds a deregister call of group g answered at ms+10.
func dereg(ms int, client, member, lease, err string) Event {
	return Event{Time: at(ms + 10), Kind: KindDeregister, Client: client, Group: "g", Member: member,
		Lease: lease, Call: at(ms), Return: at(ms + 10), Err: err}
}

// left builds a LEFT seen by watcher w.
func left(ms int, member string, revision int64) Event {
	return Event{Time: at(ms), Kind: KindWatchEvent, Client: "w", Group: "g", Member: member, Type: WatchLeft, Revision: revision}
}

// kept builds a LeaseKept interval.
func kept(lease string, fromMS, toMS int) Event {
	return Event{Time: at(toMS), Kind: KindLeaseKept, Lease: lease, From: at(fromMS), To: at(toMS)}
}

func TestCheckNoLeft(t *testing.T) {
	register := reg(0, "c1", "a", "v", "L1", "")
	register.Revision = 100
	for _, tc := range []struct {
		name               string
		evs                []Event
		checks, violations int
	}{
		{"no LEFT", []Event{register, kept("L1", 0, 5000)}, 1, 0},
		{"LEFT during keepalive", []Event{register, left(2000, "a", 120), kept("L1", 0, 5000)}, 1, 1},
		{"LEFT after the interval", []Event{register, kept("L1", 0, 5000), left(6000, "a", 120)}, 1, 0},
		{"LEFT of an earlier registration", []Event{register, left(2000, "a", 90), kept("L1", 0, 5000)}, 1, 0},
		{"LEFT of another member", []Event{register, left(2000, "b", 120), kept("L1", 0, 5000)}, 1, 0},
		{"LEFT after deregister", []Event{register, dereg(3000, "c1", "a", "L1", ""), left(3100, "a", 130), kept("L1", 0, 5000)}, 1, 0},
		{"LEFT despite a refused deregister", []Event{register, dereg(3000, "c2", "a", "L2", ErrPermissionDenied), left(3100, "a", 130), kept("L1", 0, 5000)}, 1, 1},
		{"registered twice, counted once", []Event{register, reg(1000, "c1", "a", "v", "L1", ""), left(2000, "a", 120), kept("L1", 0, 5000)}, 1, 1},
		{"another lease kept", []Event{register, left(2000, "a", 120), kept("L2", 0, 5000)}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertResult(t, CheckNoLeft(history(tc.evs...)), tc.checks, tc.violations, 0)
		})
	}
}
