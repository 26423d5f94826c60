package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestGrpcurlElection covers examples 6 and 7: leader election, and the
// queue of waiting candidates that herd avoidance moves up one at a time.
func TestGrpcurlElection(t *testing.T) {
	const campaign, resign, leader = "zkcoord.v1.ElectionService/Campaign",
		"zkcoord.v1.ElectionService/Resign", "zkcoord.v1.ElectionService/Leader"
	el := gcName(t, "e")
	obs := grpcurlStart(t, "zkcoord.v1.ElectionService/Observe", fmt.Sprintf(`{"election":%q}`, el), "-max-time", "15")
	if m := obs.next(); m.get("leader") != nil {
		t.Fatalf("Observe of an empty election = %v", m)
	}
	if l := gcCall(t, leader, fmt.Sprintf(`{"election":%q}`, el)); l.get("leader") != nil {
		t.Fatalf("Leader of an empty election = %v", l)
	}

	leaseA := gcCall(t, "zkcoord.v1.LeaseService/Grant", `{"ttl":"30s"}`).str("leaseId")
	leaseB := gcCall(t, "zkcoord.v1.LeaseService/Grant", `{"ttl":"30s"}`).str("leaseId")
	a := grpcurlStart(t, campaign, fmt.Sprintf(`{"election":%q,"value":"node-a:9000","lease_id":%q}`, el, leaseA), "-max-time", "15")
	ea := a.next()
	if ea.str("status") != "STATUS_ELECTED" || ea.num("fencingToken") <= 0 || ea.str("leaseId") != leaseA ||
		ea.str("leader.value") != "node-a:9000" || ea.str("leader.candidate") != ea.str("candidate") {
		t.Fatalf("A's first Campaign message = %v", ea)
	}
	if m, _ := obs.until("leader A", func(m gcMsg) bool { return m.get("leader") != nil }); m.str("leader.candidate") != ea.str("candidate") ||
		m.num("leader.fencingToken") != ea.num("fencingToken") {
		t.Fatalf("Observe after A's election = %v", m)
	}

	// A second candidate stays QUEUED while A leads.
	b := grpcurlStart(t, campaign, fmt.Sprintf(`{"election":%q,"value":"node-b:9000","lease_id":%q}`, el, leaseB), "-max-time", "15")
	qb := b.next()
	if qb.str("status") != "STATUS_QUEUED" || qb.num("position") != 1 || qb.str("leader.value") != "node-a:9000" ||
		qb.str("leaseId") != leaseB {
		t.Fatalf("B's first Campaign message = %v", qb)
	}
	l := gcCall(t, leader, fmt.Sprintf(`{"election":%q}`, el))
	if l.str("leader.value") != "node-a:9000" || l.num("leader.fencingToken") != ea.num("fencingToken") || l.str("leader.election") != el {
		t.Fatalf("Leader while A leads = %v", l)
	}
	for _, m := range b.pending() { // B stays queued while A leads
		if m.str("status") != "STATUS_QUEUED" {
			t.Fatalf("B while A leads: %v", m)
		}
	}

	// A resigns: its stream ends with RESIGNED, B is elected with a higher
	// fencing token, observers see B.
	rs := gcCall(t, resign, fmt.Sprintf(`{"election":%q,"lease_id":%q}`, el, leaseA))
	if rs.get("wasLeader") != true || rs.num("revision") <= 0 {
		t.Fatalf("Resign A = %v", rs)
	}
	if m := a.next(); m.str("status") != "STATUS_RESIGNED" || m.str("candidate") != ea.str("candidate") {
		t.Fatalf("A after Resign = %v", m)
	}
	a.endOK()
	eb, _ := b.until("B elected", func(m gcMsg) bool { return m.str("status") != "STATUS_QUEUED" })
	if eb.str("status") != "STATUS_ELECTED" || eb.num("fencingToken") <= ea.num("fencingToken") ||
		eb.str("leader.value") != "node-b:9000" {
		t.Fatalf("B after A resigned = %v", eb)
	}
	if m, _ := obs.until("leader B", func(m gcMsg) bool { return m.str("leader.candidate") == eb.str("candidate") }); m.num("revision") < rs.num("revision") {
		t.Fatalf("Observe after A resigned = %v", m)
	}
	gcFail(t, resign, fmt.Sprintf(`{"election":%q,"lease_id":%q}`, el, leaseA), "NotFound", 5)

	// Two more candidates with stream-owned leases (no lease_id) queue up
	// behind B. Each watches only the one ahead of it.
	c := grpcurlStart(t, campaign, fmt.Sprintf(`{"election":%q,"value":"node-c:9000"}`, el), "-max-time", "15")
	qc := c.next()
	if qc.str("status") != "STATUS_QUEUED" || qc.num("position") != 1 || !gcLeaseRE.MatchString(qc.str("leaseId")) {
		t.Fatalf("C's first Campaign message = %v", qc)
	}
	d := grpcurlStart(t, campaign, fmt.Sprintf(`{"election":%q,"value":"node-d:9000","ttl":"5s"}`, el), "-max-time", "15")
	if m := d.next(); m.str("status") != "STATUS_QUEUED" || m.num("position") != 2 {
		t.Fatalf("D's first Campaign message = %v", m)
	}
	// C's client goes away: its candidacy is withdrawn at once and D, which
	// watched C, moves up.
	c.kill()
	if m := d.next(); m.str("status") != "STATUS_QUEUED" || m.num("position") != 1 {
		t.Fatalf("D after C left = %v", m)
	}
	gcCall(t, resign, fmt.Sprintf(`{"election":%q,"lease_id":%q}`, el, leaseB))
	if m := b.next(); m.str("status") != "STATUS_RESIGNED" {
		t.Fatalf("B after Resign = %v", m)
	}
	b.endOK()
	ed := d.next()
	if ed.str("status") != "STATUS_ELECTED" || ed.num("fencingToken") <= eb.num("fencingToken") {
		t.Fatalf("D after B resigned = %v", ed)
	}
	obs.until("leader D", func(m gcMsg) bool { return m.str("leader.value") == "node-d:9000" })
	if l := gcCall(t, leader, fmt.Sprintf(`{"election":%q}`, el)); l.str("leader.candidate") != ed.str("candidate") {
		t.Fatalf("Leader = %v, want D %v", l, ed)
	}
	// D's client goes away while it leads: no leader.
	d.kill()
	obs.until("no leader", func(m gcMsg) bool { return m.get("leader") == nil })
	if l := gcCall(t, leader, fmt.Sprintf(`{"election":%q}`, el)); l.get("leader") != nil {
		t.Fatalf("Leader after D left = %v", l)
	}
	obs.kill()

	// -max-time bounds a stream that would stay open: it ends with
	// DeadlineExceeded (exit 64+4) after what it printed.
	o := grpcurlStart(t, "zkcoord.v1.ElectionService/Observe", fmt.Sprintf(`{"election":%q}`, el), "-max-time", "1")
	if m := o.next(); m.get("leader") != nil {
		t.Fatalf("Observe = %v", m)
	}
	if code, stderr := o.end(); code != 64+4 || !strings.Contains(stderr, "Code: DeadlineExceeded") {
		t.Fatalf("Observe with -max-time: exit %d\n%s", code, stderr)
	}
	gcCall(t, "zkcoord.v1.LeaseService/Revoke", fmt.Sprintf(`{"lease_id":%q}`, leaseA))
	gcCall(t, "zkcoord.v1.LeaseService/Revoke", fmt.Sprintf(`{"lease_id":%q}`, leaseB))
}

