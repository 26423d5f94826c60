package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zkcoord/zkcoord/internal/testing/proxy"
	"github.com/zkcoord/zkcoord/internal/zkserver"
)

// errExited: a replica's process ended before it served.
var errExited = errors.New("chaos: replica exited before serving")

// Replica is one `zkcoord serve` process of a Cluster. It reaches each
// ZooKeeper server through a Proxy of its own, so its link to ZooKeeper can
// be cut or stalled without touching the other replicas'. Its ID, its
// address and its proxies stay the same across restarts, as for a process
// a supervisor restarts in place.
type Replica struct {
	// ID is the replica's --replica-id.
	ID string
	// Addr is its gRPC address (--listen and --advertise).
	Addr string
	// DebugAddr serves its /debug/vars and /debug/pprof (--debug-listen).
	DebugAddr string

	argv    []string       // the same command line at every start
	logPath string         // its stderr and stdout, appended at every start
	proxies []*proxy.Proxy // by ZooKeeper server index
	conn    *grpc.ClientConn
	log     *slog.Logger

	mu   sync.Mutex
	proc *process // the latest start; nil before the first
}

// process is one run of a replica's binary.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // cmd.Wait's result, set before done is closed
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// newReplica prepares replica id on a free port, with a proxy to each of
// zk; it does not start it.
func newReplica(id string, o Options, zk []string) (*Replica, error) {
	port, err := zkserver.FreePort()
	if err != nil {
		return nil, err
	}
	dport, err := zkserver.FreePort()
	if err != nil {
		return nil, err
	}
	r := &Replica{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", port), DebugAddr: fmt.Sprintf("127.0.0.1:%d", dport),
		logPath: filepath.Join(o.LogDir, id+".log"), log: o.Logger.With("replica", id)}
	var via []string
	for i, addr := range zk {
		p, err := proxy.New(addr, r.log.With("zk", i))
		if err != nil {
			r.close()
			return nil, err
		}
		r.proxies = append(r.proxies, p)
		via = append(via, p.Addr())
	}
	r.argv = []string{o.Bin, "serve", "--plaintext", "--no-auth",
		"--listen", r.Addr, "--advertise", r.Addr, "--replica-id", id,
		"--zk", strings.Join(via, ","), "--root", o.Root,
		"--session-timeout", o.SessionTimeout.String(), "--stream-ttl", o.StreamTTL.String(),
		"--shutdown-timeout", o.ShutdownTimeout.String(), "--log-level", "debug", "--debug-listen", r.DebugAddr}
	// A short reconnect backoff, so that a replica that comes back is seen
	// within 500 ms (gRPC's default backs off up to 2 minutes).
	r.conn, err = grpc.NewClient(r.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		r.close()
		return nil, fmt.Errorf("chaos: replica %s: %w", id, err)
	}
	return r, nil
}

// start runs the binary and waits until it reports SERVING; cancelling ctx
// ends the wait, not the process.
func (r *Replica) start(ctx context.Context) error {
	p, err := r.spawn()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // ends with start: cancel
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = r.AwaitServing(ctx)
	if !p.running() {
		return fmt.Errorf("%w: replica %s: %v (log: %s)", errExited, r.ID, p.err, r.logPath)
	}
	return err
}

