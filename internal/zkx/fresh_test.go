package zkx

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

type runID int64

func (r runID) Error() string { return fmt.Sprint("run ", int64(r)) }

// TestFreshJoinsOnlyLaterRuns: a caller is never answered by a run that
// began before its call.
func TestFreshJoinsOnlyLaterRuns(t *testing.T) {
	var f Fresh
	var started atomic.Int64 // runs begun
	run := func() error { return runID(started.Add(1)) }
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				before := started.Load() // runs that began before this call
				var id runID
				if err := f.Do(run); !errors.As(err, &id) {
					t.Errorf("Do: %v", err)
					return
				}
				if int64(id) <= before {
					t.Errorf("answered by run %d, which began before the call (%d had)", id, before)
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("4000 calls from 8 goroutines took %d runs", started.Load())
}
