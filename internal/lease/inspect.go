package lease

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-zookeeper/zk"
)

// Info describes a lease for an operator, by its public key: the lease ID
// is a secret and is never listed.
type Info struct {
	Key     string
	TTL     time.Duration
	Granted time.Time
	// Owner is the replica that owns the lease ("" while handed off), as
	// its live owner node says.
	Owner string
	// Holder is the principal the lease was granted to ("" without auth).
	Holder string
	// ExpiresAt is the lease's exact expiry when Exact (this replica owns
	// it, or it waits, handed off, for adoption); otherwise the record's
	// horizon, the latest expiry the owner may have promised: the lease
	// ends no later than that unless it is renewed.
	ExpiresAt time.Time
	Exact     bool
	// Owned are the refs of what the lease owns (Ref's form), sorted.
	Owned []string
}

// Keys lists the keys of the leases recorded in ZooKeeper, sorted.
func (m *Manager) Keys(ctx context.Context) ([]string, error) {
	keys, _, err := m.sess.Children(ctx, m.lay.Leases())
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("lease: list leases: %w", err)
	}
	sort.Strings(keys)
	return keys, nil
}

// Inspect reads the lease with the given key: ErrNotFound once it is gone.
// It never renews the lease and needs no secret; callers restrict it to
// operators.
func (m *Manager) Inspect(ctx context.Context, key string) (Info, error) {
	rec, _, err := m.readRecord(ctx, key)
	if err != nil {
		return Info{}, err
	}
	children, _, err := m.sess.Children(ctx, m.lay.Lease(key))
	if errors.Is(err, zk.ErrNoNode) {
		return Info{}, ErrNotFound
	} else if err != nil {
		return Info{}, fmt.Errorf("lease: list refs of %s: %w", key, err)
	}
	info := Info{Key: key, TTL: rec.ttl(), Granted: rec.Granted, Holder: rec.Holder, ExpiresAt: rec.Expires}
	for _, c := range children {
		if c != "owner" {
			info.Owned = append(info.Owned, c)
		}
	}
	sort.Strings(info.Owned)
	owner, _, err := m.sess.Get(ctx, m.lay.Owner(key))
	switch {
	case err == nil:
		info.Owner = string(owner)
	case errors.Is(err, zk.ErrNoNode):
		info.Exact = true // handed off: the record holds the exact expiry
	default:
		return Info{}, fmt.Errorf("lease: read owner of %s: %w", key, err)
	}
	if info.Owner == m.opts.replica {
		m.mu.Lock()
		if e, ok := m.leases[key]; ok && !e.ended {
			info.ExpiresAt, info.Exact = e.expires, true
		}
		m.mu.Unlock()
	}
	return info, nil
}

// ReplicaInfo is one replica's announcement.
type ReplicaInfo struct {
	ID string
	// Addr is where the other replicas reach it (its advertise address).
	Addr string
}

// Replicas lists the replicas announced under the root, sorted by ID.
func (m *Manager) Replicas(ctx context.Context) ([]ReplicaInfo, error) {
	ids, _, err := m.sess.Children(ctx, m.lay.Replicas())
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("lease: list replicas: %w", err)
	}
	sort.Strings(ids)
	out := make([]ReplicaInfo, 0, len(ids))
	for _, id := range ids {
		addr, _, err := m.sess.Get(ctx, m.lay.Replica(id))
		if errors.Is(err, zk.ErrNoNode) {
			continue // gone since the listing
		} else if err != nil {
			return nil, fmt.Errorf("lease: read replica %s: %w", id, err)
		}
		out = append(out, ReplicaInfo{ID: id, Addr: string(addr)})
	}
	return out, nil
}
