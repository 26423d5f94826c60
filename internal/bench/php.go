package bench

import (
	"context"
	"embed"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
// processes) popping up and down", measured. PHPProcs rounds, one after
// another, each of three registrations: a php process registering a member
// through the gateway (one HTTP PUT with a TTL) and exiting; a php process
// opening a ZooKeeper session, creating an ephemeral node and closing the
// session, as php-zookeeper does; and a gRPC Register with a TTL from this
// (Go) process on a warm connection, the reference the HTTP registration
// is held to. Interleaved, the three see the same machine and the same
// idle gaps. Each php process times its own registration call; the
// workload times each process, reads ZooKeeper's mntr and zxid around it
// (the sessions it asked for, its transactions), and counts the members
// left after the run. A Go caller's back-to-back Register is measured
// first, for context.
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
	direct, err := r.env.Direct(ctx)
	if err != nil {
		return err
	}
	defer direct.Close()
	parent := path.Join(r.direct, "php")
	if err := zkx.EnsurePath(direct, parent, zk.WorldACL(zk.PermAll)); err != nil {
		return err
	}
	reg := pb.NewRegistryServiceClient(r.env.Conn())
	goRegister := func(ctx context.Context, id string) error {
		_, err := reg.Register(ctx, &pb.RegisterRequest{Group: "php-grpc", MemberId: id, Value: "10.0.0.1:80", Ttl: durationpb.New(phpTTL)})
		return err
	}
	b2b := Closed(ctx, 1, r.cfg.Duration, func(ctx context.Context, _, i int) error { return goRegister(ctx, fmt.Sprint("b", i)) })
	if b2b.Ops == 0 {
		return fmt.Errorf("gRPC Register: %v", b2b.FirstErr)
	}
	r.logf("  Go gRPC Register with TTL, back to back: %d calls, p50 %.2f ms, p99 %.2f ms", b2b.Ops, ms(b2b.Quantile(0.5)), ms(b2b.Quantile(0.99)))

	const group = "php"
	n := r.cfg.PHPProcs
	zkAddr := strings.Split(r.env.ZK, ",")[0]
	ttl := fmt.Sprintf("%.0fs", phpTTL.Seconds())
	if _, err := r.env.Quiet(ctx, 500*time.Millisecond); err != nil {
		return err
	}
	m0, err := r.env.Mntr(ctx)
	if err != nil {
		return err
	}
	var (
		gw, d   phpSide
		between []time.Duration // the Go Register after each round's php processes
	)
	start := time.Now()
	for i := range n {
		if err := r.phpProc(ctx, &d, php, filepath.Join(dir, "zk_register.php"), zkAddr, path.Join(parent, fmt.Sprint("p", i)), "10.0.0.1:80"); err != nil {
			return fmt.Errorf("direct process %d: %w", i, err)
		}
		if err := r.phpProc(ctx, &gw, php, filepath.Join(dir, "http_register.php"), r.env.HTTP, group, fmt.Sprint("p", i), "10.0.0.1:80", ttl); err != nil {
			return fmt.Errorf("zkcoord process %d: %w", i, err)
		}
		t0 := time.Now()
		if err := goRegister(ctx, fmt.Sprint("i", i)); err != nil {
			return err
		}
		between = append(between, time.Since(t0))
	}
	took := time.Since(start)
	m1, err := r.env.Mntr(ctx)
	if err != nil {
		return err
	}
	left, _, err := direct.Children(parent)
	if err != nil {
		return err
	}
	d.visible = len(left)
	look, err := reg.Lookup(ctx, &pb.LookupRequest{Group: group, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE})
	if err != nil {
		return err
	}
	gw.visible = len(look.Members)
	between = sortedDurations(between)
	for _, s := range []*phpSide{&gw, &d} {
		s.wall = sortedDurations(s.wall)
		for k := range s.times {
			s.times[k] = sortedDurations(s.times[k])
		}
		s.reg = s.times["register"]
	}
	r.logf("  %d rounds in %v; ZooKeeper sessions (zk_global_sessions) %d before, %d after", n, took.Round(time.Millisecond),
		m0["zk_global_sessions"], m1["zk_global_sessions"])
	for _, s := range []struct {
		name string
		s    *phpSide
	}{{"zkcoord", &gw}, {"direct", &d}} {
		r.logf("  %-8s registration p50 %.2f ms p99 %.2f ms, process p50 %.1f ms p99 %.1f ms, %d sessions opened, %d txns, %d members left",
			s.name, ms(quantile(s.s.reg, 0.5)), ms(quantile(s.s.reg, 0.99)), ms(quantile(s.s.wall, 0.5)), ms(quantile(s.s.wall, 0.99)),
			s.s.sessions, s.s.txns, s.s.visible)
	}
	for _, s := range []struct {
		name string
		s    *phpSide
	}{{"zkcoord", &gw}, {"direct", &d}} {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(s.s.times)) {
			parts = append(parts, fmt.Sprintf("%s p50 %.2f ms", k, ms(quantile(s.s.times[k], 0.5))))
		}
		r.logf("  %-8s as the processes timed it: %s", s.name, strings.Join(parts, ", "))
	}
	r.logf("  Go gRPC Register with TTL, one after each round's php processes: p50 %.2f ms, p99 %.2f ms", ms(quantile(between, 0.5)), ms(quantile(between, 0.99)))

	w := fmt.Sprintf("PHP processes (%d each, one at a time)", n)
	per := func(v int64) float64 { return float64(v) / float64(n) }
	sessions := absFigure(w, "ZooKeeper sessions opened per process", "sessions", per(gw.sessions), per(d.sessions), Lower, 0)
	sessions.Note = "mntr zk_connection_request_count after the process minus before"
	regF := info(w, "registration call p50", "ms", ms(quantile(gw.reg, 0.5)), ms(quantile(d.reg, 0.5)), Lower)
	regF.Note = "as each process timed it: zkcoord, one HTTP PUT with a TTL, its connection included; direct, connect (session handshake) + create"
	visible := info(w, "members visible right after the run", "members", float64(gw.visible), float64(d.visible), Higher)
	visible.Note = fmt.Sprintf("zkcoord: Lookup LINEARIZABLE (TTL %v); direct: getChildren", phpTTL)
	txns := info(w, "ZooKeeper transactions per process", "txns", per(gw.txns), per(d.txns), Lower)
	txns.Note = "zxid after the process minus before: zkcoord, a lease and a member; direct, createSession, create, closeSession"
	ref := Figure{Workload: w, Name: "registration p50, PHP over HTTP vs Go gRPC Register with TTL in the same rounds", Unit: "ms",
		Gateway: ms(quantile(gw.reg, 0.5)), Direct: ms(quantile(between, 0.5)), Etcd: math.NaN(), Better: Lower, Target: "<= 1.5x gRPC",
		Note: "the direct column: a gRPC Register with a TTL from the Go process on a warm connection, one after each round's php processes"}
	ref.Met = ref.Ratio() <= 1.5
	hot := info(w, "registration p50, PHP over HTTP vs Go gRPC Register with TTL back to back", "ms",
		ms(quantile(gw.reg, 0.5)), ms(b2b.Quantile(0.5)), Lower)
	hot.Note = fmt.Sprintf("the direct column: a gRPC Register with a TTL from the Go process on a warm connection, %d calls back to back", b2b.Ops)
	r.add(
		sessions,
		regF,
		info(w, "registration call p99", "ms", ms(quantile(gw.reg, 0.99)), ms(quantile(d.reg, 0.99)), Lower),
		info(w, "process wall time p50", "ms", ms(quantile(gw.wall, 0.5)), ms(quantile(d.wall, 0.5)), Lower),
		info(w, "process wall time p99", "ms", ms(quantile(gw.wall, 0.99)), ms(quantile(d.wall, 0.99)), Lower),
		visible,
		txns,
		ref,
		hot,
	)
	return nil
}

