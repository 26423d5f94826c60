package chaosrun

import (
	"github.com/zkcoord/zkcoord/internal/testing/zktest"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/zkcoord/zkcoord/client"
	leasepkg "github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/chaos"
	"github.com/zkcoord/zkcoord/internal/testing/checker"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Config describes a run.
type Config struct {
	Seed       int64
	Duration   time.Duration // how long faults are injected (default 60s)
	FaultEvery time.Duration // pause between two faults (default 2s)
	Faults     []Fault       // kinds to draw from (default AllFaults)
	Replicas   int           // gateway replicas (default 2)
	ZooKeepers int           // ZooKeeper servers (default 3)
	// SessionTimeout is the replicas' ZooKeeper session timeout (default 2s);
	// LeaseTTL the clients' lease TTL (default 6s), which must exceed it.
	SessionTimeout time.Duration
	LeaseTTL       time.Duration
	Electors       int // candidates in one election (default 3)
	Lockers        int // clients of each lock of the lock workload (default 3)
	Registrants    int // clients registering, deregistering, looking up (default 3)
	Watchers       int // WatchGroup streams (default 2)
	Acquirers      int // acquirers of one semaphore of 2 permits (default 4)
	Bin            string
	Log            *slog.Logger
	// LogDir receives the replicas' and ZooKeeper's logs and the history
	// (history.jsonl); it is kept after the run. Default: a directory
	// removed with the cluster.
	LogDir string
	// LinearizableBudget bounds the linearizability check (default 1m);
	// partitions it does not reach are reported unchecked.
	LinearizableBudget time.Duration
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defd(&c.Duration, 60*time.Second)
	defd(&c.FaultEvery, 2*time.Second)
	defd(&c.SessionTimeout, 2*time.Second)
	defd(&c.LeaseTTL, 6*time.Second)
	defd(&c.LinearizableBudget, time.Minute)
	def(&c.Replicas, 2)
	def(&c.ZooKeepers, 3)
	def(&c.Electors, 3)
	def(&c.Lockers, 3)
	def(&c.Registrants, 3)
	def(&c.Watchers, 2)
	def(&c.Acquirers, 4)
	if len(c.Faults) == 0 {
		c.Faults = AllFaults
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Result is what a run saw and what the checkers made of it.
type Result struct {
	Report checker.Report
	Faults map[Fault]int
	// Terms counts leadership terms (distinct fencing tokens), Resigns and
	// Crashes how they were handed over by the electors.
	Terms, Resigns, Crashes int
	// Locks counts the lock workload's holds and fenced operations.
	Locks LockFigures
	// Permits counts semaphore permits (distinct tokens held),
	// PermitsEnded those whose holder stopped without a release or a
	// LOST: acquirers that crashed, and streams that faults broke.
	Permits, PermitsEnded int
	Events                int
	Took                  time.Duration
}

func (r Result) String() string {
	var b strings.Builder
	kinds := make([]string, 0, len(r.Faults))
	total := 0
	for f, n := range r.Faults {
		kinds = append(kinds, fmt.Sprintf("%s=%d", f, n))
		total += n
	}
	sort.Strings(kinds)
	fmt.Fprintf(&b, "faults: %d (%s); leadership terms: %d (resigns %d, client crashes %d); semaphore permits: %d (ended by a crash or a broken stream %d); events recorded: %d; took %v\n",
		total, strings.Join(kinds, " "), r.Terms, r.Resigns, r.Crashes, r.Permits, r.PermitsEnded, r.Events, r.Took.Round(time.Second))
	fmt.Fprintf(&b, "%s\n", r.Locks)
	b.WriteString(r.Report.String())
	return b.String()
}

// run is one run's shared state.
type run struct {
	cfg     Config
	cluster *chaos.Cluster
	h       *checker.History
	rng     *rand.Rand
	conn    *grpc.ClientConn // to every replica, for the stub workloads
	target  string
	group   string
	ctx     context.Context // the run's: keepalives in flight and revokes outlive the workloads
	truth   *zkx.Session    // reads ZooKeeper directly: leases' owners, the members at the end
	lay     zktest.Layout
	rec     *recorder // follows the group's journal: the ground truth
}

// Run starts a cluster, runs the workloads under faults for cfg.Duration,
// lets the system settle, and checks every invariant.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if cfg.LeaseTTL <= cfg.SessionTimeout {
		return Result{}, fmt.Errorf("chaosrun: lease TTL %v must exceed the session timeout %v", cfg.LeaseTTL, cfg.SessionTimeout)
	}
	start := time.Now()
	cl, err := chaos.StartCluster(ctx, chaos.Options{ZooKeepers: cfg.ZooKeepers, Replicas: cfg.Replicas, Bin: cfg.Bin,
		SessionTimeout: cfg.SessionTimeout, StreamTTL: cfg.LeaseTTL, Logger: cfg.Log, LogDir: cfg.LogDir})
	if err != nil {
		return Result{}, err
	}
	defer cl.Stop()
	conn, err := client.Dial(cl.Target())
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	truth, err := zkx.Dial(ctx, cl.ZK().ConnectString())
	if err != nil {
		return Result{}, err
	}
	defer truth.Close()
	r := &run{cfg: cfg, cluster: cl, h: checker.NewHistory(), rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 1)),
		conn: conn, target: cl.Target(), group: "reg", ctx: ctx, truth: truth, lay: zktest.Layout{Root: "/zkcoord"}}
	if r.rec, err = startRecorder(ctx, cl.ZK().ConnectString(), r.lay, r.group, cfg.Log); err != nil {
		return Result{}, err
	}
	defer r.rec.close()

	// Workloads run until stop; faults until the duration is over.
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	spawn := func(fn func(ctx context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(wctx)
		}()
	}
	res := &resource{}
	for i := range cfg.Electors {
		spawn(func(ctx context.Context) { r.elector(ctx, fmt.Sprintf("e%d", i), res, uint64(i)) })
	}
	for i := range cfg.Registrants {
		g := &registrant{r: r, id: fmt.Sprintf("g%d", i), rng: rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(100+i)))}
		spawn(g.loop)
	}
	// Watchers outlive the churn: convergence is judged on their streams
	// once the churn has stopped and every abandoned lease has ended.
	wwctx, stopWatchers := context.WithCancel(ctx)
	var wwg sync.WaitGroup
	defer func() {
		stopWatchers()
		wwg.Wait()
	}()
	var watchers []*watcher
	for i := range cfg.Watchers {
		w := &watcher{r: r, id: fmt.Sprintf("w%d", i)}
		watchers = append(watchers, w)
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			w.loop(wwctx)
		}()
	}
	spawn(r.barriers)
	r.lockers(spawn)
	for i := range cfg.Acquirers {
		spawn(func(ctx context.Context) { r.acquirer(ctx, fmt.Sprintf("s%d", i), uint64(i)) })
	}

	faults := map[Fault]int{}
	fctx, fcancel := context.WithTimeout(ctx, cfg.Duration)
	for fctx.Err() == nil {
		if sleep(fctx, cfg.FaultEvery) != nil {
			break
		}
		f := cfg.Faults[r.rng.IntN(len(cfg.Faults))]
		began := time.Now()
		r.h.Record(checker.Event{Kind: checker.KindFault, Value: string(f) + " begins"})
		desc, victim, drained, err := inject(ctx, cl, f, r.rng, cfg.SessionTimeout)
		if err != nil {
			fcancel()
			stop()
			wg.Wait()
			return Result{}, fmt.Errorf("chaosrun: fault %s: %w", f, err)
		}
		faults[f]++
		r.h.Record(checker.Event{Kind: checker.KindFault, Value: desc, Replica: victim, Drained: drained, From: began, To: time.Now()})
		cfg.Log.Info("chaosrun: fault", "fault", f, "what", desc)
	}
	fcancel()

	// Settle: every replica serving again, then churn stops.
	for _, rep := range cl.Replicas() {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := rep.AwaitServing(sctx)
		cancel()
		if err != nil {
			stop()
			wg.Wait()
			return Result{}, fmt.Errorf("chaosrun: replica %s not serving after the faults: %w", rep.ID, err)
		}
	}
	sleep(ctx, cfg.SessionTimeout)
	stop()
	wg.Wait()

	report, err := r.check(ctx, watchers)
	if err != nil {
		return Result{}, err
	}
	if cfg.LogDir != "" {
		if err := writeHistory(filepath.Join(cfg.LogDir, "history.jsonl"), r.h); err != nil {
			return Result{}, err
		}
	}
	out := Result{Report: report, Faults: faults, Events: r.h.Len(), Took: time.Since(start)}
	tokens, permits := map[int64]bool{}, map[int64]bool{}
	for _, ev := range r.h.Events() {
		switch ev.Kind {
		case checker.KindPermitHeld:
			permits[ev.Token] = true
		case checker.KindPermitEnded:
			out.PermitsEnded++
		case checker.KindElected:
			tokens[ev.Token] = true
		case checker.KindResigned:
			out.Resigns++
		case checker.KindLeaseAbandoned:
			if strings.HasPrefix(ev.Client, "e") { // an elector crashed
				out.Crashes++
			}
		}
	}
	out.Locks = countLocks(r.h.Events())
	out.Terms, out.Permits = len(tokens), len(permits)
	return out, nil
}