// TestGrpcurlBarrier covers example 8: three participants wait for each
// other; then AwaitGroup waits for enough members in a group.
func TestGrpcurlBarrier(t *testing.T) {
	const await, leave = "zkcoord.v1.BarrierService/AwaitBarrier", "zkcoord.v1.BarrierService/LeaveBarrier"
	bar := gcName(t, "b")
	var leases [3]string
	var ps [3]*gcStream
	var released [3]bool
	for i := range ps {
		leases[i] = gcCall(t, "zkcoord.v1.LeaseService/Grant", `{"ttl":"30s"}`).str("leaseId")
		ps[i] = grpcurlStart(t, await, fmt.Sprintf(`{"barrier":%q,"threshold":3,"participant_id":"p%d","lease_id":%q}`,
			bar, i+1, leases[i]), "-max-time", "15")
		// Wait for this participant's own arrival before the next joins.
		m, _ := ps[i].until("own arrival", func(m gcMsg) bool { return m.num("arrived") == int64(i+1) })
		if m.num("threshold") != 3 || m.str("participantId") != fmt.Sprintf("p%d", i+1) || m.str("leaseId") != leases[i] ||
			(i < 2 && m.get("released") != nil) {
			t.Fatalf("p%d on arrival: %v", i+1, m)
		}
		released[i] = m.get("released") == true
		if i == 1 { // another threshold is refused while the barrier is in use
			gcFail(t, await, fmt.Sprintf(`{"barrier":%q,"threshold":5}`, bar), "FailedPrecondition", 9)
		}
	}
	for i, p := range ps {
		if released[i] { // the third arrival may be the release itself
			p.endOK()
			continue
		}
		rel, seen := p.until("release", func(m gcMsg) bool { return m.get("released") == true })
		if rel.num("arrived") != 3 {
			t.Fatalf("p%d release = %v", i+1, rel)
		}
		for _, m := range seen {
			if m.num("arrived") > 3 || m.num("arrived") < 1 {
				t.Fatalf("p%d progress %v", i+1, m)
			}
		}
		p.endOK() // the stream ends after the release
	}
	// A late participant of a released barrier is released at once.
	late := grpcurlStart(t, await, fmt.Sprintf(`{"barrier":%q,"threshold":3}`, bar), "-max-time", "15")
	if m := late.next(); m.get("released") != true || m.str("participantId") == "" {
		t.Fatalf("late participant = %v", m)
	}
	late.endOK()

	for i, l := range leases {
		data := fmt.Sprintf(`{"barrier":%q,"participant_id":"p%d","lease_id":%q}`, bar, i+1, l)
		if m := gcCall(t, leave, data); m.get("wasReleased") != true {
			t.Fatalf("LeaveBarrier p%d = %v", i+1, m)
		}
		gcFail(t, leave, data, "NotFound", 5)
	}
	// The last one out removed the barrier: the name is free for another
	// threshold.
	again := grpcurlStart(t, await, fmt.Sprintf(`{"barrier":%q,"threshold":1}`, bar), "-max-time", "15")
	if m := again.next(); m.get("released") != true || m.num("arrived") != 1 || m.num("threshold") != 1 {
		t.Fatalf("barrier reused with threshold 1 = %v", m)
	}
	again.endOK()

	// The gRPC deadline bounds a wait that never completes.
	never := grpcurlStart(t, await, fmt.Sprintf(`{"barrier":%q,"threshold":2}`, gcName(t, "never")), "-max-time", "1")
	if m := never.next(); m.num("arrived") != 1 || m.get("released") != nil {
		t.Fatalf("never = %v", m)
	}
	if code, stderr := never.end(); code != 64+4 {
		t.Fatalf("barrier past its deadline: exit %d\n%s", code, stderr)
	}
	for _, l := range leases {
		gcCall(t, "zkcoord.v1.LeaseService/Revoke", fmt.Sprintf(`{"lease_id":%q}`, l))
	}

	// AwaitGroup: wait until a registry group has two members.
	group := gcName(t, "farm")
	ag := grpcurlStart(t, "zkcoord.v1.BarrierService/AwaitGroup", fmt.Sprintf(`{"group":%q,"min_members":2}`, group), "-max-time", "15")
	if m := ag.next(); m.num("members") != 0 || m.num("minMembers") != 2 || m.get("ready") != nil {
		t.Fatalf("AwaitGroup on an empty group = %v", m)
	}
	for i := 1; i <= 2; i++ {
		r := gcCall(t, "zkcoord.v1.RegistryService/Register",
			fmt.Sprintf(`{"group":%q,"member_id":"gpu-%d","value":"10.0.1.%d","ttl":"30s"}`, group, i, i))
		m, _ := ag.until(fmt.Sprintf("%d members", i), func(m gcMsg) bool { return m.num("members") == int64(i) })
		if (m.get("ready") == true) != (i == 2) || m.num("revision") != r.num("revision") {
			t.Fatalf("AwaitGroup at %d members = %v (register %v)", i, m, r)
		}
		defer gcCall(t, "zkcoord.v1.LeaseService/Revoke", fmt.Sprintf(`{"lease_id":%q}`, r.str("leaseId")))
	}
	ag.endOK()
}

