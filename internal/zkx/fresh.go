package zkx

import "sync"

// Fresh runs an operation for many callers at once, each of whom needs a
// run that started after it called: a caller joins the run that starts
// next (or starts it), never one already under way. Linearizable reads use
// it so that concurrent callers share one round trip to ZooKeeper without
// any of them being answered from a round that began before its call.
type Fresh struct {
	mu       sync.Mutex
	started  uint64 // runs started so far
	finished uint64 // the last finished run
	err      error  // its result
	running  bool
	done     chan struct{} // closed when the running run finishes
}

// Do returns the result of a run of fn that started after Do was called.
func (f *Fresh) Do(fn func() error) error {
	f.mu.Lock()
	need := f.started + 1
	for f.finished < need {
		if f.running {
			done := f.done
			f.mu.Unlock()
			<-done
			f.mu.Lock()
			continue
		}
		f.started++
		id := f.started
		f.running, f.done = true, make(chan struct{})
		f.mu.Unlock()
		err := fn()
		f.mu.Lock()
		f.running, f.finished, f.err = false, id, err
		close(f.done)
	}
	err := f.err
	f.mu.Unlock()
	return err
}