// check waits until every lease the churn left has passed its deadline
// (by then the group no longer changes), measures convergence, reads the
// rest of the truth, and runs every checker.
func (r *run) check(ctx context.Context, watchers []*watcher) (checker.Report, error) {
	if err := sleep(ctx, time.Until(r.settled())); err != nil {
		return nil, err
	}
	// Convergence: the truth now, every watcher's state 2 s later. Should
	// the group change meanwhile (a lease of a failed replica ending late),
	// measure again from the new truth.
	var (
		at  time.Time
		now map[string]string
		obs []checker.Observation
	)
	for attempt := 0; ; attempt++ {
		at = time.Now()
		var err error
		if now, err = readGroup(r.truth, r.lay, r.group); err != nil {
			return nil, err
		}
		sleep(ctx, 2*time.Second)
		obs = obs[:0]
		for _, w := range watchers {
			obs = append(obs, w.observation())
		}
		after, err := readGroup(r.truth, r.lay, r.group)
		if err != nil {
			return nil, err
		}
		if maps.Equal(now, after) || attempt == 4 {
			break
		}
		r.cfg.Log.Info("chaosrun: group changed while measuring convergence; again", "attempt", attempt)
	}
	truth, members, err := r.rec.finish(ctx)
	if err != nil {
		return nil, fmt.Errorf("chaosrun: read the truth: %w", err)
	}
	r.nameLeases(truth)
	// A lease ends within its TTL + 1 s of its last renewal, or, when its
	// owning replica failed meanwhile, once that replica's session has
	// expired and another replica adopted it (docs/REPLICAS.md): the
	// failover grace adds the session timeout for those only.
	report := checker.CheckAll(r.h, truth, r.cfg.LinearizableBudget, checker.WithSlack(50*time.Millisecond),
		checker.WithLateGrace(time.Second), checker.WithFailoverGrace(time.Second+r.cfg.SessionTimeout), checker.WithMore())
	report = append(report, checker.CheckTruth(truth, members),
		checker.CheckConvergence(map[string]map[string]string{r.group: now}, at, obs, 2*time.Second))
	if r.cfg.LogDir != "" {
		if err := writeTruth(filepath.Join(r.cfg.LogDir, "truth.jsonl"), truth); err != nil {
			return nil, err
		}
	}
	return report, nil
}

