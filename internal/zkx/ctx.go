package zkx

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"
)

// go-zookeeper v1.0.4 takes no context: a request waits for its answer,
// and one sent while no server is reachable waits for the next connection.
// The Session's methods below bound each request by ctx instead: when ctx
// ends first they return ctx's error at once, and the request completes or
// fails in the background (its goroutine ends when go-zookeeper answers it,
// at the latest when the Session closes). As with any RPC, a write whose
// caller gave up may still take effect.

// bounded runs fn, returning early with ctx's error if ctx ends first. The
// session's observer (WithObserver) sees how long fn took, op naming it,
// when fn returns: a request whose caller gave up is observed too.
func bounded[T any](ctx context.Context, s *Session, op Op, fn func() (T, error)) (T, error) {
	if obs := s.observe; obs != nil {
		inner := fn
		fn = func() (T, error) {
			start := time.Now()
			v, err := inner()
			obs(op, time.Since(start), err)
			return v, err
		}
	}
	var zero T
	if ctx.Done() == nil { // never cancelled: no goroutine needed
		return fn()
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

type stat struct {
	data []byte
	st   *zk.Stat
}

// Get reads a znode's data and Stat.
func (s *Session) Get(ctx context.Context, p string) ([]byte, *zk.Stat, error) {
	r, err := bounded(ctx, s, OpGet, func() (stat, error) {
		d, st, err := s.conn.Get(p)
		return stat{d, st}, err
	})
	return r.data, r.st, err
}

// GetW reads a znode and sets a data watch on it.
func (s *Session) GetW(ctx context.Context, p string) ([]byte, *zk.Stat, <-chan zk.Event, error) {
	type res struct {
		data []byte
		st   *zk.Stat
		ch   <-chan zk.Event
	}
	r, err := bounded(ctx, s, OpGet, func() (res, error) {
		d, st, ch, err := s.conn.GetW(p)
		return res{d, st, ch}, err
	})
	return r.data, r.st, r.ch, err
}

// Children lists a znode's children.
func (s *Session) Children(ctx context.Context, p string) ([]string, *zk.Stat, error) {
	type res struct {
		kids []string
		st   *zk.Stat
	}
	r, err := bounded(ctx, s, OpChildren, func() (res, error) {
		k, st, err := s.conn.Children(p)
		return res{k, st}, err
	})
	return r.kids, r.st, err
}

// ChildrenW lists a znode's children and sets a child watch on it.
func (s *Session) ChildrenW(ctx context.Context, p string) ([]string, *zk.Stat, <-chan zk.Event, error) {
	type res struct {
		kids []string
		st   *zk.Stat
		ch   <-chan zk.Event
	}
	r, err := bounded(ctx, s, OpChildren, func() (res, error) {
		k, st, ch, err := s.conn.ChildrenW(p)
		return res{k, st, ch}, err
	})
	return r.kids, r.st, r.ch, err
}

// Exists reports whether a znode exists, with its Stat.
func (s *Session) Exists(ctx context.Context, p string) (bool, *zk.Stat, error) {
	type res struct {
		ok bool
		st *zk.Stat
	}
	r, err := bounded(ctx, s, OpExists, func() (res, error) {
		ok, st, err := s.conn.Exists(p)
		return res{ok, st}, err
	})
	return r.ok, r.st, err
}

// ExistsW is Exists with a watch, set whether or not the znode exists.
func (s *Session) ExistsW(ctx context.Context, p string) (bool, *zk.Stat, <-chan zk.Event, error) {
	type res struct {
		ok bool
		st *zk.Stat
		ch <-chan zk.Event
	}
	r, err := bounded(ctx, s, OpExists, func() (res, error) {
		ok, st, ch, err := s.conn.ExistsW(p)
		return res{ok, st, ch}, err
	})
	return r.ok, r.st, r.ch, err
}

// Create creates a znode and returns its path (with the sequence number
// for a sequential one).
func (s *Session) Create(ctx context.Context, p string, data []byte, flags int32) (string, error) {
	return bounded(ctx, s, OpCreate, func() (string, error) { return s.conn.Create(p, data, flags, s.acl) })
}

// Set writes a znode's data if its version matches (-1: any).
func (s *Session) Set(ctx context.Context, p string, data []byte, version int32) (*zk.Stat, error) {
	return bounded(ctx, s, OpSet, func() (*zk.Stat, error) { return s.conn.Set(p, data, version) })
}

// Delete deletes a znode if its version matches (-1: any).
func (s *Session) Delete(ctx context.Context, p string, version int32) error {
	_, err := bounded(ctx, s, OpDelete, func() (struct{}, error) { return struct{}{}, s.conn.Delete(p, version) })
	return err
}

// Multi runs ops in one transaction of their own. Its responses say which
// op failed.
func (s *Session) Multi(ctx context.Context, ops ...any) ([]zk.MultiResponse, error) {
	return bounded(ctx, s, OpMulti, func() ([]zk.MultiResponse, error) {
		if !s.batch.pipelined() {
			return s.conn.Multi(ops...)
		}
		return s.order.do(ctx, ops, nil, nil, func(ops []any) ([]zk.MultiResponse, error) { return s.conn.Multi(ops...) })
	})
}

// MultiShared runs ops atomically, and with the outcome they would have
// alone, but possibly in one ZooKeeper transaction with other callers' ops
// (group commit, batch.go): for writes whose zxid need not be theirs alone.
// (A lock's fencing token, a node's czxid, must not be shared: Multi.) Its
// responses say which op failed. A call whose ctx ends before its batch is
// sent is dropped from it; one whose batch is in flight returns ctx's error
// at once, the outcome unknown.
func (s *Session) MultiShared(ctx context.Context, ops ...any) ([]zk.MultiResponse, error) {
	return s.batch.do(ctx, ops)
}

// EnsurePath creates p and its missing parents as empty persistent znodes,
// bounded by ctx.
func (s *Session) EnsurePath(ctx context.Context, p string) error {
	_, err := bounded(ctx, s, OpEnsurePath, func() (struct{}, error) { return struct{}{}, EnsurePath(s.conn, p, s.acl) })
	return err
}

// GetACL reads a znode's ACL.
func (s *Session) GetACL(ctx context.Context, p string) ([]zk.ACL, *zk.Stat, error) {
	type res struct {
		acl []zk.ACL
		st  *zk.Stat
	}
	r, err := bounded(ctx, s, OpGetACL, func() (res, error) {
		acl, st, err := s.conn.GetACL(p)
		return res{acl, st}, err
	})
	return r.acl, r.st, err
}

// Names lists a directory's children sorted, and none when it does not
// exist: what an operator's listing of a recipe's names reads.
func (s *Session) Names(ctx context.Context, dir string) ([]string, error) {
	kids, _, err := s.Children(ctx, dir)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	slices.Sort(kids)
	return kids, nil
}
