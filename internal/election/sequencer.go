package election

import (
	"context"
	"errors"
	"fmt"

	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Check reports whether token is the fencing token of election's current
// term (Chubby's CheckSequencer), the current leader's token (0 with no
// leader), and the revision the answer reflects (as Leader's). The answer
// is linearizable: it is read after a quorum write to the elections'
// directory (zkx.Barrier, shared by concurrent checks), so it reflects
// every resignation, handover and lease end that completed before the
// call. A check of an election never entered creates nothing there. When
// ctx ends first, Check returns ctx's error at once.
func (e *Elections) Check(ctx context.Context, election string, token int64) (current bool, leader, rev int64, err error) {
	if err := e.barrier.Wait(ctx); err != nil {
		if errors.Is(err, zkx.ErrStopped) {
			err = ErrClosed
		}
		return false, 0, 0, fmt.Errorf("election: check %s: %w", election, err)
	}
	l, rev, err := e.Leader(ctx, election)
	if err != nil || l == nil {
		return false, 0, rev, err
	}
	return l.Token == token, l.Token, rev, nil
}
