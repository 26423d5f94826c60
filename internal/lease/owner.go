package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// readRecord returns a lease record and its version.
func (m *Manager) readRecord(key string) (record, int32, error) {
	data, stat, err := m.sess.Conn().Get(m.lay.Lease(key))
	if errors.Is(err, zk.ErrNoNode) {
		return record{}, 0, ErrNotFound
	} else if err != nil {
		return record{}, 0, fmt.Errorf("lease: read %s: %w", key, err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil || rec.TTLMillis <= 0 {
		return record{}, 0, fmt.Errorf("lease: corrupt record %s: %q", key, data)
	}
	return rec, stat.Version, nil
}

// readRecordConfirmed is readRecord for a lease a client names: a record
// this replica's ZooKeeper server does not show may exist all the same,
// granted a moment ago through a server that is ahead of ours (reads are
// served locally). Absence is confirmed with an operation the ensemble's
// leader orders (a check in a multi), after which our server has applied
// everything before it: a lease just granted elsewhere is then read, never
// reported gone.
func (m *Manager) readRecordConfirmed(key string) (record, int32, error) {
	rec, ver, err := m.readRecord(key)
	if !errors.Is(err, ErrNotFound) {
		return rec, ver, err
	}
	res, err := m.sess.Conn().Multi(&zk.CheckVersionRequest{Path: m.lay.Lease(key), Version: -1})
	switch {
	case err == nil:
		return m.readRecord(key) // there after all: our server lagged
	case errors.Is(err, zk.ErrNoNode) || (len(res) > 0 && errors.Is(res[0].Error, zk.ErrNoNode)):
		return record{}, 0, ErrNotFound
	default:
		return record{}, 0, fmt.Errorf("lease: confirm %s: %w", key, err)
	}
}

// adopt takes ownership of a lease record that has no owner: it creates the
// owner node and bumps the record's version in one transaction, which fences
// any previous owner. id is the secret when a client is using the lease
// (the TTL starts again), "" when a sweep finds it (see orphanExpiry).
func (m *Manager) adopt(key, id string) (Lease, error) {
	m.gate.RLock()
	defer m.gate.RUnlock()
	if err := m.accepting(); err != nil {
		return Lease{}, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		rec, ver, err := m.readRecordConfirmed(key)
		if err != nil {
			return Lease{}, err
		}
		ttl := time.Duration(rec.TTLMillis) * time.Millisecond
		expires := time.Now().Add(ttl)
		if id == "" {
			expires = m.orphanExpiry(rec, ttl)
		}
		// An orphan keeps its expiry in the record until a client renews it,
		// so that if this replica dies too, the next adopter does not extend
		// it again.
		took := rec
		took.Owner, took.Expires = m.opts.replica, time.Time{}
		if id == "" {
			took.Expires = expires.UTC()
		}
		data, _ := json.Marshal(took)
		_, err = m.sess.Conn().Multi(
			&zk.CreateRequest{Path: m.lay.LeaseOwner(key), Data: []byte(m.opts.replica), Acl: m.sess.ACL(), Flags: zk.FlagEphemeral},
			&zk.SetDataRequest{Path: m.lay.Lease(key), Data: data, Version: ver},
		)
		switch {
		case errors.Is(err, zk.ErrNodeExists):
			owner, _, gerr := m.sess.Conn().Get(m.lay.LeaseOwner(key))
			if errors.Is(gerr, zk.ErrNoNode) {
				continue // it just left
			}
			if string(owner) == m.opts.replica {
				m.mu.Lock()
				_, held := m.leases[key]
				var l Lease
				if id != "" {
					// Adopted here concurrently (two calls for one lease):
					// this call renews it like a keepalive.
					if e, ok := m.lookup(id); ok && time.Now().Before(e.expires) {
						l, held = m.renewLocked(e), false
					}
				}
				m.mu.Unlock()
				if l.ID != "" {
					return l, nil
				}
				if held {
					return Lease{}, ErrNotFound // held here: the id was wrong
				}
				// A stale owner node of ours (a lease forgotten on this
				// session): remove it and adopt properly.
				_ = m.sess.Conn().Delete(m.lay.LeaseOwner(key), -1)
				continue
			}
			return Lease{}, &OwnedError{Replica: string(owner)}
		case errors.Is(err, zk.ErrBadVersion):
			continue // another replica adopted or handed off meanwhile
		case errors.Is(err, zk.ErrNoNode):
			return Lease{}, ErrNotFound
		case err != nil:
			return Lease{}, fmt.Errorf("lease: adopt %s: %w", key, err)
		}
		m.log.Info("lease: adopted", "lease", key, "expires_in", time.Until(expires).Round(time.Millisecond), "by_client", id != "")
		return m.track(&entry{id: id, key: key, ttl: ttl, holder: rec.Holder, recVer: ver + 1, pinned: id == ""}, expires)
	}
	return Lease{}, fmt.Errorf("lease: adopt %s: record kept changing", key)
}

// orphanExpiry is when a lease found without an owner ends unless a client
// keeps it alive. Its record holds the expiry when it was handed off, when
// it went half its TTL without renewal (persistExpiry), or when it was
// adopted as an orphan before and not renewed since: then that expiry
// stands. Otherwise its owner died while it was being renewed: its client
// is alive and retrying its keepalives (which fail while the dead owner's
// node exists), so a grace of a third of the TTL (at least 1 s, at most what
// can be left of it) lets the next keepalive adopt it; a client that does
// not come back within the grace lets it end soon after its owner died.
func (m *Manager) orphanExpiry(rec record, ttl time.Duration) time.Time {
	if !rec.Expires.IsZero() {
		return rec.Expires
	}
	grace := min(max(ttl/3, time.Second), max(ttl-m.sess.Timeout(), 0))
	return time.Now().Add(grace)
}

// Handoff gives up a lease this replica owns, for another replica to adopt:
// the owner node goes and the record keeps the lease's expiry, in one
// transaction. The lease and what it owns stay in ZooKeeper.
func (m *Manager) Handoff(ctx context.Context, id string) error {
	m.mu.Lock()
	e, ok := m.lookup(id)
	m.mu.Unlock()
	if !ok {
		return ErrNotFound
	}
	return m.handoff(e)
}

func (m *Manager) handoff(e *entry) error {
	e.op.Lock()
	defer e.op.Unlock()
	m.mu.Lock()
	if e.ended {
		m.mu.Unlock()
		return ErrNotFound
	}
	expires := e.expires
	m.mu.Unlock()
	rec, _, err := m.readRecord(e.key)
	if err != nil {
		return err
	}
	rec.Owner, rec.Expires = "", expires.UTC()
	data, _ := json.Marshal(rec)
	_, err = m.sess.Conn().Multi(
		&zk.DeleteRequest{Path: m.lay.LeaseOwner(e.key), Version: -1},
		&zk.SetDataRequest{Path: m.lay.Lease(e.key), Data: data, Version: e.recVer},
	)
	if err != nil && !errors.Is(err, zk.ErrBadVersion) && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("lease: hand off %s: %w", e.key, err)
	}
	// Handed off, or no longer ours anyway: forget it without releasing.
	m.forget(e)
	m.log.Info("lease: handed off", "lease", e.key, "expires_in", time.Until(expires).Round(time.Millisecond))
	return nil
}

// forget drops a lease from memory without touching ZooKeeper.
func (m *Manager) forget(e *entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e.ended = true
	if e.timer != nil {
		e.timer.Stop()
		e.mark.Stop()
	}
	if m.leases[e.key] == e {
		delete(m.leases, e.key)
		m.count(e.holder, -1)
	}
}

// Drain stops taking leases (Grant, adoption: ErrDraining) and hands every
// lease this replica owns off, so that clients' next keepalives, on any other
// replica, carry on without a gap. It returns the number handed off.
func (m *Manager) Drain(ctx context.Context) (int, error) {
	m.gate.Lock() // waits for grants and adoptions in flight
	m.mu.Lock()
	m.draining = true
	es := make([]*entry, 0, len(m.leases))
	for _, e := range m.leases {
		es = append(es, e)
	}
	m.mu.Unlock()
	m.gate.Unlock()
	n := 0
	var firstErr error
	for _, e := range es {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if err := m.handoff(e); err == nil {
			n++
		} else if !errors.Is(err, ErrNotFound) && firstErr == nil {
			firstErr = err
		}
	}
	return n, firstErr
}

// takeOver gets a lease that another live replica owns: it asks the owner
// to hand it off, then adopts it.
func (m *Manager) takeOver(ctx context.Context, id string, owner *OwnedError) error {
	if m.opts.peers == nil {
		return owner
	}
	if err := m.opts.peers.Handoff(ctx, owner.Replica, id); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("lease: hand-off from %s: %w", owner.Replica, err)
	}
	_, err := m.adopt(KeyOf(id), id)
	return err
}

