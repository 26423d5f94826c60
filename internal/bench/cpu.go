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
	env                 *Env
	procs, busy, all    time.Duration // sums over the rounds
	procs0, busy0, all0 time.Duration
}

func newCPUMeter(env *Env) *cpuMeter { return &cpuMeter{env: env} }

func (m *cpuMeter) before() error {
	m.procs0 = m.procsCPU()
	m.busy0, m.all0 = machineCPU()
	return nil
}

func (m *cpuMeter) after() error {
	m.procs += m.procsCPU() - m.procs0
	busy, all := machineCPU()
	m.busy += busy - m.busy0
	m.all += all - m.all0
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

// otherShare is the share of the machine's CPU time that went to
// processes outside the run over the rounds, in percent: near 0 on a
// quiet machine; more, and something else took cores from the run.
func (m *cpuMeter) otherShare() float64 {
	if m.all <= 0 {
		return math.NaN()
	}
	return 100 * float64(max(m.busy-m.procs, 0)) / float64(m.all)
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

// metered gives each of systems the meter of ms at its index, reset, run
// around its rounds before its own before and after the system's after.
func metered(ms []*cpuMeter, systems []system) []system {
	for i := range systems {
		m := ms[i]
		m.reset()
		systems[i].before = both(m.before, systems[i].before)
		systems[i].after = both(m.after, systems[i].after)
	}
	return systems
}

// cpuReading is what the meters of a load point's systems read: zkcoord,
// direct and etcd, NaN for a system the point did not run.
type cpuReading struct{ perCall, busy, other [3]float64 }

// readCPU reads the meters of the systems whose medians are st.
func readCPU(ms []*cpuMeter, st []Stat) cpuReading {
	none := [3]float64{math.NaN(), math.NaN(), math.NaN()}
	rd := cpuReading{perCall: none, busy: none, other: none}
	for i := range min(len(st), len(ms), 3) {
		rd.perCall[i], rd.busy[i], rd.other[i] = ms[i].perCall(st[i].Calls), ms[i].busyShare(), ms[i].otherShare()
	}
	return rd
}

// figures are the reading's figures: the CPU per call of every process,
// the machine's busy share, and zkcoord's ceiling at its CPU per call
// beside direct's and etcd's measured throughput (thr: zkcoord, direct,
// etcd), whose ratios are the best this machine allows zkcoord at that
// cost.
func (rd cpuReading) figures(workload, call, suffix string, thr [3]float64) []Figure {
	cpu := info(workload, "CPU per "+call+", every process"+suffix, "µs", rd.perCall[0], rd.perCall[1], Lower).withEtcd(rd.perCall[2])
	cpu.Note = "user+system CPU (/proc) of every process of the run (the bench with its clients, the gateway, ZooKeeper, etcd) over the system's rounds, warm-ups included, per call"
	busy := info(workload, "machine CPU busy"+suffix, "%", rd.busy[0], rd.busy[1], Lower).withEtcd(rd.busy[2])
	busy.Note = "the machine's busy CPU time over its total (/proc/stat) during the system's rounds: near 100, its cores were the limit"
	other := info(workload, "machine CPU outside the run"+suffix, "%", rd.other[0], rd.other[1], Lower).withEtcd(rd.other[2])
	other.Note = "the machine's busy CPU time less the run's processes' (/proc/stat, /proc/<pid>/stat) over its total, during the system's rounds: near 0 on a quiet machine; more, and something else took cores from the run, whose figures are then not a quiet reading"
	ceil := info(workload, "throughput ceiling: cores / CPU per "+call+suffix, "ops/s", ceiling(rd.perCall[0]), thr[1], Higher).withEtcd(thr[2])
	ceil.Note = fmt.Sprintf("the machine's %d cores over zkcoord's CPU per call (above); the direct and etcd columns are their measured throughputs, so the ratios are the highest zkcoord's throughput ratios can be on this machine at that cost", runtime.NumCPU())
	return []Figure{cpu, busy, other, ceil}
}

// both runs a, then b (a system's before or after made of two); a nil one
// is skipped.
func both(a, b func() error) func() error {
	return func() error {
		for _, f := range []func() error{a, b} {
			if f == nil {
				continue
			}
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}
}
