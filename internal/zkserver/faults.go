package zkserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// ErrNotRunning reports a fault aimed at an ensemble member whose process
// has exited (killed, or never started).
var ErrNotRunning = errors.New("zkserver: member is not running")

// Running reports whether member i's process is running (paused counts as
// running).
func (e *Ensemble) Running(i int) bool {
	return e.Servers[i].proc.Running()
}

// Pause freezes member i with SIGSTOP: its sockets stay open and its peers
// and clients get no answer, as in a long GC pause or a frozen VM. Resume
// thaws it. Stop a paused ensemble only after resuming its members, or Stop
// waits 5 s for each of them before killing it.
func (e *Ensemble) Pause(i int) error { return e.signal(i, syscall.SIGSTOP) }

// Resume thaws member i after Pause (SIGCONT); resuming a member that is
// not paused does nothing.
func (e *Ensemble) Resume(i int) error { return e.signal(i, syscall.SIGCONT) }

func (e *Ensemble) signal(i int, sig syscall.Signal) error {
	if !e.Running(i) {
		return fmt.Errorf("%w: member %d", ErrNotRunning, i+1)
	}
	// The member leads its own process group (Setpgid in spawn).
	if err := e.Servers[i].proc.SignalGroup(sig); err != nil {
		return fmt.Errorf("zkserver: signal member %d: %w", i+1, err)
	}
	return nil
}

// LeaderIndex returns the index in Servers of the member that `srvr`
// reports as "Mode: leader" ("standalone" for a one-member ensemble). While
// the ensemble elects a leader none reports it, so LeaderIndex asks again
// every 50 ms until one does; cancelling ctx ends the wait with ctx's
// error. Dead members are skipped; a paused one cannot answer, and costs
// each round up to 500 ms.
func (e *Ensemble) LeaderIndex(ctx context.Context) (int, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		for i, s := range e.Servers {
			if !e.Running(i) {
				continue
			}
			c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			out, err := FourLetter(c, s.Addr(), "srvr")
			cancel()
			if err == nil && (strings.Contains(out, "Mode: leader") || strings.Contains(out, "Mode: standalone")) {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("zkserver: no leader: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
