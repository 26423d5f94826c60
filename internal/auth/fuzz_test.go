package auth

import (
	"strings"
	"testing"
	"time"
)

// FuzzBearer feeds arbitrary bearer tokens to the JWT verifier (HMAC key)
// and the policy's token lookup: neither may panic, and the verifier may
// accept only tokens whose signature it checked, which a fuzzer cannot
// forge: any accepted token is a failure.
func FuzzBearer(f *testing.F) {
	for _, s := range []string{"", ".", "..", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.AAAA", strings.Repeat("a", 4096),
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5LCJ6a2Nvb3JkX3Njb3BlcyI6W3sicHJlZml4IjoiIiwicmlnaHRzIjpbImFkbWluIl19XX0.c2ln"} {
		f.Add(s)
	}
	v := &jwtVerifier{hmacKey: []byte(strings.Repeat("k", 32)), limits: DefaultLimits, now: time.Now}
	pol, err := ParsePolicy([]byte(`{"principals": [{"name": "a", "token": "0123456789abcdef", "scopes": [{"prefix": "", "rights": ["read"]}]}]}`), "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		if p, err := v.verify(token); err == nil {
			t.Fatalf("forged token accepted: %q -> %+v", token, p)
		}
		if _, ok := pol.byTokenLookup(token); ok && token != "0123456789abcdef" {
			t.Fatalf("token %q matched another's", token)
		}
	})
}

// FuzzPolicy parses arbitrary policy files: no panic, and a parsed policy
// has principals with names, scopes and rights.
func FuzzPolicy(f *testing.F) {
	for _, s := range []string{`{}`, `{"principals": []}`,
		`{"principals": [{"name": "a", "token": "0123456789abcdef", "scopes": [{"prefix": "app.", "rights": ["read", "register"]}], "limits": {"streams": -1}}]}`,
		`{"principals": [{"name": "a", "mtls_names": ["x"], "scopes": [{"prefix": "", "rights": ["admin"]}]}], "default_limits": {"leases": 3}}`,
		`{"jwt": {"hmac_secret_file": "/nonexistent"}}`, `[`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data, t.TempDir())
		if err != nil {
			return
		}
		for _, pr := range p.byToken {
			if pr.Name == "" || len(pr.Scopes) == 0 {
				t.Fatalf("principal without name or scopes: %+v", pr)
			}
			for _, s := range pr.Scopes {
				if s.Rights == 0 || strings.ContainsAny(s.Prefix, "/\x00") {
					t.Fatalf("bad scope accepted: %+v", s)
				}
			}
		}
	})
}
