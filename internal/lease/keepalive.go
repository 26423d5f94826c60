package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// KeepAlive renews the lease: its TTL starts again now. It costs no
// ZooKeeper write unless the renewal would take the lease past its
// record's horizon (at most one write per horizon). A lease owned by
// another replica is renewed there (through Peers); a lease without an
// owner is adopted. Only the lease's holder (or an admin) may renew it
// (ErrNotHolder).
func (m *Manager) KeepAlive(ctx context.Context, id string) (Lease, error) {
	l, err := m.KeepAliveLocal(ctx, id)
	var owned *OwnedError
	if errors.As(err, &owned) && m.opts.peers != nil {
		m.counters.forwarded.Add(1)
		return m.opts.peers.KeepAlive(ctx, owned.Replica, id)
	}
	return l, err
}

// KeepAliveLocal renews a lease this replica owns, adopting it if it has no
// owner; it never forwards (peers call it).
//
// A renewal that stays within the record's horizon is answered from
// memory, even while ZooKeeper is unreachable: a replica that adopts the
// lease after this one's session expired keeps it until the horizon at
// least. One that would pass the horizon first moves it in ZooKeeper, and
// is refused (ErrUnreachable) while this replica cannot.
func (m *Manager) KeepAliveLocal(ctx context.Context, id string) (Lease, error) {
	for attempt := 0; ; attempt++ {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return Lease{}, ErrClosed
		}
		e, ok := m.lookup(id)
		if !ok {
			m.mu.Unlock()
			if m.sess.Status().State != zkx.StateConnected {
				return Lease{}, ErrUnreachable
			}
			l, err := m.adopt(ctx, KeyOf(id), id, true)
			if errors.Is(err, errHeldHere) && attempt < 3 {
				continue
			}
			return l, err
		}
		if err := authorize(ctx, e.holder); err != nil {
			m.mu.Unlock()
			return Lease{}, err
		}
		now := time.Now()
		if now.After(e.expires) {
			m.mu.Unlock()
			return Lease{}, ErrNotFound
		}
		if e.frozen { // being handed off: wait for it, then look again
			m.mu.Unlock()
			if err := e.op.lock(ctx); err != nil { // held by the hand-off until it is done
				return Lease{}, err
			}
			e.op.unlock()
			continue
		}
		if want := now.Add(e.ttl); !want.After(e.horizon) {
			e.expires = maxTime(e.expires, want)
			e.timer.Reset(time.Until(e.expires))
			l := e.lease()
			m.mu.Unlock()
			m.counters.served.Add(1)
			return l, nil
		}
		m.mu.Unlock()
		if m.sess.Status().State != zkx.StateConnected {
			return Lease{}, ErrUnreachable
		}
		_, err := settle(m, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, m.extend(ctx, e) })
		if err != nil && !errors.Is(err, ErrOwnedElsewhere) {
			return Lease{}, err
		}
		// Renew within the new horizon, or find the lease gone or taken.
	}
}

// extend moves e's horizon one horizon past a renewal now, with a write
// fenced by the record's version. It does nothing when another call moved
// it meanwhile, or the lease ended. Run it with settle.
func (m *Manager) extend(ctx context.Context, e *entry) error {
	if err := e.op.lock(ctx); err != nil {
		return err
	}
	defer e.op.unlock()
	m.mu.Lock()
	skip := e.ended || !time.Now().Add(e.ttl).After(e.horizon)
	m.mu.Unlock()
	if skip {
		return nil
	}
	rec := e.rec
	rec.Expires = time.Now().Add(e.ttl + m.horizon()).UTC()
	data, _ := json.Marshal(rec)
	_, err := m.sess.Set(ctx, m.lay.Lease(e.key), data, e.recVer)
	switch {
	case errors.Is(err, zk.ErrBadVersion):
		m.forget(e)
		return &OwnedError{Replica: "another replica"}
	case errors.Is(err, zk.ErrNoNode):
		m.forget(e)
		return ErrNotFound
	case err != nil:
		return fmt.Errorf("lease: move the horizon of %s: %w", e.key, err)
	}
	e.rec, e.recVer = rec, e.recVer+1
	m.mu.Lock()
	e.horizon = rec.Expires
	m.mu.Unlock()
	return nil
}

// Get returns the lease with the given id if this replica holds it, without
// renewing it.
func (m *Manager) Get(ctx context.Context, id string) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.lookup(id)
	if !ok || time.Now().After(e.expires) {
		return Lease{}, ErrNotFound
	}
	if err := authorize(ctx, e.holder); err != nil {
		return Lease{}, err
	}
	return e.lease(), nil
}

// Describe returns the lease with the given id, asking the replica that
// owns it when that is another one. It never renews the lease.
func (m *Manager) Describe(ctx context.Context, id string) (Lease, error) {
	if l, err := m.Get(ctx, id); err == nil || m.opts.peers == nil || errors.Is(err, ErrNotHolder) {
		return l, err
	}
	rec, _, err := m.readRecordConfirmed(ctx, KeyOf(id))
	if err != nil {
		return Lease{}, err
	}
	if err := authorize(ctx, rec.Holder); err != nil {
		return Lease{}, err
	}
	owner, _, err := m.sess.Get(ctx, m.lay.Owner(KeyOf(id)))
	if ctx.Err() != nil {
		return Lease{}, ctx.Err()
	}
	if err != nil || string(owner) == m.opts.replica {
		// No owner: the lease waits for its next keepalive to be adopted,
		// and lives until its record's expiry at least.
		if !rec.Expires.IsZero() && time.Now().Before(rec.Expires) {
			return Lease{ID: id, Key: KeyOf(id), TTL: rec.ttl(), ExpiresAt: rec.Expires}, nil
		}
		return Lease{}, ErrNotFound
	}
	return m.opts.peers.Get(ctx, string(owner), id)
}

// Owned lists the refs the lease owns.
func (m *Manager) Owned(ctx context.Context, id string) ([]string, error) {
	l, err := m.Describe(ctx, id)
	if err != nil {
		return nil, err
	}
	refs, _, err := m.sess.Children(ctx, m.lay.Lease(l.Key))
	if err != nil {
		return nil, fmt.Errorf("lease: list refs: %w", err)
	}
	out := refs[:0]
	for _, r := range refs {
		if r != "owner" {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Owns reports whether the lease owns ref, as far as this replica knows:
// known is false when it cannot tell (the lease is not held here, or was
// adopted with refs it has not read). Callers use it to skip a read before
// a write that ZooKeeper checks anyway.
func (m *Manager) Owns(id, ref string) (owns, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.lookup(id)
	if !ok || e.refs == nil {
		return false, false
	}
	_, owns = e.refs[ref]
	return owns, true
}

// noteRef records that e now owns ref (add) or no longer does.
func (m *Manager) noteRef(e *entry, ref string, add bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.refs == nil {
		return
	}
	if add {
		e.refs[ref] = struct{}{}
	} else {
		delete(e.refs, ref)
	}
}

// Revision returns a revision (a zxid) at or after every change of lease
// records this replica has made so far, a Revoke's transaction included:
// the leases directory's pzxid, read now.
func (m *Manager) Revision(ctx context.Context) (int64, error) {
	_, st, err := m.sess.Exists(ctx, m.lay.Leases())
	if err != nil {
		return 0, fmt.Errorf("lease: read the leases' revision: %w", err)
	}
	return st.Pzxid, nil
}
