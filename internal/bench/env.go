package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zkcoord/zkcoord/internal/etcdserver"
	"github.com/zkcoord/zkcoord/internal/zkserver"
)

// Env is what the workloads run against: one ZooKeeper, one gateway
// process connected to it, direct ZooKeeper clients, and an etcd beside
// them with its clients.
type Env struct {
	ZK        string // ZooKeeper connect string
	Gateway   string // the gateway's gRPC address
	HTTP      string // the base URL of the gateway's HTTP/JSON face
	DebugAddr string // the gateway's --debug-listen address
	Pid       int    // the gateway's process id, 0 when not started here
	// Root is the gateway's --root; the direct client works under Root +
	// "-direct". Fresh for each run, so that a -zk ZooKeeper can be reused.
	Root string
	// Etcd is etcd's client URL(s), empty when the run has no etcd.
	Etcd string

	etcds *etcdserver.Server
	etcd  []*clientv3.Client
	zks   *zkserver.Server
	cmd   *exec.Cmd
	done  chan struct{}
	// conns are the gRPC connections workloads share, round robin.
	conns []*grpc.ClientConn
	next  int
}

// EnvOptions says how to set the environment up.
type EnvOptions struct {
	// ZK is an existing ZooKeeper; empty starts a private one (Debian's
	// zookeeper package) with fsync on, as production runs.
	ZK string
	// Bin is the zkcoord binary to start as the gateway.
	Bin string
	// Log receives the gateway's and ZooKeeper's logs (default discarded).
	Log io.Writer
	// Conns is how many gRPC connections the load generator spreads its
	// calls over (default 4).
	Conns int
	// Etcd is an existing etcd's client URL; empty starts a private one
	// (Debian's etcd-server, fsync on) unless NoEtcd.
	Etcd string
	// NoEtcd runs without etcd: every etcd figure is absent.
	NoEtcd bool
	// ZKHeap is the private ZooKeeper's Java heap (-Xmx), e.g. "2g"; empty
	// keeps zkserver's default (256m), too small for a million members.
	ZKHeap string
	// ZKNoFsync runs the private ZooKeeper with forceSync=no: its log is
	// written but not flushed before a write is acknowledged. Never a
	// production setting; an experiment that shows how much of a figure
	// is the disk's flush (BENCHMARKS.md, the eighth stop of issue 15).
	ZKNoFsync bool
}

// Setup starts what o asks for and waits until the gateway serves.
func Setup(ctx context.Context, o EnvOptions) (*Env, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Conns <= 0 {
		o.Conns = 4
	}
	e := &Env{ZK: o.ZK, Root: fmt.Sprintf("/zkcoord-bench-%d", time.Now().UnixNano())}
	ok := false
	defer func() {
		if !ok {
			e.Close()
		}
	}()
	if e.ZK == "" {
		zopts := []zkserver.Option{zkserver.WithForceSync(!o.ZKNoFsync), zkserver.WithLogs(o.Log), zkserver.WithTickTime(500 * time.Millisecond)}
		if o.ZKHeap != "" {
			zopts = append(zopts, zkserver.WithJVMFlags("-Xmx"+o.ZKHeap)) // after the default -Xmx: the last one counts
		}
		zks, err := zkserver.Start(ctx, zopts...)
		if err != nil {
			return nil, err
		}
		e.zks, e.ZK = zks, zks.Addr()
	}
	if !o.NoEtcd {
		if err := e.setupEtcd(ctx, o); err != nil {
			return nil, err
		}
	}
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	debugAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	e.Gateway, e.DebugAddr, e.HTTP = grpcAddr, debugAddr, "http://"+httpAddr
	e.cmd = exec.Command(o.Bin, "serve", "--plaintext", "--no-auth", "--listen", grpcAddr, "--http-listen", httpAddr,
		"--zk", e.ZK, "--root", e.Root, "--debug-listen", debugAddr, "--log-level", "warn", "--replica-id", "bench")
	e.cmd.Stdout, e.cmd.Stderr = o.Log, o.Log
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start gateway %s: %w", o.Bin, err)
	}
	e.Pid = e.cmd.Process.Pid
	e.done = make(chan struct{})
	go func() {
		_ = e.cmd.Wait()
		close(e.done)
	}()
	for range o.Conns {
		c, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		e.conns = append(e.conns, c)
	}
	if err := e.awaitServing(ctx); err != nil {
		return nil, err
	}
	ok = true
	return e, nil
}

