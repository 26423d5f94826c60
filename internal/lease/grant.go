package lease

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// record is the lease record's JSON.
type record struct {
	TTLMillis int64     `json:"ttl_ms"`
	Granted   time.Time `json:"granted"`
	// Owner is the replica that owns the lease; "" while handed off.
	Owner string `json:"owner,omitempty"`
	// Holder is the principal the lease was granted to ("" without auth).
	Holder string `json:"holder,omitempty"`
	// Expires bounds every expiry a replica may have told a client: while
	// the lease is owned, its horizon (the owner moves it, with a write,
	// before it acknowledges a renewal beyond it); once handed off, the
	// lease's exact expiry. An adopter never ends the lease before it.
	// Records written before zkcoord kept a horizon have none.
	Expires time.Time `json:"expires,omitzero"`
}

func (r record) ttl() time.Duration { return time.Duration(r.TTLMillis) * time.Millisecond }

// Grant creates a lease with the given TTL, owned by this replica.
func (m *Manager) Grant(ctx context.Context, ttl time.Duration) (Lease, error) {
	return m.GrantFor(ctx, ttl, "", -1)
}

// GrantFor creates a lease for holder, who may hold at most limit leases
// on this replica (granted here or adopted; limit < 0: any number). A
// holder at its limit gets a *LimitError. The lease's record gets a
// horizon of one horizon past its first expiry.
func (m *Manager) GrantFor(ctx context.Context, ttl time.Duration, holder string, limit int) (Lease, error) {
	return settle(m, ctx, func(ctx context.Context) (Lease, error) { return m.grant(ctx, ttl, holder, limit) })
}

func (m *Manager) grant(ctx context.Context, ttl time.Duration, holder string, limit int) (Lease, error) {
	m.gate.RLock()
	defer m.gate.RUnlock()
	if err := m.accepting(); err != nil {
		return Lease{}, err
	}
	if err := m.reserve(holder, limit); err != nil {
		return Lease{}, err
	}
	defer m.unreserve(holder)
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Lease{}, err
	}
	id := hex.EncodeToString(b[:])
	key := KeyOf(id)
	now := time.Now()
	rec := record{TTLMillis: ttl.Milliseconds(), Granted: now.UTC(), Owner: m.opts.replica, Holder: holder,
		Expires: now.Add(ttl + m.horizon()).UTC()}
	data, _ := json.Marshal(rec)
	if _, err := m.sess.Multi(ctx,
		&zk.CreateRequest{Path: m.lay.Lease(key), Data: data, Acl: m.sess.ACL()},
		&zk.CreateRequest{Path: m.lay.Owner(key), Data: []byte(m.opts.replica), Acl: m.sess.ACL(), Flags: zk.FlagEphemeral},
	); err != nil {
		if zkx.Unknown(err) {
			// The grant may have committed before the connection broke:
			// remove it in the background, as no client will ever use it.
			e := &entry{key: key, recVer: 0, op: newOpLock()}
			m.background(func(bg context.Context) {
				if e.op.lock(bg) == nil {
					defer e.op.unlock()
					_ = zkx.Retry(bg, func() error { return m.releaseOnce(bg, e) })
				}
			})
		}
		return Lease{}, fmt.Errorf("lease: grant: %w", err)
	}
	e := &entry{id: id, key: key, ttl: ttl, holder: holder, rec: rec, recVer: 0, op: newOpLock(), refs: map[string]struct{}{}}
	l, err := m.track(e, time.Now().Add(ttl), rec.Expires)
	if err == nil {
		m.counters.granted.Add(1)
	}
	return l, err
}

// reserve counts a grant in flight for holder, or refuses it at the limit.
func (m *Manager) reserve(holder string, limit int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if limit >= 0 && m.held[holder]+m.reserved[holder] >= limit {
		m.counters.limitRefused.Add(1)
		return &LimitError{Holder: holder, Limit: limit}
	}
	m.reserved[holder]++
	return nil
}

func (m *Manager) unreserve(holder string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reserved[holder]--; m.reserved[holder] <= 0 {
		delete(m.reserved, holder)
	}
}

// count adds d to holder's count; m.mu held.
func (m *Manager) count(holder string, d int) {
	if m.held[holder] += d; m.held[holder] <= 0 {
		delete(m.held, holder)
	}
}

func (m *Manager) accepting() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrClosed
	case m.draining:
		return ErrDraining
	}
	return nil
}

// track starts the expiry timer of a lease this replica now owns, ending
// at expires, never after horizon.
func (m *Manager) track(e *entry, expires, horizon time.Time) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Lease{}, ErrClosed
	}
	if old, ok := m.leases[e.key]; ok {
		if !old.ended {
			old.timer.Stop()
		}
		m.count(old.holder, -1)
	}
	e.horizon = horizon
	e.expires = minTime(expires, horizon)
	m.leases[e.key] = e
	m.count(e.holder, 1)
	e.timer = time.AfterFunc(time.Until(e.expires), func() { m.expire(e) })
	return e.lease(), nil
}

// lease describes e; m.mu held.
func (e *entry) lease() Lease {
	return Lease{ID: e.id, Key: e.key, TTL: e.ttl, ExpiresAt: e.expires}
}

// lookup finds the live entry for id, comparing the secret in constant
// time; m.mu held.
func (m *Manager) lookup(id string) (*entry, bool) {
	e, ok := m.leases[KeyOf(id)]
	if !ok || e.ended {
		return nil, false
	}
	if e.id == "" {
		// Adopted before any client presented the secret; the key is the
		// secret's hash, so a matching key proves it.
		e.id = id
	}
	if subtle.ConstantTimeCompare([]byte(e.id), []byte(id)) != 1 {
		return nil, false
	}
	return e, true
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
