package lease

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Revoke ends the lease now and deletes everything it owns. A lease owned by
// another replica is taken over first. Only the lease's holder (or an
// admin) may revoke it (ErrNotHolder).
func (m *Manager) Revoke(ctx context.Context, id string) error {
	var ended *entry
	err := m.withLease(ctx, id, func(e *entry) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if e.ended {
			return ErrNotFound
		}
		e.ended = true
		e.timer.Stop()
		ended = e
		m.counters.revoked.Add(1)
		return nil
	})
	if err != nil {
		return err
	}
	return m.release(ctx, ended) // takes e's op lock again for the deletes
}

// expire runs when e's timer fires.
func (m *Manager) expire(e *entry) {
	m.mu.Lock()
	if e.ended || m.closed || time.Now().Before(e.expires) {
		m.mu.Unlock()
		return
	}
	e.ended = true
	m.counters.expired.Add(1)
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	m.log.Info("lease: expired", "lease", e.key, "ttl", e.ttl)
	if err := m.release(m.ctx, e); err != nil {
		m.log.Warn("lease: release after expiry failed", "lease", e.key, "err", err)
	}
}

// errLost: the lease record's version moved; another replica owns the lease.
var errLost = errors.New("lease: ownership lost")

// release deletes everything e owns, then the lease record, each step
// fenced by the record's version. It retries while ZooKeeper is unreachable,
// until ctx is done. If another replica took the lease meanwhile, nothing
// more is deleted: the lease is theirs.
//
// If ctx ends first (ZooKeeper unreachable for longer than the caller
// waits), the release goes on in the background until it succeeds or the
// Manager closes; the lease stays ended meanwhile (keepalives fail), and
// release returns why it could not finish in time (an unknown outcome for
// the caller: what the lease owns is still being removed).
func (m *Manager) release(ctx context.Context, e *entry) error {
	err := m.releaseLocked(ctx, e)
	if err != nil && !errors.Is(err, errLost) && m.background(func(bg context.Context) {
		m.released(e, m.releaseLocked(bg, e))
	}) {
		m.log.Warn("lease: release continues in the background", "lease", e.key, "err", err)
		return fmt.Errorf("lease: %s ended; removing what it owns goes on in the background: %w", e.key, err)
	}
	return m.released(e, err)
}

// releaseLocked retries releaseOnce under e's op lock until it succeeds,
// fails for good, or ctx ends.
func (m *Manager) releaseLocked(ctx context.Context, e *entry) error {
	if err := e.op.lock(ctx); err != nil {
		return err
	}
	defer e.op.unlock()
	return zkx.Retry(ctx, func() error { return m.releaseOnce(ctx, e) })
}

func (m *Manager) released(e *entry, err error) error {
	m.forget(e)
	if errors.Is(err, errLost) {
		m.log.Warn("lease: not released, another replica owns it now", "lease", e.key)
		return nil
	}
	return err
}

func (m *Manager) releaseOnce(ctx context.Context, e *entry) error {
	c := m.sess
	key := e.key
	fence := &zk.CheckVersionRequest{Path: m.lay.Lease(key), Version: e.recVer}
	refs, _, err := c.Children(ctx, m.lay.Lease(key))
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	} else if err != nil {
		return err
	}
	var all []any
	var per [][]any
	for _, ref := range refs {
		if ref == "owner" {
			continue
		}
		ops, err := m.releaseOps(ctx, key, ref)
		if err != nil {
			return err
		}
		ops = append(ops, &zk.DeleteRequest{Path: m.lay.Ref(key, ref), Version: -1})
		all = append(all, ops...)
		per = append(per, ops)
	}
	tail := []any{
		&zk.DeleteRequest{Path: m.lay.Owner(key), Version: -1},
		&zk.DeleteRequest{Path: m.lay.Lease(key), Version: e.recVer},
	}
	// One lease per transaction, never group-committed with another's end:
	// election's takeover with no read relies on no transaction deleting two
	// leases' candidacies (DESIGN.md, "Leader election").
	res, err := c.Multi(ctx, append(append([]any{fence}, all...), tail...)...)
	if err == nil || zkx.Unknown(err) {
		return err
	}
	if len(res) > 0 && (errors.Is(res[0].Error, zk.ErrBadVersion)) {
		return errLost
	}
	// Something changed under us (a node already gone, the owner node lost
	// with an expired session): release ref by ref, then the record.
	for _, ops := range per {
		if _, err := c.Multi(ctx, append([]any{fence}, ops...)...); err != nil {
			if zkx.Unknown(err) {
				return err
			}
			last := ops[len(ops)-1].(*zk.DeleteRequest)
			if _, err := c.Multi(ctx, fence, last); err != nil && !errors.Is(err, zk.ErrNoNode) {
				if errors.Is(err, zk.ErrBadVersion) {
					return errLost
				}
				return err
			}
		}
	}
	if err := c.Delete(ctx, m.lay.Owner(key), -1); err != nil && !errors.Is(err, zk.ErrNoNode) && !zkx.Unknown(err) {
		return err
	}
	switch err := c.Delete(ctx, m.lay.Lease(key), e.recVer); {
	case err == nil, errors.Is(err, zk.ErrNoNode):
		return nil
	case errors.Is(err, zk.ErrBadVersion):
		return errLost
	case errors.Is(err, zk.ErrNotEmpty):
		return m.releaseOnce(ctx, e) // a ref was attached meanwhile
	default:
		return err
	}
}

func (m *Manager) releaseOps(ctx context.Context, key, ref string) ([]any, error) {
	parts := strings.Split(ref, "~")
	m.mu.Lock()
	fn := m.kinds[parts[0]]
	m.mu.Unlock()
	if fn == nil {
		m.log.Warn("lease: unknown ref kind", "lease", key, "ref", ref)
		return nil, nil
	}
	return fn(ctx, key, parts[1:])
}