// TestGrpcurlLongPoll covers example 10: blocking queries of a group, a
// leader and a barrier, and JoinBarrier.
func TestGrpcurlLongPoll(t *testing.T) {
	const lookup, leader = "zkcoord.v1.RegistryService/Lookup", "zkcoord.v1.ElectionService/Leader"
	const join, get = "zkcoord.v1.BarrierService/JoinBarrier", "zkcoord.v1.BarrierService/GetBarrier"
	group, election, bar := gcName(t, "dns"), gcName(t, "scheduler"), gcName(t, "batch")

	// A group: the poll answers the Register (started before it or not).
	rev := gcCall(t, lookup, fmt.Sprintf(`{"group":%q}`, group)).num("revision")
	poll := grpcurlStart(t, lookup, fmt.Sprintf(`{"group":%q,"after_revision":"%d","wait":"60s"}`, group, rev), "-max-time", "70")
	reg := gcCall(t, "zkcoord.v1.RegistryService/Register", fmt.Sprintf(`{"group":%q,"member_id":"mail","value":"10.0.0.8:25","persistent":true}`, group))
	if m := poll.next(); len(m.list("members")) != 1 || m.num("revision") != reg.num("revision") {
		t.Fatalf("Lookup long-poll = %v (register %v)", m, reg)
	}
	poll.endOK()
	// No change: the end of the wait, the same revision.
	start := time.Now()
	same := gcCall(t, lookup, fmt.Sprintf(`{"group":%q,"after_revision":"%d","wait":"1s"}`, group, reg.num("revision")))
	if same.num("revision") != reg.num("revision") || time.Since(start) < time.Second {
		t.Fatalf("Lookup long-poll without a change = %v after %v", same, time.Since(start))
	}

	// A leader: the poll answers the first candidate.
	er := gcCall(t, leader, fmt.Sprintf(`{"election":%q}`, election))
	if er.get("leader") != nil || er.num("revision") <= 0 {
		t.Fatalf("Leader of an election nobody entered = %v", er)
	}
	poll = grpcurlStart(t, leader, fmt.Sprintf(`{"election":%q,"after_revision":"%d","wait":"60s"}`, election, er.num("revision")), "-max-time", "70")
	camp := grpcurlStart(t, "zkcoord.v1.ElectionService/Campaign", fmt.Sprintf(`{"election":%q,"value":"10.0.0.7:8080"}`, election), "-max-time", "15")
	elected := camp.next()
	if m := poll.next(); m.str("leader.value") != "10.0.0.7:8080" || m.str("leader.candidate") != elected.str("candidate") || m.num("revision") <= er.num("revision") {
		t.Fatalf("Leader long-poll = %v (campaign %v)", m, elected)
	}
	poll.endOK()
	camp.kill()

	// A barrier: two joins without streams, a poll until the release.
	j1 := gcCall(t, join, fmt.Sprintf(`{"barrier":%q,"threshold":2,"participant_id":"w1","ttl":"60s"}`, bar))
	if j1.num("arrived") != 1 || j1.num("threshold") != 2 || j1.get("released") != nil || j1.str("participantId") != "w1" ||
		!gcLeaseRE.MatchString(j1.str("leaseId")) || j1.str("leaseExpiresAt") == "" || j1.num("revision") <= 0 {
		t.Fatalf("JoinBarrier w1 = %v", j1)
	}
	poll = grpcurlStart(t, get, fmt.Sprintf(`{"barrier":%q,"after_revision":"%d","wait":"60s"}`, bar, j1.num("revision")), "-max-time", "70")
	j2 := gcCall(t, join, fmt.Sprintf(`{"barrier":%q,"threshold":2,"participant_id":"w2","ttl":"60s"}`, bar))
	if j2.num("arrived") != 2 || j2.get("released") != true {
		t.Fatalf("JoinBarrier w2 = %v", j2)
	}
	m := poll.next()
	poll.endOK()
	if m.num("revision") <= j1.num("revision") || m.num("arrived") != 2 {
		t.Fatalf("GetBarrier long-poll = %v", m)
	}
	if m.get("released") != true { // the arrival, before the release: poll again
		m = gcCall(t, get, fmt.Sprintf(`{"barrier":%q,"after_revision":"%d","wait":"60s"}`, bar, m.num("revision")))
	}
	if m.get("released") != true || m.num("revision") != j2.num("revision") {
		t.Fatalf("GetBarrier after the release = %v (join %v)", m, j2)
	}
	for _, j := range []gcMsg{j1, j2} {
		gcCall(t, "zkcoord.v1.LeaseService/Revoke", fmt.Sprintf(`{"lease_id":%q}`, j.str("leaseId")))
	}
}
