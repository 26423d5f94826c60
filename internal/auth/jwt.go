package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// jwtVerifier checks compact JWS tokens (JWTs) signed with one configured
// key. The algorithm must be one the key's type allows, so a token cannot
// choose a weaker check ("none", or HMAC keyed with a public key).
type jwtVerifier struct {
	hmacKey  []byte
	pub      crypto.PublicKey
	issuer   string
	audience string
	limits   Limits
	now      func() time.Time
}

// jwtLeeway tolerates clock skew between the token's issuer and us.
const jwtLeeway = 30 * time.Second

func newJWTVerifier(f fileJWT, dir string, limits Limits) (*jwtVerifier, error) {
	v := &jwtVerifier{issuer: f.Issuer, audience: f.Audience, limits: limits, now: time.Now}
	rel := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	switch {
	case f.KeyFile != "" && f.HMACSecretFile != "":
		return nil, errors.New("give key_file or hmac_secret_file, not both")
	case f.HMACSecretFile != "":
		b, err := os.ReadFile(rel(f.HMACSecretFile))
		if err != nil {
			return nil, err
		}
		v.hmacKey = []byte(strings.TrimSpace(string(b)))
		if len(v.hmacKey) < 32 {
			return nil, errors.New("hmac secret shorter than 32 bytes")
		}
	case f.KeyFile != "":
		b, err := os.ReadFile(rel(f.KeyFile))
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM block", f.KeyFile)
		}
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.KeyFile, err)
		}
		switch pub.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			return nil, fmt.Errorf("%s: unsupported key type %T", f.KeyFile, pub)
		}
		v.pub = pub
	default:
		return nil, errors.New("needs key_file (RSA, ECDSA or Ed25519 public key, PEM) or hmac_secret_file")
	}
	return v, nil
}

type jwtHeader struct {
	Alg string `json:"alg"`
}

type jwtClaims struct {
	Sub    string          `json:"sub"`
	Iss    string          `json:"iss"`
	Aud    json.RawMessage `json:"aud"`
	Exp    *float64        `json:"exp"`
	Nbf    *float64        `json:"nbf"`
	Scopes []fileScope     `json:"zkcoord_scopes"`
}

var errJWT = errors.New("invalid token")

// verify checks token's signature and claims and returns its principal.
func (v *jwtVerifier) verify(token string) (*Principal, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not a JWT", errJWT)
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", errJWT, err)
	}
	var h jwtHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", errJWT, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", errJWT, err)
	}
	if err := v.checkSignature(h.Alg, []byte(parts[0]+"."+parts[1]), sig); err != nil {
		return nil, fmt.Errorf("%w: %v", errJWT, err)
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %v", errJWT, err)
	}
	var c jwtClaims
	if err := json.Unmarshal(cb, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", errJWT, err)
	}
	now := v.now()
	switch {
	case c.Sub == "":
		return nil, fmt.Errorf("%w: no sub claim", errJWT)
	case c.Exp == nil:
		return nil, fmt.Errorf("%w: no exp claim", errJWT)
	case now.After(unix(*c.Exp).Add(jwtLeeway)):
		return nil, fmt.Errorf("%w: expired at %s", errJWT, unix(*c.Exp).UTC().Format(time.RFC3339))
	case c.Nbf != nil && now.Add(jwtLeeway).Before(unix(*c.Nbf)):
		return nil, fmt.Errorf("%w: not valid before %s", errJWT, unix(*c.Nbf).UTC().Format(time.RFC3339))
	case v.issuer != "" && c.Iss != v.issuer:
		return nil, fmt.Errorf("%w: issuer %q, want %q", errJWT, c.Iss, v.issuer)
	case v.audience != "" && !hasAudience(c.Aud, v.audience):
		return nil, fmt.Errorf("%w: audience is not %q", errJWT, v.audience)
	}
	scopes, err := parseScopes(c.Scopes)
	if err != nil {
		return nil, fmt.Errorf("%w: zkcoord_scopes: %v", errJWT, err)
	}
	return &Principal{Name: "jwt:" + c.Sub, Scopes: scopes, Limits: v.limits, Via: "jwt"}, nil
}

func unix(f float64) time.Time { return time.Unix(int64(f), 0) }

func hasAudience(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, a := range many {
			if a == want {
				return true
			}
		}
	}
	return false
}

func (v *jwtVerifier) checkSignature(alg string, signed, sig []byte) error {
	hashOf := func(newHash func() hash.Hash) []byte {
		h := newHash()
		h.Write(signed)
		return h.Sum(nil)
	}
	if v.hmacKey != nil {
		var newHash func() hash.Hash
		switch alg {
		case "HS256":
			newHash = sha256.New
		case "HS384":
			newHash = sha512.New384
		case "HS512":
			newHash = sha512.New
		default:
			return fmt.Errorf("algorithm %q not allowed with an HMAC key", alg)
		}
		m := hmac.New(newHash, v.hmacKey)
		m.Write(signed)
		if !hmac.Equal(m.Sum(nil), sig) {
			return errors.New("bad signature")
		}
		return nil
	}
	switch k := v.pub.(type) {
	case *rsa.PublicKey:
		var h crypto.Hash
		var newHash func() hash.Hash
		switch alg {
		case "RS256", "PS256":
			h, newHash = crypto.SHA256, sha256.New
		case "RS384", "PS384":
			h, newHash = crypto.SHA384, sha512.New384
		case "RS512", "PS512":
			h, newHash = crypto.SHA512, sha512.New
		default:
			return fmt.Errorf("algorithm %q not allowed with an RSA key", alg)
		}
		if strings.HasPrefix(alg, "PS") {
			return rsa.VerifyPSS(k, h, hashOf(newHash), sig, nil)
		}
		return rsa.VerifyPKCS1v15(k, h, hashOf(newHash), sig)
	case *ecdsa.PublicKey:
		var newHash func() hash.Hash
		switch {
		case alg == "ES256" && k.Curve.Params().BitSize == 256:
			newHash = sha256.New
		case alg == "ES384" && k.Curve.Params().BitSize == 384:
			newHash = sha512.New384
		case alg == "ES512" && k.Curve.Params().BitSize == 521:
			newHash = sha512.New
		default:
			return fmt.Errorf("algorithm %q not allowed with this ECDSA key", alg)
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return errors.New("bad signature length")
		}
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		if !ecdsa.Verify(k, hashOf(newHash), r, s) {
			return errors.New("bad signature")
		}
		return nil
	case ed25519.PublicKey:
		if alg != "EdDSA" {
			return fmt.Errorf("algorithm %q not allowed with an Ed25519 key", alg)
		}
		if !ed25519.Verify(k, signed, sig) {
			return errors.New("bad signature")
		}
		return nil
	}
	return errors.New("no key")
}
