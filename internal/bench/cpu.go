package bench

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// cpuMeter adds up, around each round of one system (its before and
// after), the CPU time of every process of the run on this machine (this
// process with its clients, the gateway, ZooKeeper, etcd) and the
// machine's busy and total CPU time (/proc/stat). It says what a call
// costs the machine, and whether the machine's cores were the limit: at
// that cost, no more than cores / cost calls a second fit on them, which
// is the ceiling of a CPU-bound figure on this machine.
type cpuMeter struct {
	env               *Env
	procs, busy, all  time.Duration // sums over the rounds
	procs0, busy0, a0 time.Duration
}

func newCPUMeter(env *Env) *cpuMeter { return &cpuMeter{env: env} }

func (m *cpuMeter) before() error {
	m.procs0 = m.procsCPU()
	m.busy0, m.a0 = machineCPU()
	return nil
}

func (m *cpuMeter) after() error {
	m.procs += m.procsCPU() - m.procs0
	busy, all := machineCPU()
	m.busy += busy - m.busy0
	m.all += all - m.a0
	return nil
}

// reset starts the sums again (a new load point).
func (m *cpuMeter) reset() { m.procs, m.busy, m.all = 0, 0, 0 }

func (m *cpuMeter) procsCPU() time.Duration {
	gw, zk := m.env.CPU()
	return procCPU(os.Getpid()) + gw + zk + procCPU(m.env.EtcdPid())
}

// perCall is the processes' CPU per call in µs, over calls (every call of
// the rounds, warm-ups included, as the CPU counts them).
func (m *cpuMeter) perCall(calls int) float64 {
	if calls == 0 {
		return math.NaN()
	}
	return us(m.procs / time.Duration(calls))
}

// busyShare is the share of the machine's CPU time that was busy over the
// rounds, in percent.
func (m *cpuMeter) busyShare() float64 {
	if m.all <= 0 {
		return math.NaN()
	}
	return 100 * float64(m.busy) / float64(m.all)
}

// ceiling is the most calls a second that the machine's cores can make at
// perCall µs of CPU each.
func ceiling(perCall float64) float64 {
	return float64(runtime.NumCPU()) * 1e6 / perCall
}

// machineCPU reads the machine's busy and total CPU time from the first
// line of /proc/stat (busy: all but idle and iowait); zero when it cannot.
func machineCPU() (busy, all time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle int64
	for i, s := range f[1:] {
		if i >= 8 { // guest time is counted in user already
			break
		}
		v, _ := strconv.ParseInt(s, 10, 64)
		sum += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	tick := time.Second / 100 // USER_HZ
	return time.Duration(sum-idle) * tick, time.Duration(sum) * tick
}

// cpuPerCall is the figure of a cpuMeter's perCall, zkcoord's and
// direct's.
func cpuPerCall(workload, name string, perCall [2]float64) Figure {
	f := info(workload, name, "µs", perCall[0], perCall[1], Lower)
	f.Note = "user+system CPU (/proc) of every process of the run (the bench with its clients, the gateway, ZooKeeper, etcd) over the system's rounds, warm-ups included, per call"
	return f
}

// busyFigure is the figure of a cpuMeter's busyShare, zkcoord's and
// direct's.
func busyFigure(workload, name string, busy [2]float64) Figure {
	f := info(workload, name, "%", busy[0], busy[1], Lower)
	f.Note = "the machine's busy CPU time over its total (/proc/stat) during the system's rounds: near 100, its cores were the limit"
	return f
}

// ceilingFigure is the most calls a second the machine's cores make at
// zkcoord's CPU per call, beside direct's measured throughput: its ratio
// is the best ratio to direct this machine allows at that cost.
func ceilingFigure(workload, name string, perCall, direct float64) Figure {
	f := info(workload, name, "ops/s", ceiling(perCall), direct, Higher)
	f.Note = fmt.Sprintf("the machine's %d cores over zkcoord's CPU per call (every process, above); the direct column is direct's measured throughput, so the ratio is the highest zkcoord's throughput ratio can be on this machine at that cost", runtime.NumCPU())
	return f
}

// both runs a, then b (a system's before or after made of two).
func both(a, b func() error) func() error {
	return func() error {
		if err := a(); err != nil {
			return err
		}
		return b()
	}
}
