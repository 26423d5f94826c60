// Command zkcoord-bench measures zkcoord beside direct ZooKeeper and etcd:
// it starts a ZooKeeper (or uses -zk), a zkcoord gateway process and an
// etcd (or uses -etcd; -no-etcd for none), drives them through the same
// workloads, and prints every figure with its direct and etcd
// counterparts, both ratios and its targets. docs/BENCHMARKS.md holds the
// results of the full run:
//
//	make bench            # go run ./cmd/zkcoord-bench -out docs/bench
//	zkcoord-bench -workloads lookup,campaign -duration 2s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zkcoord/zkcoord/internal/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "zkcoord-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		zkAddr    = flag.String("zk", "", "ZooKeeper connect string (default: start a private ZooKeeper, fsync on)")
		etcdAddr  = flag.String("etcd", "", "etcd client URL(s), comma-separated (default: start a private etcd, fsync on)")
		noEtcd    = flag.Bool("no-etcd", false, "run without etcd (no etcd column)")
		zkHeap    = flag.String("zk-heap", "", "Java heap of the private ZooKeeper, e.g. 2g (default 256m; -sizes 1000000 needs about 2g)")
		zkNoFsync = flag.Bool("zk-no-fsync", false, "run the private ZooKeeper with forceSync=no (an experiment: how much of a figure is the disk's flush; never production)")
		bin       = flag.String("zkcoord", "", "zkcoord binary to run as the gateway (default: zkcoord next to this binary, then $PATH)")
		out       = flag.String("out", "", "directory for bench.json, bench.md and bench.png (default: print only)")
		logFile   = flag.String("log", "", "file for the gateway's and ZooKeeper's logs")
		workloads = flag.String("workloads", "", "comma-separated workloads to run (default all: "+names()+")")
		quiet     = flag.Bool("q", false, "no progress lines")
		cfg       bench.Config
		conc      = flag.String("concurrency", "1,4,16,64", "concurrent callers swept by lookup and register")
		sizes     = flag.String("sizes", "10,100,1000,10000,100000", "group sizes for growth")
		muxW      = flag.String("mux-watches", "1000,10000,100000", "watches multiplexed on Watch streams, one watchmux run each")
		pollers   = flag.String("pollers", "1,100", "HTTP long-pollers per set in the http workload, one set per count")
	)
	flag.DurationVar(&cfg.Duration, "duration", 5*time.Second, "measured time per load point and system, split over its rounds")
	flag.IntVar(&cfg.Interleave, "interleave", 3, "rounds the systems alternate in at each load point (figures are the rounds' medians)")
	flag.IntVar(&cfg.Callers, "callers", 16, "concurrent callers the ratio targets are read at")
	flag.IntVar(&cfg.Streams, "streams", 10000, "WatchGroup streams in the fan-out")
	flag.IntVar(&cfg.DirectWatch, "direct-watchers", 1000, "direct sessions watching in the fan-out's counterpart")
	flag.IntVar(&cfg.Changes, "changes", 20, "membership changes the fan-out measures (each p99 is over every watch of every change)")
	flag.IntVar(&cfg.MuxStreams, "mux-streams", 16, "Watch streams (one per connection) carrying the watchmux watches")
	flag.IntVar(&cfg.Candidates, "candidates", 100, "Campaign candidates")
	flag.IntVar(&cfg.Failovers, "failovers", 99, "resigns (and lock releases) measured")
	flag.IntVar(&cfg.Waiters, "waiters", 100, "acquirers queued on one lock, or one semaphore, for the handovers")
	flag.IntVar(&cfg.Participants, "participants", 1000, "barrier participants")
	flag.IntVar(&cfg.Rounds, "rounds", 3, "barrier rounds")
	flag.IntVar(&cfg.KeepAlives, "keepalives", 10000, "keepalives counted against ZooKeeper writes")
	flag.IntVar(&cfg.Wakes, "wakes", 300, "changes each set of HTTP long-pollers sees, over the rounds")
	flag.IntVar(&cfg.PHPProcs, "php-procs", 1000, "php processes per side of the php workload (one at a time)")
	flag.Parse()
	var err error
	if cfg.Concurrency, err = ints(*conc); err != nil {
		return fmt.Errorf("-concurrency: %w", err)
	}
	if cfg.Sizes, err = ints(*sizes); err != nil {
		return fmt.Errorf("-sizes: %w", err)
	}
	if cfg.MuxWatches, err = ints(*muxW); err != nil {
		return fmt.Errorf("-mux-watches: %w", err)
	}
	if cfg.Pollers, err = ints(*pollers); err != nil {
		return fmt.Errorf("-pollers: %w", err)
	}
	if *zkNoFsync && *zkAddr != "" {
		return errors.New("-zk-no-fsync sets the private ZooKeeper's flush; with -zk the ZooKeeper is not private and its own config decides")
	}
	if !*quiet {
		cfg.Log = os.Stderr
	}
	if *bin == "" {
		if *bin, err = findZkcoord(); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var logw io.Writer
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			return err
		}
		defer f.Close()
		logw = f
	}
	env, err := bench.Setup(ctx, bench.EnvOptions{ZK: *zkAddr, Bin: *bin, Log: logw, Etcd: *etcdAddr, NoEtcd: *noEtcd, ZKHeap: *zkHeap, ZKNoFsync: *zkNoFsync})
	if err != nil {
		return err
	}
	defer env.Close()
	if cfg.Log != nil {
		fmt.Fprintf(cfg.Log, "ZooKeeper %s; gateway %s (pid %d), pprof at http://%s/debug/pprof/; etcd %q (pid %d)\n", env.ZK, env.Gateway, env.Pid, env.DebugAddr, env.Etcd, env.EtcdPid())
	}
	if *zkNoFsync {
		fmt.Println("ZooKeeper runs with forceSync=no: its writes are acknowledged before they are on disk; these figures are an experiment, not a comparison")
	}
	start := time.Now()
	var only []string
	if *workloads != "" {
		only = strings.Split(*workloads, ",")
	}
	res, err := bench.NewRunner(env, cfg).Run(ctx, only...)
	if err != nil {
		return err
	}
	took := time.Since(start).Round(time.Second)
	fmt.Println()
	bench.WriteTable(os.Stdout, res.Figures)
	missed := 0
	for _, f := range res.Figures {
		if f.Missed() {
			missed++
		}
	}
	fmt.Printf("\n%d figures, %d with a target, %d missed; took %v on %d CPUs (%s/%s)\n", len(res.Figures), targets(res.Figures), missed, took, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	if *out == "" {
		return nil
	}
	return write(*out, res, strings.Join(os.Args[1:], " "), took)
}

