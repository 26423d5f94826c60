package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/zkcoord/zkcoord/internal/testing/testenv/httpc"
	"github.com/zkcoord/zkcoord/server"
)

// syncBuffer is a log sink the gateway's goroutines may write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// detail returns the first error detail of the given type, or nil.
func detail(r httpc.Response, typ string) map[string]any {
	ds, _ := r.Body["details"].([]any)
	for _, d := range ds {
		if m, ok := d.(map[string]any); ok && m["@type"] == "type.googleapis.com/"+typ {
			return m
		}
	}
	return nil
}

// TestHTTPAppliesInterceptors: an HTTP request is a gRPC call to the same
// server, so every interceptor applies unchanged: authentication (bearer
// tokens in Authorization), authorization by scope, lease authority,
// limits (with RetryInfo and QuotaFailure), validation (BadRequest), the
// error table (each code with its HTTP status) and logging (the call, its
// code and the HTTP client's address are logged).
func TestHTTPAppliesInterceptors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logs := &syncBuffer{}
	_, base, _ := authServe(t, server.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	as := func(token string) httpc.Client { return httpc.Client{Base: base, Token: token} }
	web, other, reader := as("web-token-0123456789"), as("other-token-0123456789"), as("reader-token-0123456789")
	expect := func(what string, r httpc.Response, err error, status int, code codes.Code) httpc.Response {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if r.Status != status || r.Code() != int(code) {
			t.Errorf("%s: %s; want HTTP %d, code %d", what, r, status, code)
		}
		return r
	}

	// Authentication.
	r, err := as("").Do(ctx, "GET", "/v1/groups/app.web", nil)
	expect("no token", r, err, http.StatusUnauthorized, codes.Unauthenticated)
	r, err = as("guessed-token-0123456789").Do(ctx, "GET", "/v1/groups/app.web", nil)
	expect("unknown token", r, err, http.StatusUnauthorized, codes.Unauthenticated)
	r, err = as("").Do(ctx, "GET", "/healthz", nil)
	if err != nil || r.Status != 200 {
		t.Errorf("healthz without a token: %v %v", r, err)
	}
	// Authorization by scope.
	r, err = reader.Do(ctx, "GET", "/v1/groups/app.web", nil)
	expect("reader reads", r, err, http.StatusOK, codes.OK)
	r, err = reader.Do(ctx, "POST", "/v1/leases", map[string]any{"ttl": "30s"})
	expect("reader grants a lease", r, err, http.StatusForbidden, codes.PermissionDenied)
	r, err = web.Do(ctx, "PUT", "/v1/groups/billing/members/m", map[string]any{"value": "v", "ttl": "30s"})
	expect("web registers outside its scope", r, err, http.StatusForbidden, codes.PermissionDenied)
	r, err = web.Do(ctx, "GET", "/v1/status", nil)
	expect("web asks for status", r, err, http.StatusForbidden, codes.PermissionDenied)
	// Lease authority: web's lease is web's.
	r, err = web.Do(ctx, "PUT", "/v1/groups/app.web/members/m1", map[string]any{"value": "v", "ttl": "30s"})
	lease := str(expect("web registers", r, err, http.StatusOK, codes.OK).Body, "leaseId")
	r, err = other.Do(ctx, "POST", "/v1/leases/"+lease+":keepalive", map[string]any{})
	expect("other keeps web's lease alive", r, err, http.StatusForbidden, codes.PermissionDenied)
	r, err = other.Do(ctx, "DELETE", "/v1/groups/app.web/members/m1?leaseId="+lease, nil)
	expect("other deregisters web's member with web's lease", r, err, http.StatusForbidden, codes.PermissionDenied)
	// Validation, with the fields named.
	r, err = web.Do(ctx, "PUT", "/v1/groups/app.web/members/bad~id", map[string]any{"value": "v", "ttl": "0s"})
	r = expect("bad member id and ttl", r, err, http.StatusBadRequest, codes.InvalidArgument)
	if br := detail(r, "google.rpc.BadRequest"); br == nil || !strings.Contains(r.String(), `"member_id"`) || !strings.Contains(r.String(), `"ttl"`) {
		t.Errorf("bad request details: %s", r)
	}
	// The error table.
	r, err = web.Do(ctx, "PUT", "/v1/groups/app.web/members/m1", map[string]any{"value": "v", "persistent": true})
	expect("a leased member registered persistent", r, err, http.StatusConflict, codes.AlreadyExists)
	r, err = web.Do(ctx, "POST", "/v1/leases/"+strings.Repeat("0", 32)+":keepalive", map[string]any{})
	expect("an unknown lease", r, err, http.StatusNotFound, codes.NotFound)
	// Limits: the rate (RetryInfo) and the leases (QuotaFailure).
	slow := as("slow-token-0123456789")
	for range 2 {
		_, _ = slow.Do(ctx, "GET", "/v1/groups/x", nil)
	}
	r, err = slow.Do(ctx, "GET", "/v1/groups/x", nil)
	r = expect("a third call within a second", r, err, http.StatusTooManyRequests, codes.ResourceExhausted)
	if detail(r, "google.rpc.RetryInfo") == nil || detail(r, "google.rpc.QuotaFailure") == nil {
		t.Errorf("rate limit details: %s", r)
	}
	lim := as("limited-token-0123456789")
	for i := range 3 {
		r, err = lim.Do(ctx, "POST", "/v1/leases", map[string]any{"ttl": "30s"})
		if i < 2 {
			expect("a lease within the limit", r, err, http.StatusOK, codes.OK)
		}
	}
	expect("a third lease", r, err, http.StatusTooManyRequests, codes.ResourceExhausted)
	// Logging: each call, its code, and the HTTP client as the peer.
	log := logs.String()
	for _, want := range []string{"grpc.method=KeepAlive", "grpc.code=PermissionDenied", "grpc.method=Register", "peer.address=127.0.0.1:"} {
		if !strings.Contains(log, want) {
			t.Errorf("the gateway's log lacks %q", want)
		}
	}
}
