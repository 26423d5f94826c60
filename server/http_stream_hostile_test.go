package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/testenv/httpc"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/server"
)

// TestHTTPStreamHostileBodies sends bodies that are not a JSON object of
// the request's fields to the streams' REST paths (:acquire of locks and
// semaphores, :campaign, :await): each is answered with a 4xx and a JSON
// status, before any stream starts (a JSON null made the gateway panic:
// the client got no answer, and the log a stack trace), and ZooKeeper is
// left as it was.
func TestHTTPStreamHostileBodies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess, lay := zktest.Session(t)
	_, base := testenv.ServeBoth(t, sess, server.WithRoot(lay.Root))
	c := httpc.Client{Base: base}
	truth, _ := zktest.Session(t)
	before := tree(t, truth.Conn())
	paths := []string{"/v1/locks/l:acquire", "/v1/semaphores/s:acquire", "/v1/elections/e:campaign", "/v1/barriers/b:await"}
	bodies := []struct {
		body   string
		status int // 0: any 4xx
	}{
		{`null`, http.StatusBadRequest}, {` null `, http.StatusBadRequest}, {`[]`, http.StatusBadRequest},
		{`"a string"`, http.StatusBadRequest}, {`1`, http.StatusBadRequest}, {`true`, http.StatusBadRequest},
		{`{`, http.StatusBadRequest}, {`{} {}`, http.StatusBadRequest}, {`{}null`, http.StatusBadRequest},
		{`{"ttl": "10s", "bogus": 1}`, http.StatusBadRequest}, {`{"ttl": "10s", "lock": "other", "semaphore": "other", "election": "other", "barrier": "other"}`, 0},
		{`{"ttl": "forever"}`, http.StatusBadRequest}, {`{"ttl": 10}`, http.StatusBadRequest},
		{`{"ttl": "10s", "permits": 1e400, "mode": 1e400}`, http.StatusBadRequest},
		{`{"ttl": "10s", "leaseId": "../../x"}`, http.StatusBadRequest},
		{`{"ttl": "10s", "value": "` + strings.Repeat("a", 2<<20) + `"}`, http.StatusRequestEntityTooLarge},
	}
	checked := 0
	for _, p := range paths {
		for _, b := range bodies {
			cctx, stop := context.WithTimeout(ctx, 5*time.Second)
			r, err := c.DoType(cctx, "POST", p, "application/json", b.body)
			stop()
			what := fmt.Sprintf("POST %s %s", p, short(b.body))
			switch {
			case err != nil:
				t.Errorf("%s: no answer: %v", what, err)
			case b.status != 0 && r.Status != b.status, r.Status < 400 || r.Status > 499:
				t.Errorf("%s: %s; want %d (or any 4xx for 0)", what, short(r.String()), b.status)
			case r.Body == nil || r.Body["code"] == nil || r.Body["message"] == nil:
				t.Errorf("%s: the error is not a JSON status: %s", what, short(r.String()))
			default:
				checked++
			}
		}
	}
	// Under this gateway's root: other tests' leases may end meanwhile.
	if added, removed := diff(before, tree(t, truth.Conn())); len(under(lay.Root, added)) > 0 || len(under(lay.Root, removed)) > 0 {
		t.Errorf("ZooKeeper's tree changed: added %v, removed %v", under(lay.Root, added), under(lay.Root, removed))
	}
	t.Logf("%d hostile stream bodies answered 4xx with a JSON status", checked)
}

// TestHTTPChunkedBodyTooLarge: a body sent without a length (chunked) and
// larger than the gateway's limit gets 413 with RESOURCE_EXHAUSTED, as
// one that says its length does, on unary and stream paths alike (it got
// 503 UNAVAILABLE on unary paths, which clients retry, and 400 on stream
// paths); a chunked body within the limit is served as any other.
func TestHTTPChunkedBodyTooLarge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := testenv.HTTP(t)
	chunked := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		// A reader of unknown length: the request goes out chunked.
		req, err := http.NewRequestWithContext(ctx, method, base+path, struct{ io.Reader }{strings.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	big := `{"ttl": "10s", "value": "` + strings.Repeat("a", 2<<20) + `"}`
	lk := name(t)
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/locks/" + lk + ":tryAcquire"}, {"POST", "/v1/semaphores/" + lk + ":tryAcquire"},
		{"PUT", "/v1/groups/" + lk + "/members/m"}, {"POST", "/v1/locks/" + lk + ":acquire"},
		{"POST", "/v1/semaphores/" + lk + ":acquire"},
	} {
		if status, body := chunked(c.method, c.path, big); status != http.StatusRequestEntityTooLarge || body["code"] != float64(8) {
			t.Errorf("%s %s with a chunked body of 2 MiB: %d %v; want 413 with code 8 (RESOURCE_EXHAUSTED)", c.method, c.path, status, body)
		}
	}
	if status, body := chunked("POST", "/v1/locks/"+lk+":tryAcquire", `{"ttl": "10s"}`); status != http.StatusOK || body["acquired"] != true {
		t.Errorf("a chunked tryAcquire within the limit: %d %v", status, body)
	}
}

// under returns the paths at or below root.
func under(root string, paths []string) []string {
	var out []string
	for _, p := range paths {
		if p == root || strings.HasPrefix(p, root+"/") {
			out = append(out, p)
		}
	}
	return out
}