// settled returns when every lease the registrants held has passed its
// latest deadline: TTL + session timeout + 1 s after its last renewal
// (acknowledged or not), plus a margin.
func (r *run) settled() time.Time {
	var last time.Time
	for _, e := range r.h.Events() {
		switch {
		case e.Kind == checker.KindKeepAliveOK, e.Kind == checker.KindKeepAliveFailed,
			e.Kind == checker.KindRegister && e.Lease != "":
			if e.Return.After(last) {
				last = e.Return
			}
		}
	}
	return last.Add(r.cfg.LeaseTTL + r.cfg.SessionTimeout + 1200*time.Millisecond)
}

// nameLeases replaces the lease keys of the truth's changes (the member
// records hold a lease's key, the hash of its id) with the lease ids the
// history uses.
func (r *run) nameLeases(t *checker.Truth) {
	ids := map[string]string{}
	for _, e := range r.h.Events() {
		if e.Lease != "" {
			ids[leasepkg.KeyOf(e.Lease)] = e.Lease
		}
	}
	for i, c := range t.Changes {
		if id, ok := ids[c.Lease]; ok {
			t.Changes[i].Lease = id
		}
	}
}

func readGroup(sess *zkx.Session, lay zktest.Layout, group string) (map[string]string, error) {
	c := sess.Conn()
	ids, _, err := c.Children(lay.Members(group))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, id := range ids {
		data, _, err := c.Get(lay.Member(group, id))
		if err != nil {
			continue
		}
		out[id] = valueOf(data)
	}
	return out, nil
}

var errStopped = errors.New("chaosrun: stopped")
