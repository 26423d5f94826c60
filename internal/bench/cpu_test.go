package bench

import (
	"math"
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
	if s := m.otherShare(); s < 0 || s >= m.busyShare() {
		t.Errorf("share outside the run %.1f%%: the spin was this process's", s)
	}
	m.reset()
	if m.procs != 0 || m.busy != 0 || m.all != 0 {
		t.Error("reset left sums")
	}
}

// TestMeteredKeepsTheSystemsOwnHooks: metered puts a fresh meter around
// each system's rounds and still runs the system's own before and after;
// a system the point did not run reads NaN.
func TestMeteredKeepsTheSystemsOwnHooks(t *testing.T) {
	ms := []*cpuMeter{newCPUMeter(&Env{}), newCPUMeter(&Env{}), newCPUMeter(&Env{})}
	ms[0].procs = time.Hour // left from an earlier load point
	var befores, afters int
	systems := metered(ms, []system{
		{name: "a", before: func() error { befores++; return nil }, after: func() error { afters++; return nil }},
		{name: "b"},
	})
	if ms[0].procs != 0 {
		t.Error("the meter was not reset")
	}
	for _, s := range systems {
		if err := s.before(); err != nil {
			t.Fatal(err)
		}
		for start := procCPU(os.Getpid()); procCPU(os.Getpid())-start < 20*time.Millisecond; {
		}
		if err := s.after(); err != nil {
			t.Fatal(err)
		}
	}
	if befores != 1 || afters != 1 {
		t.Errorf("the system's own hooks ran %d and %d times, want 1 and 1", befores, afters)
	}
	rd := readCPU(ms, []Stat{{Calls: 1}, {Calls: 1}})
	if rd.perCall[0] <= 0 || rd.perCall[1] <= 0 {
		t.Errorf("CPU per call %v: both systems' rounds spun", rd.perCall)
	}
	if !math.IsNaN(rd.perCall[2]) || !math.IsNaN(rd.busy[2]) {
		t.Errorf("a third system that did not run read %v, %v", rd.perCall[2], rd.busy[2])
	}
}
