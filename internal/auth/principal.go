// Package auth decides who may call the gateway and what they may touch.
//
// A caller is authenticated once per call, by the first of: a bearer token
// from the policy file, a JWT signed with the configured key, or the
// verified client certificate of a mutual-TLS connection. It becomes a
// Principal: a name, scopes (name prefixes with rights) and limits. Every
// request is then authorized against the name it touches (a group, an
// election or a barrier) and counted against the principal's limits.
//
// The policy file is JSON (see Policy) and is read again when it changes,
// so tokens are added and revoked without a restart.
package auth

import (
	"context"
	"fmt"
	"strings"
)

// Rights is a set of rights over names.
type Rights uint8

// The rights a scope grants.
const (
	// Read: Lookup, WatchGroup and AwaitGroup on groups; Leader and
	// Observe on elections; GetLock on locks; CheckSequencer on locks and
	// elections.
	Read Rights = 1 << iota
	// Register: Register and Deregister in groups.
	Register
	// Campaign: Campaign and Resign in elections.
	Campaign
	// Barrier: AwaitBarrier, JoinBarrier and LeaveBarrier.
	Barrier
	// Lock: acquiring and releasing locks and semaphores.
	Lock
	// Admin: every right on the scope's names; with the empty prefix also
	// GetStatus and the replicas' PeerService.
	Admin
)

var rightNames = []struct {
	r    Rights
	name string
}{{Read, "read"}, {Register, "register"}, {Campaign, "campaign"}, {Barrier, "barrier"}, {Lock, "lock"}, {Admin, "admin"}}

// ParseRights parses right names ("read", "register", "campaign",
// "barrier", "lock", "admin").
func ParseRights(names []string) (Rights, error) {
	var r Rights
next:
	for _, n := range names {
		for _, x := range rightNames {
			if x.name == n {
				r |= x.r
				continue next
			}
		}
		return 0, fmt.Errorf("unknown right %q (want read, register, campaign, barrier, lock or admin)", n)
	}
	if r == 0 {
		return 0, fmt.Errorf("a scope needs at least one right")
	}
	return r, nil
}

func (r Rights) String() string {
	var out []string
	for _, x := range rightNames {
		if r&x.r != 0 {
			out = append(out, x.name)
		}
	}
	return strings.Join(out, ",")
}

// Scope grants rights over the names that start with Prefix (every name
// when Prefix is empty). Groups, elections and barriers share the scheme:
// the right says which kind a call touches.
type Scope struct {
	Prefix string
	Rights Rights
}

// Principal is an authenticated caller.
type Principal struct {
	// Name identifies the caller in logs, errors and limits.
	Name   string
	Scopes []Scope
	Limits Limits
	// Via says how the caller authenticated: "token", "jwt" or "mtls".
	Via string
}

// Allows reports whether p holds right over name. An Admin scope holds
// every right over its names; an empty name (a call that touches no
// name, like GetStatus) needs the right with the empty prefix.
func (p *Principal) Allows(right Rights, name string) bool {
	for _, s := range p.Scopes {
		if s.Rights&(right|Admin) != 0 && strings.HasPrefix(name, s.Prefix) {
			return true
		}
	}
	return false
}

// MayHoldLeases reports whether p holds any right that uses a lease
// (register, campaign, barrier, lock or admin) over some name.
func (p *Principal) MayHoldLeases() bool {
	for _, s := range p.Scopes {
		if s.Rights&(Register|Campaign|Barrier|Lock|Admin) != 0 {
			return true
		}
	}
	return false
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of a call, nil when the call was not
// authenticated (auth is off, or the service is open).
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
