package lease

import (
	"context"
	"errors"
	"time"

	"github.com/go-zookeeper/zk"
)

// Attach runs ops in one ZooKeeper transaction together with the creation of
// ref (unless ref is "") and a check of the lease record's version, so a
// node is never created for a lease that has ended or that another replica
// has taken. The responses of ops come first in the result. A lease owned by
// another replica is taken over first (see Peers).
func (m *Manager) Attach(ctx context.Context, id, ref string, ops ...any) ([]zk.MultiResponse, error) {
	return m.attach(ctx, false, id, ref, ops)
}

// AttachShared is Attach in a transaction that may be shared with other
// callers' (zkx.Session.MultiShared, group commit), so its zxid may be
// theirs too: for the registry's writes, whose revisions may be shared as
// a lease's end shares one, never for a lock's node, whose czxid is a
// fencing token.
func (m *Manager) AttachShared(ctx context.Context, id, ref string, ops ...any) ([]zk.MultiResponse, error) {
	return m.attach(ctx, true, id, ref, ops)
}

func (m *Manager) attach(ctx context.Context, shared bool, id, ref string, ops []any) ([]zk.MultiResponse, error) {
	var res []zk.MultiResponse
	err := m.withLease(ctx, id, func(e *entry) error {
		all := append(m.fence(e), ops...)
		if ref != "" {
			all = append(all, &zk.CreateRequest{Path: m.lay.Ref(e.key, ref), Acl: m.sess.ACL()})
		}
		var err error
		res, err = m.multi(ctx, shared, e, all)
		if err == nil && ref != "" {
			m.noteRef(e, ref, true)
		}
		return err
	})
	return res, err
}

// fence starts a transaction for e with the check of its record's version.
// It comes first, so a write for a lease this replica lost fails on the
// fence whatever else would fail, alone or in a batch of the session's
// group commit (which sends such checks first: zkx/batchplan.go). The
// result of multi leaves it out.
func (m *Manager) fence(e *entry) []any {
	return []any{&zk.CheckVersionRequest{Path: m.lay.Lease(e.key), Version: e.recVer}}
}

// Detach runs ops in one transaction with the deletion of ref, fenced like
// Attach.
func (m *Manager) Detach(ctx context.Context, id, ref string, ops ...any) ([]zk.MultiResponse, error) {
	return m.detach(ctx, false, id, ref, ops)
}

// DetachShared is Detach in a transaction that may be shared, as
// AttachShared.
func (m *Manager) DetachShared(ctx context.Context, id, ref string, ops ...any) ([]zk.MultiResponse, error) {
	return m.detach(ctx, true, id, ref, ops)
}

func (m *Manager) detach(ctx context.Context, shared bool, id, ref string, ops []any) ([]zk.MultiResponse, error) {
	var res []zk.MultiResponse
	err := m.withLease(ctx, id, func(e *entry) error {
		all := append(append(m.fence(e), ops...), &zk.DeleteRequest{Path: m.lay.Ref(e.key, ref), Version: -1})
		var err error
		res, err = m.multi(ctx, shared, e, all)
		if err == nil {
			m.noteRef(e, ref, false)
		}
		return err
	})
	return res, err
}

// multi runs a fenced transaction (ops[0] the fence), shared or not, and returns the
// answers after the fence's. When the fence fails (the record's version
// moved: another replica took the lease) the lease is forgotten and
// ErrOwnedElsewhere returned.
func (m *Manager) multi(ctx context.Context, shared bool, e *entry, ops []any) ([]zk.MultiResponse, error) {
	send := m.sess.Multi
	if shared {
		send = m.sess.MultiShared
	}
	res, err := send(ctx, ops...)
	if err == nil {
		return res[1:], nil
	}
	if len(res) == 0 {
		return nil, err
	}
	if f := res[0].Error; errors.Is(f, zk.ErrBadVersion) || errors.Is(f, zk.ErrNoNode) {
		m.forget(e)
		if errors.Is(f, zk.ErrBadVersion) {
			return nil, &OwnedError{Replica: "another replica"}
		}
		return nil, ErrNotFound
	}
	return res[1:], err
}

// withLease runs fn on the live entry for id with the entry's op lock held,
// for the caller of ctx, who must be the lease's holder (ErrNotHolder). A
// lease without an owner is adopted; one owned by another replica is taken
// over. The lock is taken and released here, around fn.
func (m *Manager) withLease(ctx context.Context, id string, fn func(e *entry) error) error {
	e, err := m.hold(ctx, id)
	if err != nil {
		return err
	}
	defer e.op.unlock()
	return fn(e)
}

// hold returns the live entry for id with its op lock held; only withLease
// calls it, and releases the lock.
func (m *Manager) hold(ctx context.Context, id string) (*entry, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m.mu.Lock()
		e, ok := m.lookup(id)
		m.mu.Unlock()
		if !ok {
			_, err := m.adopt(ctx, KeyOf(id), id, false) // a use of the lease, not a renewal: the calls that renew do so first (KeepAlive)
			var owned *OwnedError
			if errors.As(err, &owned) && attempt < 2 {
				err = m.takeOver(ctx, id, owned)
			}
			if err != nil && (!errors.Is(err, errHeldHere) || attempt >= 3) {
				return nil, err
			}
			continue
		}
		if err := authorize(ctx, e.holder); err != nil {
			return nil, err
		}
		if err := e.op.lock(ctx); err != nil {
			return nil, err
		}
		m.mu.Lock()
		ended, expired := e.ended, time.Now().After(e.expires)
		m.mu.Unlock()
		switch {
		case expired:
			e.op.unlock()
			return nil, ErrNotFound
		case ended:
			// Handed off (or revoked, or lost to another replica) while
			// this call waited for the lease: look again, which adopts it,
			// finds its new owner, or finds it gone.
			e.op.unlock()
			continue
		}
		return e, nil
	}
}
