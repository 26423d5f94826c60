package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	peerpb "github.com/zkcoord/zkcoord/gen/zkcoord/peer/v1"
	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// TestEveryMethodHasARule: a method without a rule would be refused to
// everyone; a new RPC must say what it needs.
func TestEveryMethodHasARule(t *testing.T) {
	// Every file of zkcoord's packages that the binary links (the generated
	// packages register themselves), so a new proto file needs no edit here.
	_, _ = pb.File_zkcoord_v1_status_proto, peerpb.File_zkcoord_peer_v1_peer_proto
	var files []protoreflect.FileDescriptor
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if p := f.Package(); p == "zkcoord.v1" || p == "zkcoord.peer.v1" {
			files = append(files, f)
		}
		return true
	})
	n := 0
	for _, f := range files {
		for i := 0; i < f.Services().Len(); i++ {
			svc := f.Services().Get(i)
			for j := 0; j < svc.Methods().Len(); j++ {
				m := "/" + string(svc.FullName()) + "/" + string(svc.Methods().Get(j).Name())
				if !HasRule(m) {
					t.Errorf("%s has no authorization rule", m)
				}
				n++
			}
		}
	}
	if n != len(rules) {
		t.Errorf("%d methods, %d rules: a rule names a method that does not exist", n, len(rules))
	}
}

func TestParsePolicyErrors(t *testing.T) {
	for _, tc := range []struct{ policy, want string }{
		{`{"principals": []}`, "no principals"},
		{`{"principals": [{"name": "a", "token": "short", "scopes": [{"prefix": "", "rights": ["read"]}]}]}`, "shorter than 16"},
		{`{"principals": [{"name": "a", "token_sha256": "abc", "scopes": [{"prefix": "", "rights": ["read"]}]}]}`, "64 hex digits"},
		{`{"principals": [{"name": "a", "token": "0123456789abcdef", "scopes": [{"prefix": "", "rights": ["root"]}]}]}`, `unknown right "root"`},
		{`{"principals": [{"name": "a", "token": "0123456789abcdef", "scopes": [{"prefix": "", "rights": []}]}]}`, "at least one right"},
		{`{"principals": [{"name": "a", "token": "0123456789abcdef", "scopes": []}]}`, "no scopes"},
		{`{"principals": [{"name": "a", "token": "0123456789abcdef", "scopes": [{"prefix": "a/b", "rights": ["read"]}]}]}`, "no '/'"},
		{`{"principals": [{"name": "a", "scopes": [{"prefix": "", "rights": ["read"]}]}]}`, "give a token"},
		{`{"principals": [{"token": "0123456789abcdef", "scopes": [{"prefix": "", "rights": ["read"]}]}]}`, "needs a name"},
		{`{"principals": [{"name": "a", "token": "0123456789abcdef", "scopes": [{"prefix": "", "rights": ["read"]}]},
		  {"name": "a", "token": "0123456789abcdeg", "scopes": [{"prefix": "", "rights": ["read"]}]}]}`, "name used twice"},
		{`{"principals": [{"name": "a", "mtls_names": ["x"], "scopes": [{"prefix": "", "rights": ["read"]}]},
		  {"name": "b", "mtls_names": ["x"], "scopes": [{"prefix": "", "rights": ["read"]}]}]}`, `"x" already maps to "a"`},
		{`{"principals": [], "typo": 1}`, "unknown field"},
		{`{"jwt": {"hmac_secret_file": "nope"}}`, "nope"},
		{`{"jwt": {}}`, "needs key_file"},
	} {
		_, err := ParsePolicy([]byte(tc.policy), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.policy, err, tc.want)
		}
	}
}