// guardOwners re-takes the owner nodes of held leases after the ZooKeeper
// session expired (they were ephemerals of the old session). A lease another
// replica adopted meanwhile (its record version moved) is forgotten, never
// released: the other replica owns it now.
func (m *Manager) guardOwners() {
	defer m.wg.Done()
	st, ch := m.sess.Watch()
	epoch := st.Epoch
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-ch:
		}
		st, ch = m.sess.Watch()
		if st.State != zkx.StateConnected || st.Epoch == epoch {
			continue
		}
		epoch = st.Epoch
		m.mu.Lock()
		es := make([]*entry, 0, len(m.leases))
		for _, e := range m.leases {
			es = append(es, e)
		}
		m.mu.Unlock()
		kept := 0
		for _, e := range es {
			if m.retake(e) {
				kept++
			}
		}
		m.log.Info("lease: owners re-taken after session expiry", "kept", kept, "lost", len(es)-kept)
	}
}

func (m *Manager) retake(e *entry) bool {
	e.op.Lock()
	defer e.op.Unlock()
	rec, _, err := m.readRecord(e.key)
	if err == nil {
		data, _ := json.Marshal(rec)
		_, err = m.sess.Conn().Multi(
			&zk.CreateRequest{Path: m.lay.LeaseOwner(e.key), Data: []byte(m.opts.replica), Acl: m.sess.ACL(), Flags: zk.FlagEphemeral},
			&zk.SetDataRequest{Path: m.lay.Lease(e.key), Data: data, Version: e.recVer},
		)
	}
	if err == nil {
		e.recVer++
		return true
	}
	if zkx.Transient(err) {
		return true // try again with the next session change
	}
	m.log.Warn("lease: lost to another replica during session expiry", "lease", e.key, "err", err)
	m.forget(e)
	return false
}