// phpSide is what one side's php processes did.
type phpSide struct {
	reg      []time.Duration            // the registration call, as the process timed it
	wall     []time.Duration            // the process
	times    map[string][]time.Duration // what the process printed: register (the call), close, ...
	sessions int64                      // sessions ZooKeeper was asked for while the processes ran
	txns     int64                      // ZooKeeper transactions while they ran
	visible  int                        // members or ephemerals left after the run
}

// phpTimes matches a php process's times: register_ms=2.5 close_ms=0.7 ...
var phpTimes = regexp.MustCompile(`(\w+)_ms=([0-9.]+)`)

// phpProc runs php with args, adds its times to s, and the ZooKeeper
// sessions and transactions from just before to just after it.
func (r *Runner) phpProc(ctx context.Context, s *phpSide, php string, args ...string) error {
	m0, err := r.env.Mntr(ctx)
	if err != nil {
		return err
	}
	z0, err := r.env.Zxid(ctx)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, php, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	wall := time.Since(t0)
	times := phpTimes.FindAllSubmatch(out, -1)
	if err != nil || len(times) == 0 || string(times[0][1]) != "register" {
		return fmt.Errorf("%v: %s%s", err, out, stderr.String())
	}
	if s.times == nil {
		s.times = map[string][]time.Duration{}
	}
	for _, t := range times {
		s.times[string(t[1])] = append(s.times[string(t[1])], msDuration(t[2]))
	}
	s.wall = append(s.wall, wall)
	m1, err := r.env.Mntr(ctx)
	if err != nil {
		return err
	}
	z1, err := r.env.Zxid(ctx)
	if err != nil {
		return err
	}
	s.sessions += m1["zk_connection_request_count"] - m0["zk_connection_request_count"]
	s.txns += z1 - z0
	return nil
}

func msDuration(b []byte) time.Duration {
	v, _ := strconv.ParseFloat(string(b), 64)
	return time.Duration(v * float64(time.Millisecond))
}
