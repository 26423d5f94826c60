package zkx

import (
	"context"
	"errors"
	"sync"
)

// ErrStopped: Do was called after Close.
var ErrStopped = errors.New("zkx: shared runs stopped")

// Fresh runs an operation for many callers at once, each of whom needs a
// run that started after it called: a caller joins the run that starts
// next (or starts it), never one already under way. Linearizable reads use
// it so that concurrent callers share one round trip to ZooKeeper without
// any of them being answered from a round that began before its call.
//
// A run goes on in a goroutine of Fresh's own, whatever its callers do: a
// caller whose context ends gets its error at once, and the others still
// get the run's result. So fn must be bounded by its owner's context, not
// by a caller's. Close waits for the run under way.
type Fresh struct {
	mu       sync.Mutex
	started  uint64 // runs started so far
	finished uint64 // the last finished run
	err      error  // its result
	running  bool
	done     chan struct{} // closed when the running run finishes
	closed   bool
	wg       sync.WaitGroup
}

// Do returns the result of a run of fn that started after Do was called,
// or ctx's error if ctx ends first (the run goes on for the others), or
// ErrStopped after Close.
func (f *Fresh) Do(ctx context.Context, fn func() error) error {
	f.mu.Lock()
	need := f.started + 1
	for f.finished < need {
		if !f.running {
			if f.closed {
				f.mu.Unlock()
				return ErrStopped
			}
			f.started++
			id := f.started
			f.running, f.done = true, make(chan struct{})
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				err := fn()
				f.mu.Lock()
				f.running, f.finished, f.err = false, id, err
				close(f.done)
				f.mu.Unlock()
			}()
		}
		done := f.done
		f.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		f.mu.Lock()
	}
	err := f.err
	f.mu.Unlock()
	return err
}

// Close makes later calls of Do that need a new run fail with ErrStopped,
// and waits for the run under way.
func (f *Fresh) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
}
