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
func (m *Manager) readRecord(ctx context.Context, key string) (record, int32, error) {
	data, stat, err := m.sess.Get(ctx, m.lay.Lease(key))
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
func (m *Manager) readRecordConfirmed(ctx context.Context, key string) (record, int32, error) {
	rec, ver, err := m.readRecord(ctx, key)
	if !errors.Is(err, ErrNotFound) {
		return rec, ver, err
	}
	res, err := m.sess.Multi(ctx, &zk.CheckVersionRequest{Path: m.lay.Lease(key), Version: -1})
	switch {
	case err == nil:
		return m.readRecord(ctx, key) // there after all: our server lagged
	case errors.Is(err, zk.ErrNoNode) || (len(res) > 0 && errors.Is(res[0].Error, zk.ErrNoNode)):
		return record{}, 0, ErrNotFound
	case ctx.Err() != nil:
		return record{}, 0, ctx.Err()
	default:
		return record{}, 0, fmt.Errorf("lease: confirm %s: %w", key, err)
	}
}

// errHeldHere: adopt found the lease already held by this replica (another
// call adopted it meanwhile); look it up again.
var errHeldHere = errors.New("lease: held here")

// adopt takes ownership of a lease record that has no owner: it creates the
// owner node and bumps the record's version in one transaction, which fences
// any previous owner. id is the secret when a client is using the lease
// (the caller of ctx must be its holder), "" when a sweep finds it. renew
// says whether the client's call renews the lease (a keepalive): then the
// TTL starts again; otherwise (a call that uses the lease without renewing
// it, such as a Deregister) the lease keeps the expiry its record bounds
// (see adoptExpiry), so moving a lease never extends it.
func (m *Manager) adopt(ctx context.Context, key, id string, renew bool) (Lease, error) {
	return settle(m, ctx, func(ctx context.Context) (Lease, error) { return m.adoptNow(ctx, key, id, renew) })
}

func (m *Manager) adoptNow(ctx context.Context, key, id string, renew bool) (Lease, error) {
	m.gate.RLock()
	defer m.gate.RUnlock()
	if err := m.accepting(); err != nil {
		return Lease{}, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		rec, ver, err := m.readRecordConfirmed(ctx, key)
		if err != nil {
			return Lease{}, err
		}
		if id != "" {
			if err := authorize(ctx, rec.Holder); err != nil {
				return Lease{}, err
			}
		}
		client := id != ""
		expires, horizon := adoptExpiry(rec, time.Now(), client, renew, m.horizon())
		took := rec
		took.Owner, took.Expires = m.opts.replica, horizon.UTC()
		data, _ := json.Marshal(took)
		_, err = m.sess.Multi(ctx,
			&zk.CreateRequest{Path: m.lay.Owner(key), Data: []byte(m.opts.replica), Acl: m.sess.ACL(), Flags: zk.FlagEphemeral},
			&zk.SetDataRequest{Path: m.lay.Lease(key), Data: data, Version: ver},
		)
		switch {
		case errors.Is(err, zk.ErrNodeExists):
			owner, _, gerr := m.sess.Get(ctx, m.lay.Owner(key))
			if errors.Is(gerr, zk.ErrNoNode) {
				continue // it just left
			}
			if string(owner) != m.opts.replica {
				return Lease{}, &OwnedError{Replica: string(owner)}
			}
			m.mu.Lock()
			e, here := m.leases[key]
			ending := here && e.ended
			m.mu.Unlock()
			switch {
			case ending:
				// Ended here and being released (an expiry, a revoke):
				// its owner node is the release's fence, not stale.
				return Lease{}, ErrNotFound
			case here:
				return Lease{}, errHeldHere // adopted here concurrently
			}
			// A stale owner node of ours (a lease forgotten on this
			// session): remove it and adopt properly.
			_ = m.sess.Delete(ctx, m.lay.Owner(key), -1)
			continue
		case errors.Is(err, zk.ErrBadVersion):
			continue // another replica adopted or handed off meanwhile
		case errors.Is(err, zk.ErrNoNode):
			return Lease{}, ErrNotFound
		case err != nil:
			return Lease{}, fmt.Errorf("lease: adopt %s: %w", key, err)
		}
		m.log.Info("lease: adopted", "lease", key, "expires_in", time.Until(expires).Round(time.Millisecond), "by_client", client, "renewed", client && renew)
		e := &entry{id: id, key: key, ttl: rec.ttl(), holder: rec.Holder, rec: took, recVer: ver + 1, op: newOpLock()}
		m.counters.adopted.Add(1)
		return m.track(e, expires, horizon)
	}
	return Lease{}, fmt.Errorf("%w: adopting %s", ErrContended, key)
}

// adoptExpiry returns when a lease adopted now ends unless it is renewed,
// and the horizon its record gets. The record's expiry bounds what its
// previous owner may have promised (a renewal beyond it needed a write
// first), so the lease never ends before it: a lease kept alive until its
// owner failed lives on, and one abandoned ends at most a horizon past its
// TTL. A client's renewal (client and renew) starts the TTL again. A
// client's call that moves the lease without renewing it keeps its expiry,
// and its record gets a horizon past it, as an owner gives a lease it renews
// (a keepalive then needs no write), which still bounds an abandoned one
// to a horizon past its last renewal's TTL; a sweep's adoption (no client)
// gets none. A record without an expiry (written by an older zkcoord) may
// have been promised a TTL from now.
func adoptExpiry(rec record, now time.Time, client, renew bool, horizon time.Duration) (expires, recHorizon time.Time) {
	ttl := rec.ttl()
	promised := rec.Expires
	if promised.IsZero() {
		promised = now.Add(ttl)
	}
	switch {
	case !client:
		expires = maxTime(promised, now)
		return expires, expires
	case !renew:
		expires = maxTime(promised, now)
		return expires, expires.Add(horizon)
	}
	expires = maxTime(promised, now.Add(ttl))
	return expires, maxTime(expires, now.Add(ttl+horizon))
}

// Handoff gives up a lease this replica owns, for another replica to adopt:
// the owner node goes and the record keeps the lease's exact expiry, in one
// transaction. The lease and what it owns stay in ZooKeeper. The caller of
// ctx must be the lease's holder.
func (m *Manager) Handoff(ctx context.Context, id string) error {
	m.mu.Lock()
	e, ok := m.lookup(id)
	m.mu.Unlock()
	if !ok {
		return ErrNotFound
	}
	if err := authorize(ctx, e.holder); err != nil {
		return err
	}
	return m.handoff(ctx, e)
}

// handoff records e's expiry and gives it up. Renewals wait meanwhile
// (frozen), so the expiry written covers every renewal acknowledged here.
// A caller that gives up leaves it to finish (settle).
func (m *Manager) handoff(ctx context.Context, e *entry) error {
	_, err := settle(m, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, m.handoffNow(ctx, e) })
	return err
}

