package bench

import (
	"os"
	"testing"
	"time"
)

// TestCPUMeterCountsTheRun: the meter counts this process's CPU between
// its before and after, and the machine was busy at least that long.
func TestCPUMeterCountsTheRun(t *testing.T) {
	m := newCPUMeter(&Env{})
	if err := m.before(); err != nil {
		t.Fatal(err)
	}
	start, deadline := procCPU(os.Getpid()), time.Now().Add(20*time.Second)
	for procCPU(os.Getpid())-start < 300*time.Millisecond && time.Now().Before(deadline) {
		for range 1_000_000 { // spin
		}
	}
	if err := m.after(); err != nil {
		t.Fatal(err)
	}
	if m.procs < 300*time.Millisecond {
		t.Errorf("processes' CPU %v, want at least the 300ms spun", m.procs)
	}
	if m.busy < 250*time.Millisecond || m.all < m.busy {
		t.Errorf("machine busy %v of %v, want at least the spin's", m.busy, m.all)
	}
	if got := m.perCall(3); got < 1e5 {
		t.Errorf("per call of 3: %.0f µs, want at least 100,000", got)
	}
	if s := m.busyShare(); s <= 0 || s > 100 {
		t.Errorf("busy share %.1f%%", s)
	}
	m.reset()
	if m.procs != 0 || m.busy != 0 || m.all != 0 {
		t.Error("reset left sums")
	}
}
