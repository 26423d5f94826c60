package election

import "context"

// Poll is Leader as a blocking query (a long-poll): it answers once the
// leader of election has changed after revision after (another candidate
// leads, nobody does, somebody does, or the leader's value changed), or
// when until is closed (the wait is over, or the gateway is stopping),
// with the leader then and the latest revision seen. Candidates queueing
// or leaving behind the leader do not end the wait. The answer comes at
// once when after is 0 (a read, as Leader), or when the leader changed
// after it already.
//
// An after ahead of this gateway's view makes Poll read the election from
// ZooKeeper; if it is still ahead, the answer comes at once, at a lower
// revision, and the caller starts again from it.
//
// Waiters share Observe's feed of the election (one child watch per
// election per gateway, and one data watch on its leader), which creates
// the election's directory if missing: a waiting Poll adds no watch of its
// own. The first listing after the feed starts cannot always tell when its
// leader took office (it can for an election that never had a candidate,
// and for the first candidate ever), so a Poll that starts the feed may
// answer at once (a return does not promise a change). Cancelling ctx
// ends the wait with ctx's error; Close ends it with ErrClosed.
func (e *Elections) Poll(ctx context.Context, election string, after int64, until <-chan struct{}) (*LeaderInfo, int64, error) {
	if after <= 0 {
		return e.Leader(ctx, election)
	}
	f, err := e.feeds.join(election)
	if err != nil {
		return nil, 0, err
	}
	defer e.feeds.leave(f)
	// The first listing.
	v, err := f.await(ctx, until, f.latest, func(v view) bool { return v.loaded })
	if err != nil {
		return nil, 0, err
	}
	if !v.loaded { // the wait ended first (ZooKeeper slow?)
		return e.Leader(ctx, election)
	}
	if after > v.rev {
		l, rev, err := e.Leader(ctx, election)
		if err != nil || after > rev {
			return l, rev, err // another history (another ensemble?): the caller resets
		}
		// The feed lags ZooKeeper: its watch has fired (ZooKeeper sends a
		// watch event before the answer of a later read), so it catches up.
		if v, err = f.await(ctx, until, f.latest, func(v view) bool { return v.rev >= rev }); err != nil || v.rev < rev {
			return l, rev, err
		}
	}
	if v, err = f.await(ctx, until, f.current, func(v view) bool { return v.since > after }); err != nil {
		return nil, 0, err
	}
	return v.leader, v.rev, nil
}

// await waits until f's view satisfies done, until is closed (nil: never)
// or ctx ends, and returns the latest view then. It checks done each time
// the channel of next closes: f.current's when the leader changes,
// f.latest's when the revision moves. The feed's end is an error.
func (f *feed) await(ctx context.Context, until <-chan struct{}, next func() (view, <-chan struct{}), done func(view) bool) (view, error) {
	for {
		v, ch := next()
		if v.err != nil {
			return v, v.err
		}
		if done(v) {
			return v, nil
		}
		select {
		case <-ch:
		case <-until:
			v, _ = f.latest()
			return v, v.err
		case <-ctx.Done():
			return v, ctx.Err()
		}
	}
}
