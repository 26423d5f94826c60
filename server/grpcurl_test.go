package server_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

func TestGrpcurlListDescribe(t *testing.T) {
	r := grpcurlRun(t, nil, "list")
	if r.code != 0 {
		t.Fatalf("list: exit %d\n%s", r.code, r.stderr)
	}
	services := strings.Fields(r.stdout)
	want := map[string][]string{
		"zkcoord.v1.LeaseService":    {"GetLease", "Grant", "KeepAlive", "KeepAliveStream", "Revoke"},
		"zkcoord.v1.RegistryService": {"Deregister", "Lookup", "Register", "Watch", "WatchGroup"},
		"zkcoord.v1.ElectionService": {"Campaign", "Leader", "Observe", "Resign"},
		"zkcoord.v1.BarrierService":  {"AwaitBarrier", "AwaitGroup", "GetBarrier", "JoinBarrier", "LeaveBarrier"},
		"zkcoord.v1.StatusService":   {"GetStatus"},
		"grpc.health.v1.Health":      nil,
		"zkcoord.v1.SemaphoreService": {"AcquireSemaphore", "GetSemaphore", "ReleaseSemaphore",
			"TryAcquireSemaphore"},
	}
	for svc, methods := range want {
		if !slices.Contains(services, svc) {
			t.Fatalf("list = %v, missing %s", services, svc)
		}
		if methods == nil {
			continue
		}
		r := grpcurlRun(t, nil, "list", svc)
		got := strings.Fields(r.stdout)
		var wantFull []string
		for _, m := range methods {
			wantFull = append(wantFull, svc+"."+m)
		}
		if r.code != 0 || !slices.Equal(got, wantFull) {
			t.Fatalf("list %s = %v (exit %d), want %v", svc, got, r.code, wantFull)
		}
	}

	r = grpcurlRun(t, nil, "describe", "zkcoord.v1.ElectionService")
	for _, line := range []string{
		"zkcoord.v1.ElectionService is a service:",
		"rpc Campaign ( .zkcoord.v1.CampaignRequest ) returns ( stream .zkcoord.v1.CampaignResponse );",
		"rpc Resign ( .zkcoord.v1.ResignRequest ) returns ( .zkcoord.v1.ResignResponse );",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, line) {
			t.Fatalf("describe ElectionService (exit %d) lacks %q:\n%s%s", r.code, line, r.stdout, r.stderr)
		}
	}
	r = grpcurlRun(t, nil, "describe", "zkcoord.v1.RegisterRequest")
	for _, line := range []string{"message RegisterRequest {", "map<string, string> metadata = 4;",
		".google.protobuf.Duration ttl = 6;", "bool persistent = 7;"} {
		if r.code != 0 || !strings.Contains(r.stdout, line) {
			t.Fatalf("describe RegisterRequest (exit %d) lacks %q:\n%s%s", r.code, line, r.stdout, r.stderr)
		}
	}
	r = grpcurlRun(t, nil, "describe", "zkcoord.v1.CampaignResponse.Status")
	if r.code != 0 || !strings.Contains(r.stdout, "STATUS_ELECTED = 2;") {
		t.Fatalf("describe CampaignResponse.Status (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestGrpcurlStatusHealth(t *testing.T) {
	st := gcCall(t, "zkcoord.v1.StatusService/GetStatus", "{}")
	if st.str("state") != "CONNECTION_STATE_CONNECTED" || st.str("server") != testenv.ZooKeeper(t) ||
		len(st.list("servers")) != 1 || !strings.HasPrefix(st.str("root"), "/testenv-") ||
		!strings.HasPrefix(st.str("sessionId"), "0x") || st.str("sessionTimeout") == "" ||
		st.str("stateSince") == "" {
		t.Fatalf("GetStatus = %v", st)
	}
	// GetStatus also works with no -d at all (an empty request).
	if r := grpcurlRun(t, nil, "zkcoord.v1.StatusService/GetStatus"); r.code != 0 ||
		!strings.Contains(r.stdout, `"state": "CONNECTION_STATE_CONNECTED"`) {
		t.Fatalf("GetStatus without -d: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, svc := range []string{"", "zkcoord.v1.RegistryService", "zkcoord.v1.ElectionService"} {
		h := gcCall(t, "grpc.health.v1.Health/Check", fmt.Sprintf(`{"service":%q}`, svc))
		if h.str("status") != "SERVING" {
			t.Fatalf("health %q = %v", svc, h)
		}
	}
	gcFail(t, "grpc.health.v1.Health/Check", `{"service":"no.such.Service"}`, "NotFound", 5)
}

func TestGrpcurlLease(t *testing.T) {
	const grant, keep = "zkcoord.v1.LeaseService/Grant", "zkcoord.v1.LeaseService/KeepAlive"
	g := gcCall(t, grant, `{"ttl":"30s"}`)
	id := g.str("leaseId")
	if !gcLeaseRE.MatchString(id) || g.str("ttl") != "30s" || g.str("expiresAt") == "" {
		t.Fatalf("Grant = %v", g)
	}
	granted, err := time.Parse(time.RFC3339Nano, g.str("expiresAt"))
	if err != nil {
		t.Fatal(err)
	}
	ka := gcCall(t, keep, fmt.Sprintf(`{"lease_id":%q}`, id))
	renewed, err := time.Parse(time.RFC3339Nano, ka.str("expiresAt"))
	if err != nil || ka.str("ttl") != "30s" || renewed.Before(granted) {
		t.Fatalf("KeepAlive = %v (%v)", ka, err)
	}

	group := gcName(t, "g")
	reg := gcCall(t, "zkcoord.v1.RegistryService/Register",
		fmt.Sprintf(`{"group":%q,"member_id":"m1","value":"10.0.0.1:80","lease_id":%q}`, group, id))
	if reg.str("leaseId") != id || reg.str("member.id") != "m1" {
		t.Fatalf("Register with lease = %v", reg)
	}
	gl := gcCall(t, "zkcoord.v1.LeaseService/GetLease", fmt.Sprintf(`{"lease_id":%q}`, id))
	owned := gl.list("owned")
	if gl.str("ttl") != "30s" || len(owned) != 1 || !strings.Contains(fmt.Sprint(owned[0]), group) ||
		!strings.Contains(fmt.Sprint(owned[0]), "m1") {
		t.Fatalf("GetLease = %v", gl)
	}

	// KeepAliveStream: requests written one at a time on stdin (-d @), each
	// answered before the next is sent; closing stdin ends the stream OK.
	ks := grpcurlStart(t, "zkcoord.v1.LeaseService/KeepAliveStream", "@")
	for i := 0; i < 3; i++ {
		ks.send(fmt.Sprintf(`{"lease_id":%q}`, id))
		if r := ks.next(); r.str("leaseId") != id || r.str("ttl") != "30s" || r.str("expiresAt") == "" {
			t.Fatalf("KeepAliveStream response %d = %v", i, r)
		}
	}
	ks.closeSend()
	ks.endOK()

	// A second lease, kept alive on the same stream as the first.
	id2 := gcCall(t, grant, `{"ttl":"5s"}`).str("leaseId")
	ks = grpcurlStart(t, "zkcoord.v1.LeaseService/KeepAliveStream", "@")
	ks.send(fmt.Sprintf(`{"lease_id":%q}`, id2))
	if r := ks.next(); r.str("leaseId") != id2 || r.str("ttl") != "5s" {
		t.Fatalf("KeepAliveStream(second lease) = %v", r)
	}
	ks.send(fmt.Sprintf(`{"lease_id":%q}`, id))
	if r := ks.next(); r.str("leaseId") != id {
		t.Fatalf("KeepAliveStream(first lease) = %v", r)
	}
	// An unknown lease ends the stream with NOT_FOUND. (grpcurl itself
	// only exits once its stdin reaches EOF or the next request.)
	ks.send(`{"lease_id":"00000000000000000000000000000000"}`)
	ks.closeSend()
	if code, stderr := ks.end(); code != 64+5 || !strings.Contains(stderr, "Code: NotFound") {
		t.Fatalf("KeepAliveStream(unknown lease): exit %d\n%s", code, stderr)
	}

	rv := gcCall(t, "zkcoord.v1.LeaseService/Revoke", fmt.Sprintf(`{"lease_id":%q}`, id))
	if rv.num("revision") <= reg.num("revision") {
		t.Fatalf("Revoke = %v, after Register at %v", rv, reg.num("revision"))
	}
	gcCall(t, "zkcoord.v1.LeaseService/Revoke", fmt.Sprintf(`{"lease_id":%q}`, id2))
	for _, m := range []string{keep, "zkcoord.v1.LeaseService/GetLease", "zkcoord.v1.LeaseService/Revoke"} {
		gcFail(t, m, fmt.Sprintf(`{"lease_id":%q}`, id), "NotFound", 5)
	}
	lk := gcCall(t, "zkcoord.v1.RegistryService/Lookup",
		fmt.Sprintf(`{"group":%q,"consistency":"CONSISTENCY_LINEARIZABLE"}`, group))
	if len(lk.list("members")) != 0 || lk.num("revision") < rv.num("revision") {
		t.Fatalf("Lookup after Revoke = %v", lk)
	}
}

// TestGrpcurlRegistry covers the talk's examples 1-5: register, lookup,
// ephemeral register, watch a group, add/remove members.
func TestGrpcurlRegistry(t *testing.T) {
	const register, deregister, lookup = "zkcoord.v1.RegistryService/Register",
		"zkcoord.v1.RegistryService/Deregister", "zkcoord.v1.RegistryService/Lookup"
	group := gcName(t, "dns")

	// 1. register: a persistent member with a value and metadata.
	req := fmt.Sprintf(`{"group":%q,"member_id":"www","value":"10.0.0.7:80","metadata":{"zone":"eu-1"},"persistent":true}`, group)
	r1 := gcCall(t, register, req)
	if r1.str("member.id") != "www" || r1.str("member.value") != "10.0.0.7:80" || r1.str("member.metadata.zone") != "eu-1" ||
		r1.get("member.persistent") != true || r1.str("leaseId") != "" || r1.num("revision") <= 0 ||
		r1.num("revision") != r1.num("member.modRevision") || r1.num("member.createRevision") != r1.num("revision") {
		t.Fatalf("Register persistent = %v", r1)
	}
	// Repeating it changes nothing: same revision.
	if again := gcCall(t, register, req); again.num("revision") != r1.num("revision") {
		t.Fatalf("repeated Register = %v, first %v", again, r1)
	}

	// 2. lookup: one member, then the group, linearizable.
	lk := gcCall(t, lookup, fmt.Sprintf(`{"group":%q,"member_id":"www","consistency":"CONSISTENCY_LINEARIZABLE"}`, group))
	if ms := lk.list("members"); len(ms) != 1 || gcMsg(ms[0].(map[string]any)).str("value") != "10.0.0.7:80" ||
		lk.num("revision") < r1.num("revision") {
		t.Fatalf("Lookup www = %v", lk)
	}
	lk = gcCall(t, lookup, fmt.Sprintf(`{"group":%q}`, group))
	if len(lk.list("members")) != 1 {
		t.Fatalf("Lookup (cached) = %v", lk)
	}

	// 4. watch a group: a snapshot, then every change from other clients.
	w := grpcurlStart(t, "zkcoord.v1.RegistryService/WatchGroup", fmt.Sprintf(`{"group":%q}`, group), "-max-time", "15")
	snap := w.next()
	if snap.str("type") != "TYPE_SNAPSHOT" || len(snap.list("members")) != 1 || snap.num("revision") < r1.num("revision") {
		t.Fatalf("first WatchGroup message = %v", snap)
	}

	// 3 and 5. add members with a lease (the gateway grants it from ttl),
	// update one, remove one.
	r2 := gcCall(t, register, fmt.Sprintf(`{"group":%q,"member_id":"web-1","value":"10.0.0.11:8080","ttl":"30s"}`, group))
	lease := r2.str("leaseId")
	if !gcLeaseRE.MatchString(lease) || r2.str("leaseExpiresAt") == "" || r2.get("member.persistent") != nil {
		t.Fatalf("Register with ttl = %v", r2)
	}
	ev := w.next()
	if ev.str("type") != "TYPE_JOINED" || ev.str("member.id") != "web-1" || ev.num("revision") != r2.num("revision") {
		t.Fatalf("after Register web-1: %v (register %v)", ev, r2)
	}
	gen := gcCall(t, register, fmt.Sprintf(`{"group":%q,"value":"10.0.0.12:8080","lease_id":%q}`, group, lease))
	genID := gen.str("member.id")
	if genID == "" || gen.str("leaseId") != lease {
		t.Fatalf("Register without member_id = %v", gen)
	}
	if ev = w.next(); ev.str("type") != "TYPE_JOINED" || ev.str("member.id") != genID {
		t.Fatalf("after Register %s: %v", genID, ev)
	}
	up := gcCall(t, register, fmt.Sprintf(`{"group":%q,"member_id":"web-1","value":"10.0.0.11:9090","lease_id":%q}`, group, lease))
	if ev = w.next(); ev.str("type") != "TYPE_UPDATED" || ev.str("member.value") != "10.0.0.11:9090" ||
		ev.num("revision") != up.num("revision") || ev.num("member.createRevision") != r2.num("revision") {
		t.Fatalf("after update: %v", ev)
	}

	// Errors: another owner, not the owner.
	gcFail(t, register, fmt.Sprintf(`{"group":%q,"member_id":"web-1","value":"x","ttl":"30s"}`, group), "AlreadyExists", 6)
	gcFail(t, register, fmt.Sprintf(`{"group":%q,"member_id":"www","value":"x","lease_id":%q}`, group, lease), "AlreadyExists", 6)
	gcFail(t, deregister, fmt.Sprintf(`{"group":%q,"member_id":"web-1"}`, group), "PermissionDenied", 7)
	gcFail(t, deregister, fmt.Sprintf(`{"group":%q,"member_id":"nobody","lease_id":%q}`, group, lease), "NotFound", 5)

	dr := gcCall(t, deregister, fmt.Sprintf(`{"group":%q,"member_id":"web-1","lease_id":%q}`, group, lease))
	if ev = w.next(); ev.str("type") != "TYPE_LEFT" || ev.str("member.id") != "web-1" || ev.num("revision") != dr.num("revision") {
		t.Fatalf("after Deregister web-1: %v (deregister %v)", ev, dr)
	}
	gcFail(t, deregister, fmt.Sprintf(`{"group":%q,"member_id":"web-1","lease_id":%q}`, group, lease), "NotFound", 5)
	// A persistent member is deregistered without a lease.
	dr = gcCall(t, deregister, fmt.Sprintf(`{"group":%q,"member_id":"www"}`, group))
	if ev = w.next(); ev.str("type") != "TYPE_LEFT" || ev.str("member.id") != "www" || ev.num("revision") != dr.num("revision") {
		t.Fatalf("after Deregister www: %v", ev)
	}

	// 3. ephemeral register: a one-shot client registers with a short TTL
	// and never comes back; the member leaves when the TTL lapses.
	start := time.Now()
	eph := gcCall(t, register, fmt.Sprintf(`{"group":%q,"member_id":"php-1","value":"10.0.2.1:9000","ttl":"1s"}`, group))
	if ev = w.next(); ev.str("type") != "TYPE_JOINED" || ev.str("member.id") != "php-1" {
		t.Fatalf("after Register php-1: %v", ev)
	}
	if ev = w.next(); ev.str("type") != "TYPE_LEFT" || ev.str("member.id") != "php-1" || ev.num("revision") <= eph.num("revision") {
		t.Fatalf("after php-1's TTL: %v", ev)
	}
	// TTL + 1 s (DESIGN.md), plus grpcurl's own start-up.
	if gone := time.Since(start); gone > time.Second+1500*time.Millisecond {
		t.Fatalf("member with TTL 1s left after %v", gone)
	}

	// Revoking the lease removes what is left of it (genID).
	rv := gcCall(t, "zkcoord.v1.LeaseService/Revoke", fmt.Sprintf(`{"lease_id":%q}`, lease))
	if ev = w.next(); ev.str("type") != "TYPE_LEFT" || ev.str("member.id") != genID || ev.num("revision") != rv.num("revision") {
		t.Fatalf("after Revoke: %v (revoke %v)", ev, rv)
	}
	lk = gcCall(t, lookup, fmt.Sprintf(`{"group":%q,"consistency":"CONSISTENCY_LINEARIZABLE"}`, group))
	if len(lk.list("members")) != 0 || lk.num("revision") < rv.num("revision") {
		t.Fatalf("Lookup at the end = %v", lk)
	}
	w.kill()

	// Resume a watch after a revision: the events after it, no snapshot.
	w = grpcurlStart(t, "zkcoord.v1.RegistryService/WatchGroup",
		fmt.Sprintf(`{"group":%q,"start_revision":%d}`, group, dr.num("revision")), "-max-time", "15")
	ev = w.next()
	switch ev.str("type") {
	case "TYPE_JOINED": // php-1, then the two LEFT events
		if ev.str("member.id") != "php-1" {
			t.Fatalf("first resumed event = %v", ev)
		}
	case "TYPE_SNAPSHOT": // allowed when the history does not reach back
		if ev.get("resync") != true {
			t.Fatalf("resume snapshot without resync: %v", ev)
		}
	default:
		t.Fatalf("resumed watch began with %v", ev)
	}
	w.kill()
}

// TestGrpcurlInvalidArgument: a bad request is refused before it reaches
// ZooKeeper, with a BadRequest detail naming each bad field.
func TestGrpcurlInvalidArgument(t *testing.T) {
	r := grpcurlRun(t, []string{"-format-error", "-d", `{"group":"a/b","member_id":"..","value":"x"}`},
		"zkcoord.v1.RegistryService/Register")
	if r.code != 64+3 {
		t.Fatalf("Register(bad): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var st struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Type       string `json:"@type"`
			Violations []struct {
				Field, Description string
			} `json:"fieldViolations"`
		} `json:"details"`
	}
	if err := json.Unmarshal([]byte(r.stderr), &st); err != nil {
		t.Fatalf("-format-error output: %v\n%s", err, r.stderr)
	}
	var fields []string
	for _, d := range st.Details {
		if d.Type != "type.googleapis.com/google.rpc.BadRequest" {
			continue
		}
		for _, v := range d.Violations {
			if v.Description == "" {
				t.Fatalf("violation without description: %+v", st)
			}
			fields = append(fields, v.Field)
		}
	}
	slices.Sort(fields)
	if st.Code != 3 || !slices.Equal(fields, []string{"group", "lease_id", "member_id"}) {
		t.Fatalf("Register(bad) status = %+v, fields %v", st, fields)
	}

	// The default error format shows the same details.
	for _, c := range []struct{ method, data, field string }{
		{"zkcoord.v1.LeaseService/Grant", `{"ttl":"0.5s"}`, "ttl"},
		{"zkcoord.v1.LeaseService/KeepAlive", `{"lease_id":"not-a-lease"}`, "lease_id"},
		{"zkcoord.v1.RegistryService/Lookup", `{"group":".hidden"}`, "group"},
		{"zkcoord.v1.RegistryService/WatchGroup", `{"group":""}`, "group"},
		{"zkcoord.v1.ElectionService/Campaign", `{"election":"a b"}`, "election"},
		{"zkcoord.v1.BarrierService/AwaitBarrier", `{"barrier":"b","threshold":0}`, "threshold"},
		{"zkcoord.v1.BarrierService/AwaitGroup", `{"group":"g","min_members":-1}`, "min_members"},
		{"zkcoord.v1.RegistryService/Lookup", `{"group":"g","after_revision":"1","wait":"6m"}`, "wait"},
		{"zkcoord.v1.ElectionService/Leader", `{"election":"e","wait":"-1s"}`, "wait"},
		{"zkcoord.v1.BarrierService/GetBarrier", `{"barrier":"b","after_revision":"-1"}`, "after_revision"},
		{"zkcoord.v1.BarrierService/JoinBarrier", `{"barrier":"b","threshold":2}`, "lease_id"},
	} {
		stderr := gcFail(t, c.method, c.data, "InvalidArgument", 3)
		if !strings.Contains(stderr, "google.rpc.BadRequest") || !strings.Contains(stderr, fmt.Sprintf(`"field": %q`, c.field)) {
			t.Fatalf("%s %s: details lack field %q:\n%s", c.method, c.data, c.field, stderr)
		}
	}
}
