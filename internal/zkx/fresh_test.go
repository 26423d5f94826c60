package zkx

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
				if err := f.Do(context.Background(), run); !errors.As(err, &id) {
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

// TestFreshCallerGivesUp: a caller whose context ends gets its error at
// once, while the run it started goes on; the callers that still wait get
// a run's result. After Close, a call that needs a new run gets ErrStopped.
func TestFreshCallerGivesUp(t *testing.T) {
	var f Fresh
	started, release := make(chan struct{}, 2), make(chan struct{})
	var runs atomic.Int64
	run := func() error {
		id := runs.Add(1)
		select { // never blocks: a broken Fresh that runs on must not hang the test
		case started <- struct{}{}:
		default:
		}
		<-release
		return runID(id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- f.Do(ctx, run) }()
	select { // run 1 is under way
	case <-started:
	case err := <-first:
		t.Fatalf("answered %v with no run started after the call", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no run started for the first caller")
	}
	second := make(chan error, 1)
	go func() { second <- f.Do(context.Background(), run) }() // needs run 2
	cancel()
	select {
	case err := <-first:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a caller that gave up: %v, want its context's error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a caller that gave up still waits for the run")
	}
	close(release) // run 1 ends, for nobody; run 2 runs through
	var id runID
	select {
	case err := <-second:
		if !errors.As(err, &id) || id != 2 {
			t.Fatalf("the caller that waited: %v, want run 2", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the caller that waited got no run")
	}
	f.Close()
	if err := f.Do(context.Background(), run); !errors.Is(err, ErrStopped) {
		t.Fatalf("Do after Close: %v, want ErrStopped", err)
	}
}

// TestFreshNoRunForCallersWhoLeft: a caller who gives up while it waits
// for the next run leaves no run to be made for nobody: the next caller,
// alone, is answered by run 2, not by a run 3 after a run 2 for the caller
// who left (as a Fresh that chains runs for waiters could do).
func TestFreshNoRunForCallersWhoLeft(t *testing.T) {
	var f Fresh
	defer f.Close()
	started, release := make(chan struct{}, 1), make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) }) // before Close: a failed test must not hang on run 1
	var runs atomic.Int64
	run := func() error {
		id := runs.Add(1)
		if id == 1 {
			started <- struct{}{}
			<-release
		}
		return runID(id)
	}
	first := make(chan error, 1)
	go func() { first <- f.Do(context.Background(), run) }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no run started for the first caller")
	}
	// A caller that arrives during run 1 with its context already ended
	// waits for run 2 and leaves at once.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Do(gone, run); !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller whose context had ended: %v", err)
	}
	releaseOnce.Do(func() { close(release) })
	var id runID
	if err := <-first; !errors.As(err, &id) || id != 1 {
		t.Fatalf("the first caller: %v, want run 1", err)
	}
	// Nobody waits now: the next caller starts run 2, not a run made for
	// the caller who left.
	if err := f.Do(context.Background(), run); !errors.As(err, &id) || id != 2 {
		t.Fatalf("the next caller: %v, want run 2 (%d runs)", err, runs.Load())
	}
}