// sweeper adopts leases whose owner vanished: when a replica leaves the
// replicas directory, and every sweep interval.
func (m *Manager) sweeper(ch <-chan zk.Event) {
	defer m.wg.Done()
	tick := time.NewTicker(m.opts.sweep)
	defer tick.Stop()
	ctx := m.ctx
	for attempt := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			ch = nil
		case <-tick.C:
		}
		if err := m.sweepOrphans(); err != nil && !zkx.Transient(err) {
			m.log.Warn("lease: sweep failed", "err", err)
		}
		for ch == nil {
			var err error
			if _, _, ch, err = m.sess.Conn().ChildrenW(m.lay.Replicas()); err != nil {
				ch = nil
				if !zkx.Backoff(ctx, attempt) {
					return
				}
				attempt++
			}
		}
		attempt = 0
	}
}

// sweepOrphans adopts every lease that has no owner node.
func (m *Manager) sweepOrphans() error {
	if m.accepting() != nil {
		return nil
	}
	c := m.sess.Conn()
	keys, _, err := c.Children(m.lay.Leases())
	if err != nil {
		return err
	}
	for _, key := range keys {
		m.mu.Lock()
		_, mine := m.leases[key]
		m.mu.Unlock()
		if mine {
			continue
		}
		ok, _, err := c.Exists(m.lay.LeaseOwner(key))
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if _, err := m.adopt(key, ""); err != nil && !errors.Is(err, ErrOwnedElsewhere) && !errors.Is(err, ErrNotFound) {
			m.log.Warn("lease: adopt failed", "lease", key, "err", err)
		}
	}
	return nil
}
