package bench

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// phpScripts are the processes the php workload runs: http_register.php
// (one PUT to the gateway) and zk_register.php (a ZooKeeper session of its
// own, in ZooKeeper's wire protocol).
//
//go:embed php/*.php
var phpScripts embed.FS

// phpTTL is the TTL of the members the PHP processes register through the
// gateway: longer than any run, so that every member is still there when
// they are counted.
const phpTTL = 10 * time.Minute

// php: the talk's caveat, "issues with very short sessions (e.g. PHP web
// processes) popping up and down", measured. PHPProcs real php processes
// (PHPParallel at a time) each register a member and exit: through the
// gateway, one HTTP PUT with a TTL; beside that, the same processes each
// opening a ZooKeeper session, creating an ephemeral node and closing the
// session, as php-zookeeper does. Each process times its own registration
// call; the workload times each process, counts the sessions ZooKeeper
// was asked for (mntr) and the members left. A Go caller's gRPC Register
// with a TTL on a warm connection is the reference the HTTP registration
// is held to.
func (r *Runner) php(ctx context.Context) error {
	php, err := exec.LookPath("php")
	if err != nil {
		return fmt.Errorf("needs php with its curl extension (Debian's php8.2-cli php8.2-curl): %w", err)
	}
	dir, err := os.MkdirTemp("", "zkcoord-bench-php-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, name := range []string{"http_register.php", "zk_register.php"} {
		b, err := phpScripts.ReadFile("php/" + name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	n, par := r.cfg.PHPProcs, r.cfg.PHPParallel

	// Direct: a session per process.
	direct, err := r.env.Direct(ctx)
	if err != nil {
		return err
	}
	defer direct.Close()
	parent := path.Join(r.direct, "php")
	if err := zkx.EnsurePath(direct, parent, zk.WorldACL(zk.PermAll)); err != nil {
		return err
	}
	zkAddr := strings.Split(r.env.ZK, ",")[0]
	d, err := r.phpRun(ctx, php, "direct", n, par, func(i int) []string {
		return []string{filepath.Join(dir, "zk_register.php"), zkAddr, path.Join(parent, fmt.Sprint("p", i)), "10.0.0.1:80"}
	}, nil)
	if err != nil {
		return err
	}
	left, _, err := direct.Children(parent)
	if err != nil {
		return err
	}
	d.visible = len(left)

	// The references: gRPC Register with a TTL from one Go caller on a warm
	// connection, back to back, and one call after each PHP process (the
	// same moments, the same idle gaps between calls).
	reg := pb.NewRegistryServiceClient(r.env.Conn())
	goRegister := func(ctx context.Context, id string) error {
		_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "php-grpc", MemberId: id, Value: "10.0.0.1:80", Ttl: durationpb.New(phpTTL)})
		return err
	}
	b2b := Closed(ctx, 1, r.cfg.Duration, func(ctx context.Context, _, i int) error { return goRegister(ctx, fmt.Sprint("b", i)) })
	if b2b.Ops == 0 {
		return fmt.Errorf("gRPC Register: %v", b2b.FirstErr)
	}
	r.logf("  %-8s gRPC Register with TTL back to back: %d calls, p50 %.2f ms, p99 %.2f ms", "Go", b2b.Ops, ms(b2b.Quantile(0.5)), ms(b2b.Quantile(0.99)))

	// The gateway: one HTTP call per process.
	const group = "php"
	var (
		mu      sync.Mutex
		between []time.Duration
	)
	gw, err := r.phpRun(ctx, php, "zkcoord", n, par, func(i int) []string {
		return []string{filepath.Join(dir, "http_register.php"), r.env.HTTP, group, fmt.Sprint("p", i), "10.0.0.1:80", fmt.Sprintf("%.0fs", phpTTL.Seconds())}
	}, func(i int) error {
		t0 := time.Now()
		if err := goRegister(ctx, fmt.Sprint("i", i)); err != nil {
			return err
		}
		mu.Lock()
		between = append(between, time.Since(t0))
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	between = sortedDurations(between)
	r.logf("  %-8s gRPC Register with TTL after each PHP process: p50 %.2f ms, p99 %.2f ms", "Go", ms(quantile(between, 0.5)), ms(quantile(between, 0.99)))
	look, err := reg.Lookup(ctx, &pb.LookupRequest{Group: group, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
	if err != nil {
		return err
	}
	gw.visible = len(look.Members)

	w := fmt.Sprintf("PHP processes (%d, %s)", n, map[bool]string{true: "one at a time", false: fmt.Sprintf("%d at a time", par)}[par == 1])
	per := func(v int64) float64 { return float64(v) / float64(n) }
	sessions := absFigure(w, "ZooKeeper sessions opened per process", "sessions", per(gw.sessions), per(d.sessions), Lower, 0)
	sessions.Note = "mntr zk_connection_request_count, after minus before"
	regF := info(w, "registration call p50", "ms", ms(quantile(gw.reg, 0.5)), ms(quantile(d.reg, 0.5)), Lower)
	regF.Note = "zkcoord: one HTTP PUT with a TTL, its connection included; direct: connect (session handshake) + create"
	visible := info(w, "members visible right after the run", "members", float64(gw.visible), float64(d.visible), Higher)
	visible.Note = fmt.Sprintf("zkcoord: Lookup LINEARIZABLE (TTL %v); direct: getChildren", phpTTL)
	ref := Figure{Workload: w, Name: "registration p50, PHP over HTTP vs Go gRPC Register with TTL after each process", Unit: "ms",
		Gateway: ms(quantile(gw.reg, 0.5)), Direct: ms(quantile(between, 0.5)), Better: Lower, Target: "<= 1.5x gRPC",
		Note: "the direct column: one Go caller's gRPC Register with a TTL on a warm connection, one call after each PHP process"}
	ref.Met = ref.Ratio() <= 1.5
	// The zkcoord side's run made 2n identical registrations: n from PHP, n
	// from Go between them.
	txns := info(w, "ZooKeeper transactions per registration", "txns", float64(gw.txns)/float64(2*n), per(d.txns), Lower)
	txns.Note = "zkcoord: a lease and a member (and journal trims); direct: createSession, create, closeSession"
	hot := info(w, "registration p50, PHP over HTTP vs Go gRPC Register with TTL back to back", "ms",
		ms(quantile(gw.reg, 0.5)), ms(b2b.Quantile(0.5)), Lower)
	hot.Note = fmt.Sprintf("the direct column: one Go caller's gRPC Register with a TTL on a warm connection, %d calls back to back", b2b.Ops)
	r.add(
		sessions,
		regF,
		info(w, "registration call p99", "ms", ms(quantile(gw.reg, 0.99)), ms(quantile(d.reg, 0.99)), Lower),
		info(w, "process wall time p50", "ms", ms(quantile(gw.wall, 0.5)), ms(quantile(d.wall, 0.5)), Lower),
		info(w, "process wall time p99", "ms", ms(quantile(gw.wall, 0.99)), ms(quantile(d.wall, 0.99)), Lower),
		visible,
		info(w, "ZooKeeper sessions after the run (zk_global_sessions)", "sessions", float64(gw.global), float64(d.global), Lower),
		txns,
		ref,
		hot,
	)
	return nil
}

// phpSide is what one side's processes did.
type phpSide struct {
	reg, wall []time.Duration // sorted: the registration call (as each process timed it), the process
	close     []time.Duration // sorted: closing the session (direct only)
	sessions  int64           // sessions ZooKeeper was asked for during the run
	txns      int64           // ZooKeeper transactions during the run
	global    int64           // zk_global_sessions after the run
	visible   int             // members or ephemerals left after the run
}

var (
	registerMS = regexp.MustCompile(`register_ms=([0-9.]+)`)
	closeMS    = regexp.MustCompile(`close_ms=([0-9.]+)`)
)

func msDuration(b []byte) time.Duration {
	v, _ := strconv.ParseFloat(string(b), 64)
	return time.Duration(v * float64(time.Millisecond))
}

// phpRun runs n php processes with args(i), par at a time, and measures
// them and ZooKeeper around them; after (if not nil) runs after each
// process, in its worker.
func (r *Runner) phpRun(ctx context.Context, php, side string, n, par int, args func(i int) []string, after func(i int) error) (phpSide, error) {
	var s phpSide
	z0, err := r.env.Quiet(ctx, 500*time.Millisecond)
	if err != nil {
		return s, err
	}
	m0, err := r.env.Mntr(ctx)
	if err != nil {
		return s, err
	}
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan int)
	)
	start := time.Now()
	for range par {
		wg.Go(func() {
			for i := range next {
				var stderr bytes.Buffer
				cmd := exec.CommandContext(ctx, php, args(i)...)
				cmd.Stderr = &stderr
				t0 := time.Now()
				out, err := cmd.Output()
				wall := time.Since(t0)
				m := registerMS.FindSubmatch(out)
				mu.Lock()
				if err != nil || m == nil {
					if first == nil {
						first = fmt.Errorf("%s process %d: %v: %s%s", side, i, err, out, stderr.Bytes())
					}
				} else {
					s.reg = append(s.reg, msDuration(m[1]))
					s.wall = append(s.wall, wall)
					if c := closeMS.FindSubmatch(out); c != nil {
						s.close = append(s.close, msDuration(c[1]))
					}
				}
				mu.Unlock()
				if after != nil {
					if err := after(i); err != nil {
						mu.Lock()
						first = cmp.Or(first, err)
						mu.Unlock()
					}
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	took := time.Since(start)
	if first != nil {
		return s, first
	}
	z1, err := r.env.Quiet(ctx, 500*time.Millisecond)
	if err != nil {
		return s, err
	}
	m1, err := r.env.Mntr(ctx)
	if err != nil {
		return s, err
	}
	s.reg, s.wall, s.close = sortedDurations(s.reg), sortedDurations(s.wall), sortedDurations(s.close)
	s.sessions = m1["zk_connection_request_count"] - m0["zk_connection_request_count"]
	s.txns, s.global = z1-z0, m1["zk_global_sessions"]
	r.logf("  %-8s %d php processes in %v: registration p50 %.2f ms p99 %.2f ms, process p50 %.1f ms p99 %.1f ms, %d sessions opened, %d txns",
		side, n, took.Round(time.Millisecond), ms(quantile(s.reg, 0.5)), ms(quantile(s.reg, 0.99)),
		ms(quantile(s.wall, 0.5)), ms(quantile(s.wall, 0.99)), s.sessions, s.txns)
	if len(s.close) > 0 {
		r.logf("  %-8s session close p50 %.2f ms p99 %.2f ms (after the registration)", side, ms(quantile(s.close, 0.5)), ms(quantile(s.close, 0.99)))
	}
	return s, nil
}
