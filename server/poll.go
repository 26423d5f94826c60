package server

import (
	"context"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
)

// Blocking queries (Lookup, Leader and GetBarrier with a wait) answer at
// the latest when their window closes: after the wait plus jitter, before
// the caller's deadline, or when the gateway shuts down.
const (
	// deadlineRoom is the least time a blocking query keeps between its
	// answer and the caller's gRPC deadline, for the answer to get there
	// (and a LINEARIZABLE catch-up to run); a tenth of the time left when
	// that is more, up to maxDeadlineRoom.
	deadlineRoom    = 100 * time.Millisecond
	maxDeadlineRoom = time.Second
)

// pollWindow returns the channel that closes when a blocking query of ctx
// that asked to wait should stop waiting and answer: after wait plus a
// random jitter of up to wait/16 (so that the waiters of one change, which
// all came back at once, do not all come back at once again), early
// enough to answer within ctx's deadline, or when the gateway shuts down
// (its callers then poll again, another replica answers). The query
// counts in GetStatus's polls until release, which also frees its timer.
// ok is false when the request does not wait (no wait, or 0):
// it is answered at once.
func (g *Gateway) pollWindow(ctx context.Context, wait *durationpb.Duration) (until <-chan struct{}, release func(), ok bool) {
	d := wait.AsDuration()
	if d <= 0 {
		return nil, nil, false
	}
	if j := d / 16; j > 0 {
		d += rand.N(j)
	}
	if dl, has := ctx.Deadline(); has {
		left := time.Until(dl)
		room := min(max(left/10, deadlineRoom), maxDeadlineRoom)
		d = max(min(d, left-room), 0)
	}
	wctx, cancel := context.WithTimeout(g.stopped, d)
	g.polls.Add(1)
	return wctx.Done(), func() {
		cancel()
		g.polls.Add(-1)
	}, true
}
