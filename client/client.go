package client

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// Client is a connection to a zkcoord gateway. It is safe for concurrent
// use. Its methods that need no lease live here; those that do live on a
// Session.
type Client struct {
	conn   *grpc.ClientConn // owned by the client; nil from NewFromConn
	rpc    rpcClients
	opts   options
	ctx    context.Context // ends when Close is called
	cancel context.CancelCauseFunc
	grp    goGroup // the goroutines Close waits for
}

// rpcClients are the gateway's services.
type rpcClients struct {
	lease    zkcoordv1.LeaseServiceClient
	registry zkcoordv1.RegistryServiceClient
	election zkcoordv1.ElectionServiceClient
	barrier  zkcoordv1.BarrierServiceClient
	lock     zkcoordv1.LockServiceClient
	// semaphore: SemaphoreService.
	semaphore zkcoordv1.SemaphoreServiceClient
}

// New connects to the gateway at target with insecure transport credentials
// unless WithDialOptions says otherwise. target is a gRPC target
// ("localhost:7070", "dns:///zkcoord:7070") or a comma-separated list of
// replica addresses ("zk-a:7070,zk-b:7070"). Calls are spread over the
// replicas that report SERVING on grpc.health.v1 (round robin with health
// checking), so a draining or dead replica is left at once and streams
// reconnect to another. ctx bounds the wait for the connection under
// WithBlock; without it New returns at once.
func New(ctx context.Context, target string, opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, fn := range opts {
		fn(&o)
	}
	conn, err := Dial(target, o.dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if o.block {
		if err := waitReady(ctx, conn); err != nil {
			conn.Close()
			return nil, fmt.Errorf("client: connecting to %s: %w", target, err)
		}
	}
	c := newClient(conn, o)
	c.conn = conn
	return c, nil
}

// Dial returns a gRPC connection to one gateway or to several replicas
// (target as in New), with the same balancing, health checking and
// keepalives as New; opts come last and win. For callers that use the
// generated stubs directly.
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig),
		// Notice a dead or frozen replica within seconds, not minutes.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 2 * time.Second, Timeout: 2 * time.Second, PermitWithoutStream: true}),
		// Reconnect to a replica within a second of its return: leases
		// last seconds, and gRPC's default reconnect backoff grows to two
		// minutes (a lone gateway restarted would be out of reach).
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
	}
	if addrs := strings.Split(target, ","); len(addrs) > 1 {
		r := manual.NewBuilderWithScheme("zkcoord")
		state := resolver.State{}
		for _, a := range addrs {
			state.Addresses = append(state.Addresses, resolver.Address{Addr: strings.TrimSpace(a)})
		}
		r.InitialState(state)
		dial = append(dial, grpc.WithResolvers(r))
		target = r.Scheme() + ":///replicas"
	}
	return grpc.NewClient(target, append(dial, opts...)...)
}

// serviceConfig spreads calls over the replicas that pass gRPC health
// checks (the gateway reports NOT_SERVING while it drains or has lost
// ZooKeeper).
const serviceConfig = `{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}}`

// NewFromConn returns a Client that talks over conn, which the caller keeps
// owning: Close leaves it open. Dial options among opts are ignored.
func NewFromConn(conn grpc.ClientConnInterface, opts ...Option) *Client {
	o := defaultOptions()
	for _, fn := range opts {
		fn(&o)
	}
	return newClient(conn, o)
}

func newClient(cc grpc.ClientConnInterface, o options) *Client {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Client{
		rpc: rpcClients{
			lock:      zkcoordv1.NewLockServiceClient(cc),
			lease:     zkcoordv1.NewLeaseServiceClient(cc),
			registry:  zkcoordv1.NewRegistryServiceClient(cc),
			election:  zkcoordv1.NewElectionServiceClient(cc),
			barrier:   zkcoordv1.NewBarrierServiceClient(cc),
			semaphore: zkcoordv1.NewSemaphoreServiceClient(cc),
		},
		opts:   o,
		ctx:    ctx,
		cancel: cancel,
	}
}

// waitReady waits until conn is ready, or ctx ends.
func waitReady(ctx context.Context, conn *grpc.ClientConn) error {
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(ctx, s) {
			return context.Cause(ctx)
		}
	}
}

// Close stops every goroutine the client and its sessions, watches and
// observations run, and waits for them; their channels close and their
// contexts end with ErrClosed. It does not revoke leases (close each Session
// first for that): they expire after their TTL. Close closes the connection
// that New made; it is safe to call more than once.
func (c *Client) Close() error {
	c.cancel(ErrClosed)
	c.grp.closeWait()
	if c.conn == nil {
		return nil
	}
	if err := c.conn.Close(); err != nil && c.conn.GetState() != connectivity.Shutdown {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// bind returns a context that ends with ctx or when the client is closed
// (with cause ErrClosed), and its release function.
func (c *Client) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	return bind(ctx, c.ctx)
}

// bind returns a context that ends with ctx or with owner (then with the
// cause of owner), and its release function.
func bind(ctx, owner context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(owner, func() { cancel(context.Cause(owner)) })
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

func (c *Client) newBackoff() *backoff {
	return &backoff{min: c.opts.backoffMin, max: c.opts.backoffMax}
}

// goGroup runs goroutines that their owner's Close waits for.
type goGroup struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// start runs f in a new goroutine, unless closeWait was called: then it
// returns false.
func (g *goGroup) start(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Go(f)
	return true
}

// closeWait refuses new goroutines and waits for the running ones.
func (g *goGroup) closeWait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}
