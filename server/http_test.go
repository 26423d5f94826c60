package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/testenv/httpc"
)

// str reads a string field of a JSON object, "" when absent.
func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func obj(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

// TestHTTPUnaryRoutes calls every unary RPC of the public API on its REST
// path, as curl or PHP would, and checks the answers.
func TestHTTPUnaryRoutes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := httpc.Client{Base: testenv.HTTP(t)}
	must := func(what string, r httpc.Response, err error, status int) httpc.Response {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if r.Status != status {
			t.Fatalf("%s: %s, want HTTP %d", what, r, status)
		}
		return r
	}
	// One call registers a 50 ms process: a member with its own lease.
	r, err := c.Do(ctx, "PUT", "/v1/groups/http.web/members/w1", map[string]any{"value": "10.0.0.1:80", "ttl": "30s"})
	reg := must("register with a ttl", r, err, 200)
	lease := str(reg.Body, "leaseId")
	if len(lease) != 32 || str(obj(reg.Body, "member"), "value") != "10.0.0.1:80" || str(reg.Body, "leaseExpiresAt") == "" {
		t.Fatalf("register answer: %s", reg)
	}
	r, err = c.Do(ctx, "POST", "/v1/groups/http.web/members", map[string]any{"value": "10.0.0.2:80", "leaseId": lease})
	gen := must("register with a generated id", r, err, 200)
	genID := str(obj(gen.Body, "member"), "id")
	r, err = c.Do(ctx, "GET", "/v1/groups/http.web?consistency=CONSISTENCY_LINEARIZABLE", nil)
	if got := must("lookup", r, err, 200); len(got.Body["members"].([]any)) != 2 || str(got.Body, "revision") == "" {
		t.Fatalf("lookup: %s", got)
	}
	r, err = c.Do(ctx, "GET", "/v1/groups/http.web/members/w1", nil)
	if got := must("lookup one", r, err, 200); len(got.Body["members"].([]any)) != 1 {
		t.Fatalf("lookup one: %s", got)
	}
	r, err = c.Do(ctx, "GET", "/v1/groups/http.web/members/nobody", nil)
	if got := must("lookup an absent member", r, err, 404); got.Code() != 5 {
		t.Fatalf("lookup absent: %s", got)
	}
	r, err = c.Do(ctx, "POST", "/v1/leases/"+lease+":keepalive", map[string]any{})
	must("keepalive", r, err, 200)
	r, err = c.Do(ctx, "GET", "/v1/leases/"+lease, nil)
	if got := must("get lease", r, err, 200); len(got.Body["owned"].([]any)) != 2 {
		t.Fatalf("get lease: %s", got)
	}
	r, err = c.Do(ctx, "DELETE", "/v1/groups/http.web/members/"+genID+"?leaseId="+lease, nil)
	must("deregister", r, err, 200)
	r, err = c.Do(ctx, "POST", "/v1/groups/http.web/members/w1:deregister", map[string]any{"leaseId": lease})
	must("deregister (POST)", r, err, 200)
	r, err = c.Do(ctx, "DELETE", "/v1/leases/"+lease, nil)
	if got := must("revoke", r, err, 200); str(got.Body, "revision") == "" {
		t.Fatalf("revoke: %s", got)
	}
	r, err = c.Do(ctx, "POST", "/v1/leases/"+lease+":keepalive", map[string]any{})
	if got := must("keepalive after revoke", r, err, 404); got.Code() != 5 {
		t.Fatalf("keepalive after revoke: %s", got)
	}
	r, err = c.Do(ctx, "POST", "/v1/leases", map[string]any{"ttl": "10s"})
	lease = str(must("grant", r, err, 200).Body, "leaseId")
	defer c.Do(context.Background(), "DELETE", "/v1/leases/"+lease, nil)

	// Election: a campaign over Connect, its leader over REST, a resign.
	camp, err := c.Open(ctx, "zkcoord.v1.ElectionService/Campaign", map[string]any{"election": "http.cron", "value": "php-1", "leaseId": lease})
	if err != nil {
		t.Fatal(err)
	}
	defer camp.Close()
	if m, err := camp.Next(); err != nil || str(m, "status") != "STATUS_ELECTED" {
		t.Fatalf("campaign: %v, %v", m, err)
	}
	r, err = c.Do(ctx, "GET", "/v1/elections/http.cron/leader", nil)
	if got := must("leader", r, err, 200); str(obj(got.Body, "leader"), "value") != "php-1" {
		t.Fatalf("leader: %s", got)
	}
	r, err = c.Do(ctx, "POST", "/v1/elections/http.cron:resign", map[string]any{"leaseId": lease})
	if got := must("resign", r, err, 200); got.Body["wasLeader"] != true {
		t.Fatalf("resign: %s", got)
	}
	if m, err := camp.Next(); err != nil || str(m, "status") != "STATUS_RESIGNED" {
		t.Fatalf("campaign after resign: %v, %v", m, err)
	}
	// Barrier: a participant joins over Connect; leaving it over REST.
	bar, err := c.Open(ctx, "zkcoord.v1.BarrierService/AwaitBarrier", map[string]any{"barrier": "http.b", "threshold": 2, "participantId": "p1", "leaseId": lease})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := bar.Next(); err != nil || m["arrived"] != float64(1) {
		t.Fatalf("barrier: %v, %v", m, err)
	}
	r, err = c.Do(ctx, "POST", "/v1/barriers/http.b/participants/p1:leave", map[string]any{"leaseId": lease})
	must("leave barrier", r, err, 200) // while waiting (a participant that gives up is removed)
	bar.Close()
	// A participant that joins without a stream, and the barrier read.
	r, err = c.Do(ctx, "PUT", "/v1/barriers/http.j/participants/p1", map[string]any{"threshold": 1, "leaseId": lease})
	if got := must("join barrier", r, err, 200); got.Body["released"] != true || str(got.Body, "leaseId") != lease {
		t.Fatalf("join barrier: %s", got)
	}
	r, err = c.Do(ctx, "GET", "/v1/barriers/http.j?afterRevision=1&wait=10s", nil)
	if got := must("get barrier", r, err, 200); got.Body["released"] != true || got.Body["arrived"] != float64(1) {
		t.Fatalf("get barrier: %s", got)
	}
	r, err = c.Do(ctx, "GET", "/v1/status", nil)
	if got := must("status", r, err, 200); str(got.Body, "state") != "CONNECTION_STATE_CONNECTED" {
		t.Fatalf("status: %s", got)
	}
	r, err = c.Do(ctx, "GET", "/healthz", nil)
	must("healthz", r, err, 200)
	r, err = c.Do(ctx, "GET", "/v1/openapi.json", nil)
	if got := must("openapi", r, err, 200); obj(got.Body, "paths")["/v1/groups/{group}/members/{memberId}"] == nil {
		t.Fatalf("openapi paths: %v", obj(got.Body, "paths"))
	}
}