func (m *Manager) handoffNow(ctx context.Context, e *entry) error {
	if err := e.op.lock(ctx); err != nil {
		return err
	}
	defer e.op.unlock()
	m.mu.Lock()
	if e.ended {
		m.mu.Unlock()
		return ErrNotFound
	}
	e.frozen = true
	expires := e.expires
	m.mu.Unlock()
	rec := e.rec
	rec.Owner, rec.Expires = "", expires.UTC()
	data, _ := json.Marshal(rec)
	_, err := m.sess.Multi(ctx,
		&zk.DeleteRequest{Path: m.lay.Owner(e.key), Version: -1},
		&zk.SetDataRequest{Path: m.lay.Lease(e.key), Data: data, Version: e.recVer},
	)
	if err != nil && !errors.Is(err, zk.ErrBadVersion) && !errors.Is(err, zk.ErrNoNode) {
		m.mu.Lock()
		e.frozen = false
		m.mu.Unlock()
		return fmt.Errorf("lease: hand off %s: %w", e.key, err)
	}
	// Handed off, or no longer ours anyway: forget it without releasing.
	m.forget(e)
	m.counters.handedOff.Add(1)
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
		if err := m.handoff(ctx, e); err == nil {
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
		if errors.Is(err, ErrNotHolder) {
			return err
		}
		return fmt.Errorf("lease: hand-off from %s: %w", owner.Replica, err)
	}
	_, err := m.adopt(ctx, KeyOf(id), id, false) // for hold: a use, not a renewal
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
	if e.op.lock(m.ctx) != nil {
		return false
	}
	defer e.op.unlock()
	data, _ := json.Marshal(e.rec)
	_, err := m.sess.Multi(m.ctx,
		&zk.CreateRequest{Path: m.lay.Owner(e.key), Data: []byte(m.opts.replica), Acl: m.sess.ACL(), Flags: zk.FlagEphemeral},
		&zk.SetDataRequest{Path: m.lay.Lease(e.key), Data: data, Version: e.recVer},
	)
	if err == nil {
		e.recVer++
		return true
	}
	if zkx.Unknown(err) {
		return true // try again with the next session change (or closing)
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
	var backoff zkx.Backoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			ch = nil
		case <-tick.C:
		}
		if err := m.sweepOrphans(ctx); err != nil && !zkx.Transient(err) && ctx.Err() == nil {
			m.log.Warn("lease: sweep failed", "err", err)
		}
		for ch == nil {
			var err error
			if _, _, ch, err = m.sess.ChildrenW(ctx, m.lay.Replicas()); err != nil {
				ch = nil
				if !backoff.Wait(ctx) {
					return
				}
			}
		}
		backoff.Reset()
	}
}

// sweepOrphans adopts every lease that has no owner node.
func (m *Manager) sweepOrphans(ctx context.Context) error {
	if m.accepting() != nil {
		return nil
	}
	keys, _, err := m.sess.Children(ctx, m.lay.Leases())
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
		ok, _, err := m.sess.Exists(ctx, m.lay.Owner(key))
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if _, err := m.adopt(ctx, key, "", false); err != nil && !errors.Is(err, ErrOwnedElsewhere) &&
			!errors.Is(err, ErrNotFound) && !errors.Is(err, errHeldHere) {
			m.log.Warn("lease: adopt failed", "lease", key, "err", err)
		}
	}
	return nil
}
