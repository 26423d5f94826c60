package client

import (
	"context"
	"errors"
	"time"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// releaseTimeout bounds the release of a hold the client gives up.
const releaseTimeout = 5 * time.Second

// release gives up a hold that no stream follows, if it is there,
// retrying on another replica while the gateway is unavailable (one that
// drains, say) for up to releaseTimeout.
func (s *Session) release(name, lease, hold string) {
	ctx, cancel := context.WithTimeout(s.c.ctx, releaseTimeout)
	defer cancel()
	err := s.c.retry(ctx, "release "+name, func(*backoff) error {
		_, err := s.c.rpc.lock.ReleaseLock(ctx, &zkcoordv1.ReleaseLockRequest{Lock: name, LeaseId: lease, Hold: hold})
		return callErr(ctx, err, ErrLockLost)
	})
	if err != nil && !errors.Is(err, ErrLockLost) {
		s.c.opts.logger.Warn("zkcoord: could not release a hold; it lasts until its lease ends", "lock", name, "err", err)
	}
}

// releaseAll gives up every hold the lease has on the lock.
func (s *Session) releaseAll(name, lease string) {
	ctx, cancel := context.WithTimeout(s.c.ctx, releaseTimeout)
	defer cancel()
	for {
		r, err := s.c.rpc.lock.ReleaseLock(ctx, &zkcoordv1.ReleaseLockRequest{Lock: name, LeaseId: lease})
		if err = callErr(ctx, err, ErrLockLost); err != nil {
			if !errors.Is(err, ErrLockLost) {
				s.c.opts.logger.Warn("zkcoord: could not release a hold; it lasts until its lease ends", "lock", name, "err", err)
			}
			return
		}
		if r.GetHolds() == 0 {
			return
		}
	}
}

// mayHold reports whether the lease may still have the hold of a Lock or
// TryLock that failed with err: unless the gateway said it ended, or the
// lease or session did.
func mayHold(err error) bool {
	for _, gone := range []error{ErrLockLost, ErrReleased, ErrLeaseLost, ErrSessionClosed, ErrClosed} {
		if errors.Is(err, gone) {
			return false
		}
	}
	return true
}
