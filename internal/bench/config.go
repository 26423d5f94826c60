package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/zkcoord/zkcoord/internal/election"
	"github.com/zkcoord/zkcoord/internal/registry"
)

// Config sets the scale of a run. The zero value is the full run that
// docs/BENCHMARKS.md reports.
type Config struct {
	Duration     time.Duration // measured time per load point and system, over all its rounds (default 5s)
	Interleave   int           // rounds the systems alternate in at each load point (default 3)
	Concurrency  []int         // callers swept for the plot (default 1,4,16,64)
	Callers      int           // callers the ratio targets are read at (default 16)
	Streams      int           // WatchGroup streams for the fan-out (default 10000)
	DirectWatch  int           // direct sessions watching for the fan-out's counterpart (default 1000)
	Changes      int           // membership changes the fan-out measures (default 20)
	MuxWatches   []int         // watches multiplexed on Watch streams, per watchmux run (default 1000,10000,100000)
	MuxStreams   int           // Watch streams (one per connection) carrying them (default 16)
	Candidates   int           // Campaign candidates (default 100)
	Failovers    int           // resigns (and lock releases) measured (default 99)
	Waiters      int           // acquirers queued on one lock, or one semaphore, for the handovers (default 100)
	Participants int           // barrier participants (default 1000)
	Rounds       int           // barrier rounds (default 3)
	Sizes        []int         // group sizes for growth (default 10..100000)
	KeepAlives   int           // keepalives counted against ZooKeeper writes (default 10000)
	PHPProcs     int           // php processes per side of the php workload, one at a time (default 1000)
	Pollers      []int         // HTTP long-pollers per set, one set per count, in the http workload (default 1,100)
	Wakes        int           // changes each set of long-pollers sees, over the rounds (default 300)
	// Log receives progress lines (default discarded).
	Log io.Writer
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if len(c.Concurrency) == 0 {
		c.Concurrency = []int{1, 4, 16, 64}
	}
	def(&c.Callers, 16)
	def(&c.Interleave, 3)
	def(&c.Streams, 10000)
	def(&c.DirectWatch, 1000)
	def(&c.Changes, 20)
	def(&c.MuxStreams, 16)
	if len(c.MuxWatches) == 0 {
		c.MuxWatches = []int{1000, 10000, 100000}
	}
	def(&c.Candidates, 100)
	def(&c.Failovers, 99)
	def(&c.Waiters, 100)
	def(&c.Participants, 1000)
	def(&c.Rounds, 3)
	def(&c.KeepAlives, 10000)
	def(&c.PHPProcs, 1000)
	def(&c.Wakes, 300)
	if len(c.Pollers) == 0 {
		c.Pollers = []int{1, 100}
	}
	if len(c.Sizes) == 0 {
		c.Sizes = []int{10, 100, 1000, 10000, 100000}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// Point is one load point of a sweep, for the plot.
type Point struct {
	Series      string  `json:"series"` // e.g. "zkcoord Lookup cached"
	Concurrency int     `json:"concurrency"`
	Throughput  float64 `json:"ops_per_s"`
	P50, P99    float64 `json:"-"` // milliseconds
}

// Results is what a run measured.
type Results struct {
	Figures []Figure
	Points  []Point
}

// Workload is one named part of the run.
type Workload struct {
	Name string
	Run  func(r *Runner, ctx context.Context) error
}

// Workloads lists every workload in the order they run.
var Workloads = []Workload{
	{"lookup", (*Runner).lookup},
	{"http", (*Runner).httpFace},
	{"register", (*Runner).register},
	{"keepalive", (*Runner).keepalive},
	{"watch", (*Runner).watch},
	{"watchmux", (*Runner).watchmux},
	{"campaign", (*Runner).campaign},
	{"lock", (*Runner).lock},
	{"barrier", (*Runner).barrier},
	{"semaphore", (*Runner).semaphore},
	{"growth", (*Runner).growth},
	{"oneshot", (*Runner).oneShot}, // late: its members' leases lapse after the run
	{"php", (*Runner).php},         // last: its members' leases lapse after the run
}

// Runner runs workloads against an Env.
type Runner struct {
	cfg       Config
	env       *Env
	groups    registry.Layout // the gateway's znodes
	elections election.Layout
	// direct is where the direct client's znodes go.
	direct string
	res    Results
}

// NewRunner returns a runner for env with cfg.
func NewRunner(env *Env, cfg Config) *Runner {
	return &Runner{cfg: cfg.withDefaults(), env: env, groups: registry.Layout{Root: env.Root}, elections: election.Layout{Root: env.Root}, direct: env.Root + "-direct"}
}

// Run runs the named workloads (every one when names is empty). Log gets
// a line as each starts ("== [2/10] register") and one as it ends, with
// its duration and the run's so far ("== [2/10] register took 41.2s
// (run 1m3s)").
func (r *Runner) Run(ctx context.Context, names ...string) (Results, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var run []Workload
	for _, w := range Workloads {
		if len(want) == 0 || want[w.Name] {
			run = append(run, w)
		}
	}
	began := time.Now()
	for i, w := range run {
		r.logf("== [%d/%d] %s", i+1, len(run), w.Name)
		start := time.Now()
		if err := w.Run(r, ctx); err != nil {
			return r.res, fmt.Errorf("bench: %s: %w", w.Name, err)
		}
		r.logf("== [%d/%d] %s took %v (run %v)", i+1, len(run), w.Name, time.Since(start).Round(100*time.Millisecond),
			time.Since(began).Round(time.Second))
	}
	return r.res, nil
}

// etcdRoot is the prefix of this run's etcd keys (fresh per run, as Root
// is for ZooKeeper, so that an -etcd server can be reused).
func (r *Runner) etcdRoot() string { return r.env.Root }

func (r *Runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, format+"\n", args...)
}

func (r *Runner) add(f ...Figure) { r.res.Figures = append(r.res.Figures, f...) }

func (r *Runner) point(series string, c int, s Sample) {
	r.res.Points = append(r.res.Points, Point{Series: series, Concurrency: c, Throughput: s.Throughput(),
		P50: ms(s.Quantile(0.5)), P99: ms(s.Quantile(0.99))})
	r.logf("  %-34s c=%-3d %8.0f ops/s  p50 %6.2f ms  p99 %6.2f ms  errors %d %v", series, c, s.Throughput(),
		ms(s.Quantile(0.5)), ms(s.Quantile(0.99)), s.Errors, errText(s.FirstErr))
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return "(" + err.Error() + ")"
}