func TestTokenHashAndScopes(t *testing.T) {
	sum := sha256.Sum256([]byte("a-long-enough-token"))
	p, err := ParsePolicy([]byte(`{"principals": [{"name": "a", "token_sha256": "`+hex.EncodeToString(sum[:])+`",
		"scopes": [{"prefix": "app.", "rights": ["register"]}, {"prefix": "", "rights": ["read"]}],
		"limits": {"streams": -1}}], "default_limits": {"leases": 7}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	pr, ok := p.byTokenLookup("a-long-enough-token")
	if !ok {
		t.Fatal("token not found by its hash")
	}
	if _, ok := p.byTokenLookup("a-long-enough-tokem"); ok {
		t.Fatal("a wrong token found")
	}
	for _, c := range []struct {
		r    Rights
		name string
		want bool
	}{{Register, "app.web", true}, {Register, "billing", false}, {Read, "billing", true}, {Campaign, "app.x", false},
		{Admin, "", false}, {Register, "app", false}} {
		if got := pr.Allows(c.r, c.name); got != c.want {
			t.Errorf("Allows(%v, %q) = %v, want %v", c.r, c.name, got, c.want)
		}
	}
	if pr.Limits.Streams != -1 || pr.Limits.Leases != 7 || pr.Limits.Rate != DefaultLimits.Rate {
		t.Errorf("limits %+v: want streams -1 (set), leases 7 (policy default), rate %v (built-in default)", pr.Limits, DefaultLimits.Rate)
	}
	admin := &Principal{Scopes: []Scope{{Prefix: "ops.", Rights: Admin}}}
	if !admin.Allows(Campaign, "ops.x") || admin.Allows(Campaign, "app.x") || admin.Allows(Admin, "") {
		t.Error("an admin scope grants every right over its names only")
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter()
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	p := &Principal{Name: "p", Limits: Limits{Rate: 2, Burst: 2, Streams: 1, WatchedGroups: 1}}
	for i := range 2 {
		if err := l.Allow(p); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	if err := l.Allow(p); err == nil || !strings.Contains(err.Error(), "retry in 500ms") {
		t.Fatalf("third call: %v, want a refusal to retry in 500ms", err)
	}
	now = now.Add(500 * time.Millisecond)
	if err := l.Allow(p); err != nil {
		t.Fatalf("after refill: %v", err)
	}
	end, err := l.OpenStream(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.OpenStream(p); err == nil {
		t.Fatal("second stream allowed at a limit of 1")
	}
	end()
	end() // idempotent
	if end, err = l.OpenStream(p); err != nil {
		t.Fatalf("stream after one ended: %v", err)
	}
	end()
	unwatch, err := l.WatchGroup(p, "a")
	if err != nil {
		t.Fatal(err)
	}
	again, err := l.WatchGroup(p, "a")
	if err != nil {
		t.Fatalf("the same group again: %v", err)
	}
	if _, err := l.WatchGroup(p, "b"); err == nil {
		t.Fatal("second group allowed at a limit of 1")
	}
	unwatch()
	again()
	now = now.Add(time.Hour)
	if _, err := l.WatchGroup(p, "b"); err != nil {
		t.Fatalf("another group once the first is unwatched: %v", err)
	}
	unlimited := &Principal{Name: "u", Limits: Limits{Rate: -1, Streams: -1, WatchedGroups: -1}}
	for range 100 {
		if err := l.Allow(unlimited); err != nil {
			t.Fatal(err)
		}
	}
	// Each refusal above is counted under its limit, for the metrics.
	if got, want := l.Refusals(), (Refusals{Requests: 1, Streams: 1, WatchedGroups: 1}); got != want {
		t.Errorf("refusals %+v, want %+v", got, want)
	}
}

// TestJWTKeyTypes: RS256, PS256, ES256 and EdDSA tokens verify against
// their public keys, and an algorithm the key type does not allow is
// refused (an HS256 token "signed" with the public key bytes, the classic
// confusion attack, among them).
func TestJWTKeyTypes(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	claims := map[string]any{"sub": "s", "exp": time.Now().Add(time.Hour).Unix(),
		"zkcoord_scopes": []map[string]any{{"prefix": "", "rights": []string{"read"}}}}
	for _, tc := range []struct {
		alg  string
		pub  crypto.PublicKey
		sign func(signed []byte) []byte
	}{
		{"RS256", &rsaKey.PublicKey, func(b []byte) []byte {
			h := sha256.Sum256(b)
			s, _ := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, h[:])
			return s
		}},
		{"PS256", &rsaKey.PublicKey, func(b []byte) []byte {
			h := sha256.Sum256(b)
			s, _ := rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA256, h[:], nil)
			return s
		}},
		{"ES256", &ecKey.PublicKey, func(b []byte) []byte {
			h := sha256.Sum256(b)
			r, s, _ := ecdsa.Sign(rand.Reader, ecKey, h[:])
			out := make([]byte, 64)
			r.FillBytes(out[:32])
			s.FillBytes(out[32:])
			return out
		}},
		{"EdDSA", edKey.Public(), func(b []byte) []byte { return ed25519.Sign(edKey, b) }},
	} {
		der, err := x509.MarshalPKIXPublicKey(tc.pub)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if err := os.WriteFile(filepath.Join(dir, "key.pem"), pubPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		v, err := newJWTVerifier(fileJWT{KeyFile: "key.pem"}, dir, DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		tok := compact(tc.alg, claims, tc.sign)
		if p, err := v.verify(tok); err != nil || p.Name != "jwt:s" {
			t.Errorf("%s: %v, %v", tc.alg, p, err)
		}
		if _, err := v.verify(tok[:len(tok)-4] + "AAAA"); err == nil {
			t.Errorf("%s: a bad signature verified", tc.alg)
		}
		confused := compact("HS256", claims, func(b []byte) []byte {
			h := sha256.Sum256(append(pubPEM, b...))
			return h[:]
		})
		if _, err := v.verify(confused); err == nil || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("%s key: HS256 token: %v, want refused", tc.alg, err)
		}
	}
}

func compact(alg string, claims map[string]any, sign func([]byte) []byte) string {
	h, _ := json.Marshal(map[string]string{"alg": alg})
	c, _ := json.Marshal(claims)
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return signed + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(signed)))
}