func (r *Replica) spawn() (*process, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil && r.proc.running() {
		return nil, fmt.Errorf("chaos: replica %s is running", r.ID)
	}
	f, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chaos: replica %s: %w", r.ID, err)
	}
	defer f.Close() // the child has its own descriptor
	fmt.Fprintf(f, "=== chaos %s: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(r.argv, " "))
	cmd := exec.Command(r.argv[0], r.argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, for Pause and Kill; killed if we die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("chaos: replica %s: %w", r.ID, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { // ends when the process exits; Kill, Drain and Cluster.Stop end it
		p.err = cmd.Wait()
		close(p.done)
	}()
	r.proc = p
	r.log.Info("chaos: replica started", "pid", cmd.Process.Pid, "addr", r.Addr)
	return p, nil
}

// current returns the latest process if it is running.
func (r *Replica) current() (*process, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc, r.proc != nil && r.proc.running()
}

// Pid returns the process id of the running replica (0 when stopped).
func (r *Replica) Pid() int {
	if p, ok := r.current(); ok {
		return p.cmd.Process.Pid
	}
	return 0
}

// Running reports whether the replica's process is running (paused
// counts as running).
func (r *Replica) Running() bool {
	_, ok := r.current()
	return ok
}

// Kill ends the replica at once (SIGKILL to its process group) and waits
// for it to exit: no drain, its ZooKeeper session lingers until it times
// out. It does nothing if the replica is not running.
func (r *Replica) Kill() {
	p, ok := r.current()
	if !ok {
		return
	}
	r.log.Info("chaos: kill -9 replica", "pid", p.cmd.Process.Pid)
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Pause freezes the replica (SIGSTOP to its process group): its sockets
// stay open, nothing answers, timers do not fire, as in a long GC pause.
// Resume thaws it.
func (r *Replica) Pause() { r.signal("pause", syscall.SIGSTOP) }

// Resume thaws the replica after Pause (SIGCONT).
func (r *Replica) Resume() { r.signal("resume", syscall.SIGCONT) }

func (r *Replica) signal(action string, sig syscall.Signal) {
	p, ok := r.current()
	if !ok {
		r.log.Warn("chaos: replica not running", "action", action)
		return
	}
	r.log.Info("chaos: "+action+" replica", "pid", p.cmd.Process.Pid)
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		r.log.Warn("chaos: signal replica", "action", action, "err", err)
	}
}

// Drain stops the replica as an orchestrator does (SIGTERM; a paused
// replica is resumed first) and waits for it to exit. It returns an error
// unless the replica exits with status 0. If ctx ends first, the replica
// is killed and Drain returns ctx's error.
func (r *Replica) Drain(ctx context.Context) error {
	p, ok := r.current()
	if !ok {
		return fmt.Errorf("chaos: replica %s is not running", r.ID)
	}
	pid := p.cmd.Process.Pid
	r.log.Info("chaos: drain replica (SIGTERM)", "pid", pid)
	start := time.Now()
	_ = syscall.Kill(-pid, syscall.SIGCONT)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("chaos: replica %s: %w", r.ID, err)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		r.log.Warn("chaos: replica did not drain in time: kill -9", "pid", pid, "after", time.Since(start))
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("chaos: replica %s did not drain in time (killed): %w", r.ID, ctx.Err())
	}
	r.log.Info("chaos: replica drained", "pid", pid, "took", time.Since(start), "exit", p.err)
	if p.err != nil {
		return fmt.Errorf("chaos: replica %s drain: %w (log: %s)", r.ID, p.err, r.logPath)
	}
	return nil
}

// Restart starts a replica that was killed or drained again, with the same
// ID, address and proxies, and waits until it reports SERVING. Cancelling
// ctx ends the wait, not the new process.
func (r *Replica) Restart(ctx context.Context) error {
	start := time.Now()
	if err := r.start(ctx); err != nil {
		return err
	}
	r.log.Info("chaos: replica serving again", "took", time.Since(start))
	return nil
}

// CutZK closes the replica's connections to ZooKeeper and refuses new
// ones until RestoreZK: its client sees the loss at once.
func (r *Replica) CutZK() {
	for _, p := range r.proxies {
		p.Cut()
	}
}

// StallZK stops every byte between the replica and ZooKeeper, both ways,
// with its connections left open: the partition only timeouts reveal. The
// replica's session expires on ZooKeeper's side one session timeout later.
func (r *Replica) StallZK() {
	for _, p := range r.proxies {
		p.Stall()
	}
}

// RestoreZK ends CutZK or StallZK.
func (r *Replica) RestoreZK() {
	for _, p := range r.proxies {
		p.Restore()
	}
}

// Conn returns the harness's client connection to the replica, for calls
// in tests. It reconnects within 500 ms of a restart; do not close it.
func (r *Replica) Conn() *grpc.ClientConn { return r.conn }

// LogPath is the file that holds the replica's log, from every start.
func (r *Replica) LogPath() string { return r.logPath }

// Healthy reports whether the replica answers SERVING on grpc.health.v1
// before ctx ends. An unreachable replica is not healthy; a paused one
// keeps the call waiting until ctx ends.
func (r *Replica) Healthy(ctx context.Context) bool {
	h, err := healthpb.NewHealthClient(r.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err == nil && h.Status == healthpb.HealthCheckResponse_SERVING
}

// AwaitServing waits until the replica reports SERVING on grpc.health.v1,
// following its health stream (and reconnecting while it is down). It
// returns ctx's error if ctx ends first.
func (r *Replica) AwaitServing(ctx context.Context) error { return r.awaitHealth(ctx, true) }

// AwaitNotServing waits until the replica reports anything but SERVING on
// grpc.health.v1, or cannot be reached. It returns ctx's error if ctx ends
// first (a paused replica never answers).
func (r *Replica) AwaitNotServing(ctx context.Context) error { return r.awaitHealth(ctx, false) }

func (r *Replica) awaitHealth(ctx context.Context, serving bool) error {
	hc := healthpb.NewHealthClient(r.conn)
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for !r.watchHealth(ctx, hc, serving) {
		select {
		case <-ctx.Done():
			want := "SERVING"
			if !serving {
				want = "not SERVING"
			}
			return fmt.Errorf("chaos: replica %s not %s: %w", r.ID, want, ctx.Err())
		case <-retry.C:
		}
	}
	return nil
}

// watchHealth follows one health stream until it shows the status wanted
// (true) or breaks (false; a break means not serving, if that is wanted).
func (r *Replica) watchHealth(ctx context.Context, hc healthpb.HealthClient, serving bool) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(serving))
	if err != nil {
		return !serving && ctx.Err() == nil
	}
	for {
		h, err := stream.Recv()
		if err != nil {
			return !serving && ctx.Err() == nil
		}
		if (h.Status == healthpb.HealthCheckResponse_SERVING) == serving {
			return true
		}
	}
}

// close kills the replica and releases its proxies and connection.
func (r *Replica) close() {
	r.Kill()
	if r.conn != nil {
		r.conn.Close()
	}
	for _, p := range r.proxies {
		p.Close()
	}
}
