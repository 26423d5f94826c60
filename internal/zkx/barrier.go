package zkx

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// Barrier orders a session's reads after every write committed before a
// call: it writes one znode (a quorum write, empty data) and returns once
// the session's server has applied it, and so every write committed
// before it. ZooKeeper's sync is not used: it is not a quorum operation,
// and across a leader change a read after it can miss a committed write
// (ZOOKEEPER-1675; docs/DESIGN.md, "Lookup").
//
// Concurrent callers share one write that started after their call
// (Fresh). The write runs under the owner's context, given to NewBarrier,
// not a caller's: a caller whose ctx ends gets ctx's error at once.
type Barrier struct {
	sess  *Session
	path  string
	ctx   context.Context
	fresh Fresh
}

// NewBarrier returns a Barrier that writes path (created, with its
// parents, the first time it is missing). ctx is the owner's: it bounds
// the shared writes, and ending it fails the calls waiting for one.
func NewBarrier(ctx context.Context, sess *Session, path string) *Barrier {
	return &Barrier{sess: sess, path: path, ctx: ctx}
}

// Wait returns once every write committed before the call is visible to
// the session's reads, or ctx's error when ctx ends first, or ErrStopped
// after Close.
func (b *Barrier) Wait(ctx context.Context) error {
	return b.fresh.Do(ctx, func() error {
		_, err := b.sess.Set(b.ctx, b.path, nil, -1)
		if errors.Is(err, zk.ErrNoNode) {
			if err = b.sess.EnsurePath(b.ctx, b.path); err == nil {
				_, err = b.sess.Set(b.ctx, b.path, nil, -1)
			}
		}
		if err != nil {
			return fmt.Errorf("zkx: read barrier %s: %w", b.path, err)
		}
		return nil
	})
}

// Close fails later calls of Wait with ErrStopped and waits for the write
// under way (end the owner's context first not to wait for ZooKeeper).
func (b *Barrier) Close() { b.fresh.Close() }