// TestHTTPWatchGroup follows a group over the Connect protocol: a
// snapshot, a JOINED, the three LEFTs of one revoked lease as one unit
// (more on all but the last), and a resume from a revision.
func TestHTTPWatchGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := httpc.Client{Base: testenv.HTTP(t)}
	w, err := c.Open(ctx, "zkcoord.v1.RegistryService/WatchGroup", map[string]any{"group": "http.watch"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if m, err := w.Next(); err != nil || str(m, "type") != "TYPE_SNAPSHOT" {
		t.Fatalf("first message: %v, %v", m, err)
	}
	g, err := c.Do(ctx, "POST", "/v1/leases", map[string]any{"ttl": "30s"})
	if err != nil || g.Status != 200 {
		t.Fatalf("grant: %v %v", g, err)
	}
	lease := str(g.Body, "leaseId")
	for _, id := range []string{"a", "b", "c"} {
		if r, err := c.Do(ctx, "PUT", "/v1/groups/http.watch/members/"+id, map[string]any{"value": id, "leaseId": lease}); err != nil || r.Status != 200 {
			t.Fatalf("register %s: %v %v", id, r, err)
		}
		if m, err := w.Next(); err != nil || str(m, "type") != "TYPE_JOINED" || str(obj(m, "member"), "id") != id {
			t.Fatalf("after registering %s: %v, %v", id, m, err)
		}
	}
	if r, err := c.Do(ctx, "DELETE", "/v1/leases/"+lease, nil); err != nil || r.Status != 200 {
		t.Fatalf("revoke: %v %v", r, err)
	}
	var rev string
	for i := range 3 {
		m, err := w.Next()
		if err != nil || str(m, "type") != "TYPE_LEFT" {
			t.Fatalf("LEFT %d: %v, %v", i, m, err)
		}
		if more := m["more"] == true; more != (i < 2) {
			t.Errorf("LEFT %d of one revision: more = %v", i, m["more"])
		}
		if rev != "" && str(m, "revision") != rev {
			t.Errorf("LEFT %d at revision %s, the others at %s", i, str(m, "revision"), rev)
		}
		rev = str(m, "revision")
	}
	w.Close()
	// Resuming from the last complete revision: no snapshot, the next change.
	r2, err := c.Open(ctx, "zkcoord.v1.RegistryService/WatchGroup", map[string]any{"group": "http.watch", "startRevision": rev})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if r, err := c.Do(ctx, "PUT", "/v1/groups/http.watch/members/d", map[string]any{"value": "d", "ttl": "30s"}); err != nil || r.Status != 200 {
		t.Fatalf("register d: %v %v", r, err)
	} else {
		defer c.Do(context.Background(), "DELETE", "/v1/leases/"+str(r.Body, "leaseId"), nil)
	}
	if m, err := r2.Next(); err != nil || str(m, "type") != "TYPE_JOINED" || str(obj(m, "member"), "id") != "d" {
		t.Fatalf("resumed watch: %v, %v", m, err)
	}
}

// TestHTTPStreamEndsOnDisconnect: a Connect stream whose client goes away
// ends on the gateway: its watcher is dropped (watched groups count on the
// gateway's status goes back), nothing leaks (testenv.Main checks
// goroutines at the end).
func TestHTTPStreamEndsOnDisconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := httpc.Client{Base: testenv.HTTP(t)}
	sctx, drop := context.WithCancel(ctx)
	s, err := c.Open(sctx, "zkcoord.v1.ElectionService/Observe", map[string]any{"election": "http.gone"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); err != nil {
		t.Fatal(err)
	}
	drop() // the client goes away mid-stream
	if _, err := s.Next(); err == nil || errors.Is(err, httpc.ErrEnd) {
		t.Fatalf("Next after the client dropped the stream: %v", err)
	}
	// The gateway notices: a fresh call still works, and the stream's
	// handler has returned by the time the package's leak check runs.
	r, err := c.Do(ctx, http.MethodGet, "/v1/elections/http.gone/leader", nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("leader after a dropped stream: %v %v", r, err)
	}
}

// TestHTTPNDJSONStreams: the server streams on REST paths, one JSON
// message per line: a watch that sees a change, a campaign elected and
// resigned, a refusal before the first line as a REST error, an error
// after it as a last {"error": ...} line.
func TestHTTPNDJSONStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := httpc.Client{Base: testenv.HTTP(t)}
	w, r, err := c.OpenLines(ctx, "GET", "/v1/groups/http.lines:watch", nil)
	if err != nil || w == nil {
		t.Fatalf("watch: %v %v", r, err)
	}
	defer w.Close()
	if m, err := w.Next(); err != nil || str(m, "type") != "TYPE_SNAPSHOT" {
		t.Fatalf("first line: %v, %v", m, err)
	}
	reg, err := c.Do(ctx, "PUT", "/v1/groups/http.lines/members/a", map[string]any{"value": "a", "ttl": "30s"})
	if err != nil || reg.Status != 200 {
		t.Fatalf("register: %v %v", reg, err)
	}
	lease := str(reg.Body, "leaseId")
	defer c.Do(context.Background(), "DELETE", "/v1/leases/"+lease, nil)
	if m, err := w.Next(); err != nil || str(m, "type") != "TYPE_JOINED" || str(obj(m, "member"), "value") != "a" {
		t.Fatalf("second line: %v, %v", m, err)
	}
	camp, r, err := c.OpenLines(ctx, "POST", "/v1/elections/http.lines:campaign", map[string]any{"value": "me", "leaseId": lease})
	if err != nil || camp == nil {
		t.Fatalf("campaign: %v %v", r, err)
	}
	defer camp.Close()
	if m, err := camp.Next(); err != nil || str(m, "status") != "STATUS_ELECTED" {
		t.Fatalf("campaign: %v, %v", m, err)
	}
	if r, err := c.Do(ctx, "POST", "/v1/elections/http.lines:resign", map[string]any{"leaseId": lease}); err != nil || r.Status != 200 {
		t.Fatalf("resign: %v %v", r, err)
	}
	if m, err := camp.Next(); err != nil || str(m, "status") != "STATUS_RESIGNED" {
		t.Fatalf("after resign: %v, %v", m, err)
	}
	// Refused before streaming: a REST error.
	if s, r, err := c.OpenLines(ctx, "GET", "/v1/groups/bad~name:watch", nil); err != nil || s != nil || r.Status != 400 || r.Code() != 3 {
		t.Fatalf("a bad group name: %v %v", r, err)
	}
	if s, r, err := c.OpenLines(ctx, "POST", "/v1/barriers/http.lines:await", map[string]any{"threshold": 2, "leaseId": strings.Repeat("0", 32)}); err != nil || s != nil || r.Status != 404 {
		t.Fatalf("an unknown lease: %v %v", r, err)
	}
	// An error after the first line: the barrier's threshold changes under
	// a participant that then leaves; its stream ends with an error line.
	b, r, err := c.OpenLines(ctx, "POST", "/v1/barriers/http.lines:await", map[string]any{"threshold": 3, "participantId": "p", "leaseId": lease})
	if err != nil || b == nil {
		t.Fatalf("await barrier: %v %v", r, err)
	}
	defer b.Close()
	if m, err := b.Next(); err != nil || m["arrived"] != float64(1) {
		t.Fatalf("barrier: %v, %v", m, err)
	}
	if r, err := c.Do(ctx, "POST", "/v1/barriers/http.lines/participants/p:leave", map[string]any{"leaseId": lease}); err != nil || r.Status != 200 {
		t.Fatalf("leave: %v %v", r, err)
	}
	m, err := b.Next()
	if e := obj(m, "error"); err != nil || e == nil || e["code"] != float64(5) {
		t.Fatalf("the barrier stream after its participant left: %v, %v; want an error line with NOT_FOUND", m, err)
	}
}
