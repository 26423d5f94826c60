package lock

import (
	"context"
	"errors"
	"fmt"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Check reports whether token is the fencing token of a holder of lock
// name (Chubby's CheckSequencer), the highest token among the holders (0
// with none), and the revision of the queue it read. The answer is
// linearizable: it is read after a quorum write (zkx.Barrier, shared by
// concurrent checks), so it reflects every release, handover and lease end
// that completed before the call. A token whose node is gone, or that is
// not a holder's (a waiter's, or one never issued), is not current. A
// check of a lock never acquired creates nothing. When ctx ends first,
// Check returns ctx's error at once.
func (l *Locks) Check(ctx context.Context, name string, token int64) (current bool, highest, rev int64, err error) {
	if err := l.barrier.Wait(ctx); err != nil {
		if errors.Is(err, zkx.ErrStopped) {
			err = ErrClosed
		}
		return false, 0, 0, fmt.Errorf("lock: check %s: %w", name, err)
	}
	holders, _, rev, err := l.Get(ctx, name)
	if err != nil {
		return false, 0, 0, err
	}
	// A node listed as a holder that is still there when read held the
	// lock from the listing to the read: nodes ahead of it never come back.
	for _, h := range holders {
		current = current || h.Token == token
		highest = max(highest, h.Token)
	}
	return current, highest, rev, nil
}
