package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/zkcoord/zkcoord/internal/auth"
	"github.com/zkcoord/zkcoord/internal/registry"
)

// errPageToken: a Lookup's page_token was not issued by this gateway for
// this group and principal (forged, altered, or another call's).
var errPageToken = errors.New("page_token: not a next_page_token of this group's Lookup for this caller")

// errOtherIssuer: a page token signed by another gateway (another replica,
// or this one before a restart), which holds the token's revision; here
// it is as gone as an expired one.
var errOtherIssuer = fmt.Errorf("%w: page_token issued by another gateway replica or before a restart", registry.ErrRevisionGone)

// pageTokens issues and checks a Lookup's page tokens. A token is opaque
// (base64url) and signed: version, issuer, revision and the last member
// ID of the page, with an HMAC-SHA256 over them, the group and the
// caller's principal, under a key drawn when the gateway starts. A token
// is therefore good only for the group and the principal it was issued
// to: it can never widen what a caller reads (the group is checked by the
// auth interceptor, like any Lookup's), and a forged one reads nothing.
type pageTokens struct {
	key    [32]byte
	issuer [8]byte // names the key, so a token of another gateway is told apart
}

const (
	tokenVersion = 1
	macLen       = 16
)

func newPageTokens() *pageTokens {
	t := &pageTokens{}
	_, _ = rand.Read(t.key[:])
	_, _ = rand.Read(t.issuer[:])
	return t
}

// issue returns the token of the page after member after, at rev.
func (t *pageTokens) issue(ctx context.Context, group string, rev int64, after string) string {
	b := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(after)+macLen)
	b = append(b, tokenVersion)
	b = append(b, t.issuer[:]...)
	b = binary.AppendUvarint(b, uint64(rev))
	b = append(b, after...)
	b = append(b, t.mac(ctx, group, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// check returns the revision and last member ID of a token: errPageToken
// when it is malformed or its MAC is not this gateway's for this group
// and caller, errOtherIssuer when another gateway issued it.
func (t *pageTokens) check(ctx context.Context, group, token string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 1+8+1+macLen || b[0] != tokenVersion {
		return 0, "", errPageToken
	}
	body, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(sum, t.mac(ctx, group, body)) {
		if string(body[1:9]) != string(t.issuer[:]) {
			return 0, "", errOtherIssuer
		}
		return 0, "", errPageToken
	}
	rev, n := binary.Uvarint(body[9:])
	if n <= 0 || rev == 0 || rev > 1<<62 {
		return 0, "", errPageToken
	}
	return int64(rev), string(body[9+n:]), nil
}

// mac signs body for group and the caller of ctx.
func (t *pageTokens) mac(ctx context.Context, group string, body []byte) []byte {
	h := hmac.New(sha256.New, t.key[:])
	h.Write(body)
	principal := ""
	if p := auth.PrincipalFrom(ctx); p != nil {
		principal = p.Name
	}
	for _, s := range []string{group, principal} {
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	return h.Sum(nil)[:macLen]
}
