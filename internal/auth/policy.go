package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Policy is the parsed policy file:
//
//	{
//	  "principals": [{
//	    "name": "billing-web",
//	    "token_sha256": "<hex SHA-256 of the bearer token>",
//	    "mtls_names": ["billing-web.internal"],
//	    "scopes": [{"prefix": "billing.", "rights": ["read", "register"]}],
//	    "limits": {"streams": 100, "leases": 1000, "watched_groups": 20,
//	               "requests_per_second": 200, "burst": 400}
//	  }],
//	  "jwt": {"key_file": "jwt-signer.pub", "issuer": "https://idp",
//	          "audience": "zkcoord"},
//	  "default_limits": {"streams": 1000}
//	}
//
// A principal is reached by its token (token_sha256, or token in clear
// for development), by the names of a verified client certificate
// (subject common name, DNS, URI or email SANs), or both. A JWT principal
// takes its name from the sub claim and its scopes from the
// zkcoord_scopes claim; the jwt section's limits apply to it.
type Policy struct {
	byToken map[[sha256.Size]byte]*Principal
	byName  map[string]*Principal // certificate names
	jwt     *jwtVerifier
	// ModTime is the file's modification time when it was read.
	ModTime time.Time
}

// Limits bound what one principal may hold on one replica at a time. A
// zero field takes the default; a negative one is unlimited.
type Limits struct {
	Streams       int     `json:"streams,omitempty"`
	Leases        int     `json:"leases,omitempty"`
	WatchedGroups int     `json:"watched_groups,omitempty"`
	Rate          float64 `json:"requests_per_second,omitempty"`
	Burst         int     `json:"burst,omitempty"`
}

// DefaultLimits apply where neither the principal nor the policy's
// default_limits set a limit.
var DefaultLimits = Limits{Streams: 1000, Leases: 10000, WatchedGroups: 1000, Rate: 1000, Burst: 2000}

// or fills l's zero fields from d.
func (l Limits) or(d Limits) Limits {
	if l.Streams == 0 {
		l.Streams = d.Streams
	}
	if l.Leases == 0 {
		l.Leases = d.Leases
	}
	if l.WatchedGroups == 0 {
		l.WatchedGroups = d.WatchedGroups
	}
	if l.Rate == 0 {
		l.Rate = d.Rate
	}
	if l.Burst == 0 {
		l.Burst = d.Burst
	}
	return l
}

type fileScope struct {
	Prefix string   `json:"prefix"`
	Rights []string `json:"rights"`
}

type filePrincipal struct {
	Name        string      `json:"name"`
	Token       string      `json:"token,omitempty"`
	TokenSHA256 string      `json:"token_sha256,omitempty"`
	MTLSNames   []string    `json:"mtls_names,omitempty"`
	Scopes      []fileScope `json:"scopes"`
	Limits      Limits      `json:"limits"`
}

type fileJWT struct {
	KeyFile        string `json:"key_file,omitempty"`
	HMACSecretFile string `json:"hmac_secret_file,omitempty"`
	Issuer         string `json:"issuer,omitempty"`
	Audience       string `json:"audience,omitempty"`
	Limits         Limits `json:"limits"`
}

type file struct {
	Principals    []filePrincipal `json:"principals"`
	JWT           *fileJWT        `json:"jwt,omitempty"`
	DefaultLimits Limits          `json:"default_limits"`
}

// minTokenLen refuses tokens short enough to guess.
const minTokenLen = 16