func write(dir string, res bench.Results, args string, took time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "bench.json"))
	if err != nil {
		return err
	}
	if err := bench.WriteJSON(f, res.Figures); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Generated by `zkcoord-bench %s` in %v on %d CPUs.\n\n", args, took, runtime.NumCPU())
	bench.WriteMarkdown(&b, res.Figures)
	if err := os.WriteFile(filepath.Join(dir, "bench.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	files := "bench.json, bench.md"
	if len(res.Points) > 0 {
		if err := bench.Plot(res.Points, filepath.Join(dir, "bench.png")); err != nil {
			return err
		}
		files += ", bench.png"
	}
	fmt.Printf("wrote %s/%s\n", dir, files)
	return nil
}

func targets(figs []bench.Figure) int {
	n := 0
	for _, f := range figs {
		if f.HasTarget() {
			n++
		}
	}
	return n
}

func names() string {
	var ns []string
	for _, w := range bench.Workloads {
		ns = append(ns, w.Name)
	}
	return strings.Join(ns, ",")
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// findZkcoord looks for the zkcoord binary next to this one, then in PATH.
func findZkcoord() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "zkcoord")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("zkcoord")
	if err != nil {
		return "", errors.New("no zkcoord binary: run make build (bin/zkcoord) or pass -zkcoord")
	}
	return p, nil
}
