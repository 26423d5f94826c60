package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/testenv/httpc"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/server"
)

// TestHTTPHostileRequests sends malformed JSON, wrong content types,
// oversized bodies, unknown fields and query parameters, and path
// parameters with '/', '..', NUL and percent-encoded tricks to the HTTP
// face. Each is answered with a 4xx and a JSON error (a google.rpc.Status),
// and afterwards ZooKeeper holds exactly what it held before (read
// directly).
func TestHTTPHostileRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess, lay := zktest.Session(t)
	_, base := testenv.ServeBoth(t, sess, server.WithRoot(lay.Root))
	c := httpc.Client{Base: base}
	// A legitimate member, which nothing below may change.
	r, err := c.Do(ctx, "PUT", "/v1/groups/web/members/m", map[string]any{"value": "v", "ttl": "60s"})
	if err != nil || r.Status != 200 {
		t.Fatalf("register: %v %v", r, err)
	}
	lease := str(r.Body, "leaseId")
	defer c.Do(context.Background(), "DELETE", "/v1/leases/"+lease, nil)
	truth, _ := zktest.Session(t)
	before := tree(t, truth.Conn())

	type call struct {
		method, path, ctype string
		body                any
		status              int // 0: any 4xx
	}
	reg := func(body any) call {
		return call{"PUT", "/v1/groups/web/members/x", "application/json", body, http.StatusBadRequest}
	}
	calls := []call{
		reg(`{"value":`), reg(`{"value": "v", "ttl": "30s"`), reg(`[]`), reg(`"a string"`), reg(`{"value": 5, "ttl": "30s"}`),
		reg(`{"value": "v", "ttl": "forever"}`), reg(`{"value": "v", "ttl": "30s", "leaseID": "x"}`), // unknown field
		reg(`{"value": "v", "ttl": "30s", "persistent": "yes"}`), reg(`{"value": "v", "ttl": "30s", "metadata": [1]}`),
		reg("{\"value\": \"\xff\xfe\", \"ttl\": \"30s\"}"), reg(`{"value": "v", "ttl": "30s"}{"value": "w"}`),
		reg(`{"value": "v", "ttl": "-30s"}`), reg(`{"value": "v"}`), reg(`{"value": "v", "ttl": "30s", "leaseId": "../../x"}`),
		{"PUT", "/v1/groups/web/members/x", "text/plain", `{"value": "v", "ttl": "30s"}`, http.StatusUnsupportedMediaType},
		{"PUT", "/v1/groups/web/members/x", "application/xml", `<value>v</value>`, http.StatusUnsupportedMediaType},
		{"PUT", "/v1/groups/web/members/x", "", `{"value": "v", "ttl": "30s"}`, http.StatusUnsupportedMediaType},
		{"PUT", "/v1/groups/web/members/x", "application/json; charset=utf-16", `{"value": "v", "ttl": "30s"}`, 0},
		{"PUT", "/v1/groups/web/members/x", "application/json", `{"value": "` + strings.Repeat("a", 2<<20) + `", "ttl": "30s"}`, http.StatusRequestEntityTooLarge},
		{"PUT", "/v1/groups/web/members/x", "application/json", `{"value": "` + strings.Repeat("a", 65<<10) + `", "ttl": "30s"}`, http.StatusBadRequest},
		{"GET", "/v1/groups/web?consistency=SOMETIMES", "", nil, http.StatusBadRequest},
		{"GET", "/v1/groups/web?bogus=1", "", nil, http.StatusBadRequest},
		{"GET", "/v1/groups/web?memberId=a/b", "", nil, http.StatusBadRequest},
		{"DELETE", "/v1/groups/web/members/m?leaseId=" + strings.Repeat("0", 32), "", nil, http.StatusNotFound},
		{"POST", "/v1/leases", "application/json", `{"ttl": "1000000h"}`, http.StatusBadRequest},
		{"POST", "/v1/leases", "application/json", `{"ttl": 30}`, http.StatusBadRequest},
		{"PATCH", "/v1/leases", "application/json", `{"ttl": "30s"}`, 0},
		{"GET", "/v1/nothing", "", nil, http.StatusNotFound},
		{"POST", "/zkcoord.peer.v1.PeerService/Handoff", "application/json", `{"leaseId": "` + lease + `"}`, http.StatusNotFound},
	}
	// Path parameters: '/', '..', NUL, control characters and
	// percent-encoded tricks, in each kind of name.
	tricks := []string{"a%2Fb", "%2E%2E", "..", ".", "%2e", "a%00b", "%00", "a%0Ab", "%20", "a%20b", "%25", "%252F", "%C3%A9",
		"%FF", "a~b", "a%7Eb", strings.Repeat("a", 129), "a%2F..%2F..%2Fzookeeper", "zookeeper%2Fquota"}
	for _, n := range tricks {
		calls = append(calls,
			call{"PUT", "/v1/groups/" + n + "/members/x", "application/json", `{"value": "v", "ttl": "30s"}`, 0},
			call{"PUT", "/v1/groups/web/members/" + n, "application/json", `{"value": "v", "ttl": "30s"}`, 0},
			call{"GET", "/v1/groups/" + n, "", nil, 0},
			call{"POST", "/v1/leases/" + n + ":keepalive", "application/json", `{}`, 0},
			call{"GET", "/v1/elections/" + n + "/leader", "", nil, 0},
			call{"POST", "/v1/barriers/" + n + "/participants/p:leave", "application/json", `{"leaseId": "` + lease + `"}`, 0},
		)
	}
	checked := 0
	for _, k := range calls {
		r, err := c.DoType(ctx, k.method, k.path, k.ctype, k.body)
		if err != nil {
			t.Errorf("%s %s: %v", k.method, short(k.path), err)
			continue
		}
		checked++
		switch {
		case k.status != 0 && r.Status != k.status, r.Status < 400 || r.Status > 499:
			t.Errorf("%s %s (%s): %s; want %d (or any 4xx for 0)", k.method, short(k.path), k.ctype, short(r.String()), k.status)
		case r.Body == nil || r.Body["code"] == nil || r.Body["message"] == nil:
			t.Errorf("%s %s: the error is not a JSON status: %s", k.method, short(k.path), short(r.String()))
		}
	}
	// Raw requests a client library would not send: a NUL and a bare '..'
	// segment in the request line, and a header the size of a body.
	for _, line := range []string{"GET /v1/groups/a\x00b HTTP/1.1", "GET /v1/groups/../../leases HTTP/1.1", "GET /v1/groups/web HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 128<<10)} {
		status := rawStatus(t, base, line)
		checked++
		if status < 400 || status > 499 {
			t.Errorf("raw %q: status %d, want 4xx", short(line), status)
		}
	}
	after := tree(t, truth.Conn())
	if added, removed := diff(before, after); len(under(lay.Root, added)) > 0 || len(under(lay.Root, removed)) > 0 {
		t.Errorf("ZooKeeper's tree changed: added %v, removed %v", under(lay.Root, added), under(lay.Root, removed))
	}
	if r, err := c.Do(ctx, "GET", "/v1/groups/web/members/m?consistency=CONSISTENCY_LINEARIZABLE", nil); err != nil || r.Status != 200 {
		t.Errorf("the member after the hostile requests: %v %v", r, err)
	}
	t.Logf("%d hostile HTTP requests answered 4xx with a JSON status; ZooKeeper's tree (%d znodes) unchanged", checked, len(after))
}

func short(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// rawStatus sends one hand-written request and returns its status code.
func rawStatus(t *testing.T, base, line string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "%s\r\nHost: x\r\nConnection: close\r\n\r\n", line)
	var proto string
	var status int
	if _, err := fmt.Fscan(conn, &proto, &status); err != nil {
		t.Fatalf("raw %q: %v", short(line), err)
	}
	return status
}