// ParsePolicy parses a policy file's contents. Relative key files in the
// jwt section are read relative to dir.
func ParsePolicy(data []byte, dir string) (*Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("auth: policy: %w", err)
	}
	defaults := f.DefaultLimits.or(DefaultLimits)
	p := &Policy{byToken: map[[sha256.Size]byte]*Principal{}, byName: map[string]*Principal{}}
	names := map[string]bool{}
	for i, fp := range f.Principals {
		where := fmt.Sprintf("auth: policy: principals[%d] (%q)", i, fp.Name)
		if fp.Name == "" {
			return nil, fmt.Errorf("%s: a principal needs a name", where)
		}
		if names[fp.Name] {
			return nil, fmt.Errorf("%s: name used twice", where)
		}
		names[fp.Name] = true
		scopes, err := parseScopes(fp.Scopes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		pr := &Principal{Name: fp.Name, Scopes: scopes, Limits: fp.Limits.or(defaults)}
		switch {
		case fp.Token != "" && fp.TokenSHA256 != "":
			return nil, fmt.Errorf("%s: give token or token_sha256, not both", where)
		case fp.Token != "":
			if len(fp.Token) < minTokenLen {
				return nil, fmt.Errorf("%s: token shorter than %d characters", where, minTokenLen)
			}
			p.byToken[sha256.Sum256([]byte(fp.Token))] = via(pr, "token")
		case fp.TokenSHA256 != "":
			h, err := hex.DecodeString(fp.TokenSHA256)
			if err != nil || len(h) != sha256.Size {
				return nil, fmt.Errorf("%s: token_sha256 is not 64 hex digits", where)
			}
			var k [sha256.Size]byte
			copy(k[:], h)
			if _, dup := p.byToken[k]; dup {
				return nil, fmt.Errorf("%s: token shared with another principal", where)
			}
			p.byToken[k] = via(pr, "token")
		case len(fp.MTLSNames) == 0:
			return nil, fmt.Errorf("%s: give a token, a token_sha256 or mtls_names", where)
		}
		byCert := via(pr, "mtls")
		for _, n := range fp.MTLSNames {
			if n == "" {
				return nil, fmt.Errorf("%s: empty mtls_names entry", where)
			}
			if other, dup := p.byName[n]; dup {
				return nil, fmt.Errorf("%s: certificate name %q already maps to %q", where, n, other.Name)
			}
			p.byName[n] = byCert
		}
	}
	if f.JWT != nil {
		v, err := newJWTVerifier(*f.JWT, dir, f.JWT.Limits.or(defaults))
		if err != nil {
			return nil, fmt.Errorf("auth: policy: jwt: %w", err)
		}
		p.jwt = v
	}
	if len(p.byToken) == 0 && len(p.byName) == 0 && p.jwt == nil {
		return nil, errors.New("auth: policy: no principals and no jwt section: nobody could call")
	}
	return p, nil
}

// via returns a copy of p that says how it authenticated.
func via(p *Principal, how string) *Principal {
	c := *p
	c.Via = how
	return &c
}

func parseScopes(fs []fileScope) ([]Scope, error) {
	if len(fs) == 0 {
		return nil, errors.New("no scopes")
	}
	out := make([]Scope, 0, len(fs))
	for _, s := range fs {
		r, err := ParseRights(s.Rights)
		if err != nil {
			return nil, fmt.Errorf("scope %q: %w", s.Prefix, err)
		}
		if strings.ContainsAny(s.Prefix, "/\x00") {
			return nil, fmt.Errorf("scope %q: a prefix has no '/' or NUL", s.Prefix)
		}
		out = append(out, Scope{Prefix: s.Prefix, Rights: r})
	}
	return out, nil
}

// byTokenLookup finds the principal of a bearer token. The token's hash
// is the map key, so the lookup takes no time that depends on how much of
// a guess was right.
func (p *Policy) byTokenLookup(token string) (*Principal, bool) {
	pr, ok := p.byToken[sha256.Sum256([]byte(token))]
	return pr, ok
}

// Source is a policy file, read again when it changes (checked at most
// once a second). A file that no longer parses keeps the last good policy
// and the error is reported to onError.
type Source struct {
	path    string
	onError func(error)

	mu      sync.Mutex
	cur     *Policy
	seen    time.Time // modification time of the file last read, good or not
	checked time.Time
}

// LoadSource reads the policy file at path; it fails if the file does not
// parse.
func LoadSource(path string, onError func(error)) (*Source, error) {
	s := &Source{path: path, onError: onError}
	p, err := s.read()
	if err != nil {
		return nil, err
	}
	s.cur, s.seen, s.checked = p, p.ModTime, time.Now()
	return s, nil
}

func (s *Source) read() (*Policy, error) {
	st, err := os.Stat(s.path)
	if err != nil {
		return nil, fmt.Errorf("auth: policy: %w", err)
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("auth: policy: %w", err)
	}
	p, err := ParsePolicy(data, dirOf(s.path))
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, s.path)
	}
	p.ModTime = st.ModTime()
	return p, nil
}

// reloadEvery bounds how often the file is checked for changes.
const reloadEvery = time.Second

// Policy returns the current policy, reading the file again if it changed.
func (s *Source) Policy() *Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.checked) < reloadEvery {
		return s.cur
	}
	s.checked = time.Now()
	st, err := os.Stat(s.path)
	if err != nil || st.ModTime().Equal(s.seen) {
		return s.cur
	}
	s.seen = st.ModTime() // a bad file is reported once, not every second
	p, err := s.read()
	if err != nil {
		if s.onError != nil {
			s.onError(err)
		}
		return s.cur
	}
	s.cur = p
	return p
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return ""
}
