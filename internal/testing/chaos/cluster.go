package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/zkcoord/zkcoord/internal/zkserver"
)

// Options configures StartCluster. A zero field takes its default.
type Options struct {
	// ZooKeepers is the ensemble's size (default 3; 1 is allowed).
	ZooKeepers int
	// Replicas is how many gateway replicas to start (default 2).
	Replicas int
	// Bin is the zkcoord binary (default: Build it into a temporary
	// directory).
	Bin string
	// Root is the replicas' --root (default "/zkcoord").
	Root string
	// SessionTimeout is the replicas' --session-timeout (default 4s).
	SessionTimeout time.Duration
	// StreamTTL is the replicas' --stream-ttl (default 3s).
	StreamTTL time.Duration
	// ShutdownTimeout is the replicas' --shutdown-timeout (default 5s).
	ShutdownTimeout time.Duration
	// LogDir receives each replica's log (<id>.log) and ZooKeeper's
	// (zookeeper.log); it is kept. Default: a temporary directory that
	// Stop removes.
	LogDir string
	// Logger records every fault the harness injects, with its time
	// (default: discard).
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.ZooKeepers < 0 || o.Replicas < 0 || o.SessionTimeout < 0 || o.StreamTTL < 0 || o.ShutdownTimeout < 0 {
		return o, fmt.Errorf("chaos: negative option in %+v", o)
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if o.ZooKeepers == 0 {
		o.ZooKeepers = 3
	}
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if o.Root == "" {
		o.Root = "/zkcoord"
	}
	def(&o.SessionTimeout, 4*time.Second)
	def(&o.StreamTTL, 3*time.Second)
	def(&o.ShutdownTimeout, 5*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Cluster is a ZooKeeper ensemble and the zkcoord replicas that share it,
// each a child process, with a handle on every fault the harness injects.
// Its methods are safe for concurrent use.
type Cluster struct {
	opts  Options // defaults applied, Bin and LogDir set
	dir   string  // temporary: the built binary, default logs; Stop removes it
	log   *slog.Logger
	zkLog *os.File

	zkMu sync.Mutex // serializes faults on the ensemble, which is not concurrency-safe
	zk   *zkserver.Ensemble

	mu       sync.Mutex
	replicas []*Replica
	next     int  // the next replica's number, for its ID
	stopped  bool // by Stop: AddReplica refuses
	stopOnce sync.Once
}

// StartCluster starts a ZooKeeper ensemble of o.ZooKeepers servers and
// o.Replicas replicas (IDs r0, r1, ...) serving o.Root on it, each through
// proxies of its own, and returns once every replica reports SERVING on
// grpc.health.v1. Cancelling ctx abandons the start (and stops what it
// started). Stop the cluster when done.
func StartCluster(ctx context.Context, o Options) (*Cluster, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "zkcoord-chaos-")
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	c := &Cluster{dir: dir, log: o.Logger}
	start := time.Now()
	if err := c.start(ctx, o); err != nil {
		c.Stop()
		return nil, err
	}
	c.log.Info("chaos: cluster serving", "zookeepers", c.zk.ConnectString(), "replicas", c.Target(),
		"logs", c.opts.LogDir, "took", time.Since(start))
	return c, nil
}

func (c *Cluster) start(ctx context.Context, o Options) error {
	var err error
	if o.LogDir == "" {
		o.LogDir = filepath.Join(c.dir, "logs")
	}
	if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	if o.Bin == "" {
		if o.Bin, err = Build(ctx, c.dir); err != nil {
			return err
		}
	}
	c.opts = o
	if c.zkLog, err = os.OpenFile(filepath.Join(o.LogDir, "zookeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	t := time.Now()
	// The log flushed as in production: the chaos run has always had it
	// (zkserver's "off" did not work before 08a05a4), and keeps its timing.
	if c.zk, err = zkserver.StartEnsemble(ctx, o.ZooKeepers, zkserver.WithLogs(c.zkLog), zkserver.WithForceSync(true)); err != nil {
		return err
	}
	c.log.Info("chaos: ZooKeeper ensemble serving", "servers", c.zk.ConnectString(), "took", time.Since(t))

	// The replicas start side by side: each waits for its own session.
	rs := make([]*Replica, o.Replicas)
	errs := make([]error, o.Replicas)
	var wg sync.WaitGroup
	for i := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs[i], errs[i] = c.startReplica(ctx, fmt.Sprintf("r%d", i))
		}()
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = len(rs)
	for _, r := range rs {
		if r != nil {
			c.replicas = append(c.replicas, r)
		}
	}
	return errors.Join(errs...)
}

// startReplica starts replica id, on another port if its process exits
// before serving (most likely its port was taken between choosing and
// binding it), up to three times.
func (c *Cluster) startReplica(ctx context.Context, id string) (*Replica, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var r *Replica
		if r, err = newReplica(id, c.opts, c.zkAddrs()); err != nil {
			return nil, err
		}
		if err = r.start(ctx); err == nil {
			return r, nil
		}
		r.close()
		if !errors.Is(err, errExited) || ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func (c *Cluster) zkAddrs() []string {
	addrs := make([]string, len(c.zk.Servers))
	for i, s := range c.zk.Servers {
		addrs[i] = s.Addr()
	}
	return addrs
}

// AddReplica starts one more replica (the next ID) and returns it once it
// reports SERVING. Cancelling ctx abandons the start. It fails once Stop
// has been called.
func (c *Cluster) AddReplica(ctx context.Context) (*Replica, error) {
	c.mu.Lock()
	id := fmt.Sprintf("r%d", c.next)
	c.next++
	stopped := c.stopped
	c.mu.Unlock()
	if stopped {
		return nil, errStopped
	}
	c.log.Info("chaos: add replica", "replica", id)
	r, err := c.startReplica(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped { // Stop ran meanwhile and did not see r
		r.close()
		return nil, errStopped
	}
	c.replicas = append(c.replicas, r)
	return r, nil
}

var errStopped = errors.New("chaos: cluster stopped")

// Replica returns the i-th replica started (r0 first).
func (c *Cluster) Replica(i int) *Replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replicas[i]
}

// Replicas returns every replica started, in order.
func (c *Cluster) Replicas() []*Replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Replica(nil), c.replicas...)
}

// Addrs returns the replicas' gRPC addresses, by index.
func (c *Cluster) Addrs() []string {
	rs := c.Replicas()
	addrs := make([]string, len(rs))
	for i, r := range rs {
		addrs[i] = r.Addr
	}
	return addrs
}

// Target returns the replicas' addresses comma-joined, as client.New takes
// them.
func (c *Cluster) Target() string { return strings.Join(c.Addrs(), ",") }

// ZK returns the ensemble. Faults injected through it directly are not
// logged; prefer the Cluster's methods.
func (c *Cluster) ZK() *zkserver.Ensemble { return c.zk }

// LogDir is the directory of the replicas' and ZooKeeper's logs.
func (c *Cluster) LogDir() string { return c.opts.LogDir }

// KillZKLeader finds the ensemble's leader (waiting for one to be elected,
// within ctx), kills it with SIGKILL, and returns its index in ZK().Servers.
func (c *Cluster) KillZKLeader(ctx context.Context) (int, error) {
	c.zkMu.Lock()
	defer c.zkMu.Unlock()
	i, err := c.zk.LeaderIndex(ctx)
	if err != nil {
		return -1, err
	}
	c.log.Info("chaos: kill -9 ZooKeeper leader", "zk", i, "addr", c.zk.Servers[i].Addr())
	c.zk.Kill(i)
	return i, nil
}

// KillZK kills ZooKeeper server i with SIGKILL and waits for it to exit.
func (c *Cluster) KillZK(i int) {
	c.zkMu.Lock()
	defer c.zkMu.Unlock()
	c.log.Info("chaos: kill -9 ZooKeeper", "zk", i, "addr", c.zk.Servers[i].Addr())
	c.zk.Kill(i)
}

// RestartZK starts ZooKeeper server i again, with its data, and waits
// until it serves (within ctx).
func (c *Cluster) RestartZK(ctx context.Context, i int) error {
	c.zkMu.Lock()
	defer c.zkMu.Unlock()
	c.log.Info("chaos: restart ZooKeeper", "zk", i, "addr", c.zk.Servers[i].Addr())
	t := time.Now()
	if err := c.zk.Restart(ctx, i); err != nil {
		return err
	}
	c.log.Info("chaos: ZooKeeper serving again", "zk", i, "took", time.Since(t))
	return nil
}

// PauseZK freezes ZooKeeper server i (SIGSTOP): its connections stay open
// and it answers nothing, neither clients nor its peers. ResumeZK thaws it.
func (c *Cluster) PauseZK(i int) error {
	c.zkMu.Lock()
	defer c.zkMu.Unlock()
	c.log.Info("chaos: pause ZooKeeper", "zk", i, "addr", c.zk.Servers[i].Addr())
	return c.zk.Pause(i)
}

// ResumeZK thaws ZooKeeper server i after PauseZK (SIGCONT).
func (c *Cluster) ResumeZK(i int) error {
	c.zkMu.Lock()
	defer c.zkMu.Unlock()
	c.log.Info("chaos: resume ZooKeeper", "zk", i, "addr", c.zk.Servers[i].Addr())
	return c.zk.Resume(i)
}

// Stop kills every replica, closes their proxies, stops the ensemble (paused
// members are resumed first) and removes the cluster's temporary
// directory. A LogDir given in Options is kept. Stop can be called again.
func (c *Cluster) Stop() {
	c.stopOnce.Do(func() {
		c.log.Info("chaos: stop cluster")
		c.mu.Lock()
		c.stopped = true
		c.mu.Unlock()
		for _, r := range c.Replicas() {
			r.close()
		}
		c.zkMu.Lock()
		if c.zk != nil {
			for i := range c.zk.Servers {
				_ = c.zk.Resume(i)
			}
			c.zk.Stop()
		}
		c.zkMu.Unlock()
		if c.zkLog != nil {
			c.zkLog.Close()
		}
		_ = os.RemoveAll(c.dir)
	})
}