func (e *Env) awaitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h := grpc_health_v1.NewHealthClient(e.conns[0])
	for {
		select {
		case <-e.done:
			return errors.New("bench: the gateway exited before it served (run with -log to see why)")
		default:
		}
		r, err := h.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		if err == nil && r.Status == grpc_health_v1.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: gateway not serving: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Conn returns one of the shared gRPC connections to the gateway.
func (e *Env) Conn() *grpc.ClientConn {
	c := e.conns[e.next%len(e.conns)]
	e.next++
	return c
}

// Direct opens a direct ZooKeeper session, as an application without the
// gateway would.
func (e *Env) Direct(ctx context.Context) (*zk.Conn, error) {
	c, ev, err := zk.Connect(strings.Split(e.ZK, ","), 10*time.Second, zk.WithLogInfo(false),
		zk.WithMaxBufferSize(256<<20)) // a large group's listing: as zkx's
	if err != nil {
		return nil, err
	}
	for {
		select {
		case s := <-ev:
			if s.State == zk.StateHasSession {
				go drain(ev)
				return c, nil
			}
		case <-ctx.Done():
			c.Close()
			return nil, ctx.Err()
		}
	}
}

func drain(ev <-chan zk.Event) {
	for range ev {
	}
}

// CPU returns the CPU time the gateway and the private ZooKeeper have used
// so far (user + system, from /proc); zero for a process not started here.
func (e *Env) CPU() (gateway, zookeeper time.Duration) {
	gateway = procCPU(e.Pid)
	if e.zks != nil {
		zookeeper = procCPU(e.zks.Pid())
	}
	return gateway, zookeeper
}

// procCPU reads utime + stime of pid from /proc/<pid>/stat.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// Memory is the gateway process's memory.
type Memory struct {
	RSS        int64 // resident set, from /proc
	HeapInuse  int64 // after a forced GC
	StackInuse int64
	Goroutines int // the gateway's, from /debug/vars
}

// GatewayMemory forces a GC in the gateway (through its heap profile
// endpoint) and reads its memory.
func (e *Env) GatewayMemory(ctx context.Context) (Memory, error) {
	var m Memory
	if err := httpGet(ctx, "http://"+e.DebugAddr+"/debug/pprof/heap?gc=1", io.Discard); err != nil {
		return m, err
	}
	var vars struct {
		Memstats struct {
			HeapInuse  int64
			StackInuse int64
		} `json:"memstats"`
		Goroutines int `json:"goroutines"`
	}
	var b strings.Builder
	if err := httpGet(ctx, "http://"+e.DebugAddr+"/debug/vars", &b); err != nil {
		return m, err
	}
	if err := json.Unmarshal([]byte(b.String()), &vars); err != nil {
		return m, err
	}
	m.HeapInuse, m.StackInuse, m.Goroutines = vars.Memstats.HeapInuse, vars.Memstats.StackInuse, vars.Goroutines
	m.RSS = procRSS(e.Pid)
	return m, nil
}

func httpGet(ctx context.Context, url string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// Close stops the gateway and the private ZooKeeper.
func (e *Env) Close() {
	for _, c := range e.conns {
		c.Close()
	}
	if e.cmd != nil && e.cmd.Process != nil {
		_ = e.cmd.Process.Signal(os.Interrupt)
		select {
		case <-e.done:
		case <-time.After(15 * time.Second):
			_ = e.cmd.Process.Kill()
			<-e.done
		}
	}
	if e.zks != nil {
		_ = e.zks.Stop()
	}
	e.closeEtcd()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
