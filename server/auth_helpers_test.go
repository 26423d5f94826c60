package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/server"
)

// The auth tests' harness: a policy with its principals and JWT secret, a
// gateway serving it, tokens, and the checks of refused calls.

const hmacSecret = "0123456789abcdef0123456789abcdef-test-secret"

// policyJSON is the test policy: principals by token, and JWTs signed with
// hmacSecret.
const policyJSON = `{
  "principals": [
    {"name": "web", "token": "web-token-0123456789",
     "scopes": [{"prefix": "app.", "rights": ["read", "register"]}]},
    {"name": "other", "token": "other-token-0123456789",
     "scopes": [{"prefix": "app.", "rights": ["read", "register"]}]},
    {"name": "reader", "token": "reader-token-0123456789",
     "scopes": [{"prefix": "", "rights": ["read"]}]},
    {"name": "leader", "token": "leader-token-0123456789",
     "scopes": [{"prefix": "jobs.", "rights": ["campaign", "lock"]}, {"prefix": "", "rights": ["barrier"]}]},
    {"name": "rival", "token": "rival-token-0123456789",
     "scopes": [{"prefix": "jobs.", "rights": ["campaign", "lock"]}, {"prefix": "", "rights": ["barrier"]}]},
    {"name": "ops", "token": "ops-token-0123456789",
     "scopes": [{"prefix": "", "rights": ["admin"]}]},
    {"name": "bench", "token": "bench-token-0123456789",
     "scopes": [{"prefix": "bench", "rights": ["read", "register"]}],
     "limits": {"requests_per_second": 1e9, "burst": 1000000000}},
    {"name": "limited", "token": "limited-token-0123456789",
     "scopes": [{"prefix": "lim.", "rights": ["read", "register"]}],
     "limits": {"streams": 2, "leases": 2, "watched_groups": 1}},
    {"name": "slow", "token": "slow-token-0123456789",
     "scopes": [{"prefix": "", "rights": ["read"]}],
     "limits": {"requests_per_second": 1, "burst": 2}}
  ],
  "jwt": {"hmac_secret_file": "jwt.secret", "issuer": "test-idp", "audience": "zkcoord"}
}`

// writePolicy writes the test policy (and its JWT secret) and returns its
// path.
func writePolicy(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(filepath.Join(dir, "jwt.secret"), []byte(hmacSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(policyPath, []byte(policyJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	return policyPath
}

// authServe serves a gateway with the test policy and returns its gRPC
// address, its HTTP face's base URL and the policy's path.
func authServe(t testing.TB, extra ...server.Option) (addr, httpURL, policyPath string) {
	t.Helper()
	policyPath = writePolicy(t)
	src, err := auth.LoadSource(policyPath, func(err error) { t.Logf("policy reload: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	sess, lay := zktest.Session(t)
	authRoots.Store(t, lay.Root)
	addr, httpURL = testenv.ServeBoth(t, sess, append([]server.Option{server.WithRoot(lay.Root),
		server.WithAuth(auth.Config{Source: src, Open: []string{auth.HealthService}})}, extra...)...)
	return addr, httpURL, policyPath
}

// authRoots are the roots of the gateways authServe served, by test: a
// test compares ZooKeeper's tree under its own gateway's root, where no
// other test's lease ends meanwhile.
var authRoots sync.Map // testing.TB → string

// authRoot is the root of the gateway authServe served for t.
func authRoot(t testing.TB) string {
	r, ok := authRoots.Load(t)
	if !ok {
		t.Fatal("no gateway served for this test")
	}
	return r.(string)
}

// authGateway serves a gateway with the test policy and returns a function
// that dials it with a bearer token ("" for none).
func authGateway(t testing.TB, extra ...server.Option) (dial func(token string) *grpc.ClientConn, policyPath string) {
	t.Helper()
	addr, _, policyPath := authServe(t, extra...)
	return func(token string) *grpc.ClientConn {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(auth.Bearer(token, false)))
		}
		cc, err := grpc.NewClient(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}, policyPath
}

// jwtToken signs claims with HS256 (or the given header's algorithm name,
// still with HMAC-SHA256, to test that the algorithm is checked).
func jwtToken(t *testing.T, alg string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": alg, "typ": "JWT"}) + "." + enc(claims)
	m := hmac.New(sha256.New, []byte(hmacSecret))
	m.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if status.Code(err) != want {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// wantExhausted checks a ResourceExhausted status with its RetryInfo and
// QuotaFailure details.
func wantExhausted(t *testing.T, what string, err error) time.Duration {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Errorf("%s: %v, want ResourceExhausted", what, err)
		return 0
	}
	var retry time.Duration
	var quota bool
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			retry = d.GetRetryDelay().AsDuration()
		case *errdetails.QuotaFailure:
			quota = len(d.GetViolations()) > 0
		}
	}
	if retry <= 0 || !quota {
		t.Errorf("%s: details %v: want a RetryInfo with a delay and a QuotaFailure", what, st.Details())
	}
	return retry
}

// recvErr opens a server stream and returns the error of its first Recv.
func recvErr[T any](s grpc.ServerStreamingClient[T], err error) error {
	if err != nil {
		return err
	}
	_, err = s.Recv()
	return err
}

func lookup(ctx context.Context, cc *grpc.ClientConn, group string) (*pb.LookupResponse, int, error) {
	r, err := pb.NewRegistryServiceClient(cc).Lookup(ctx, &pb.LookupRequest{Group: group})
	return r, len(r.GetMembers()), err
}
