// Package zkx is zkcoord's ZooKeeper session layer: it owns the go-zookeeper
// connection, tracks the session state that go-zookeeper hides (a new session
// silently replacing an expired one on the same *zk.Conn), bounds each
// request by a context, and holds what every recipe shares about sessions
// (error classes, retries, ACLs). It knows sessions, not recipes: each
// recipe names its own znodes (its Layout). Nothing here knows about gRPC.
package zkx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// State is the gateway's view of its ZooKeeper session.
type State int

// The states a Session reports.
const (
	// StateConnecting: no session has been established yet.
	StateConnecting State = iota
	// StateConnected: a session is established and a server is reachable.
	StateConnected
	// StateDisconnected: the session may still be alive, but no server is
	// reachable. Ephemeral nodes survive until the session times out.
	StateDisconnected
	// StateExpired: the server expired the session; go-zookeeper is
	// establishing a new one, and everything the old session held is gone.
	StateExpired
	// StateClosed: Close was called.
	StateClosed
)

func (s State) String() string {
	return [...]string{"connecting", "connected", "disconnected", "expired", "closed"}[s]
}

// Status is a snapshot of the session's state.
type Status struct {
	State     State
	SessionID int64
	Server    string
	// Since is when State was entered.
	Since time.Time
	// Epoch counts sessions: it is 1 for the first session and increases each
	// time a new session replaces an expired one.
	Epoch int64
	// Expirations counts session expirations seen.
	Expirations int64
}

// Session is a ZooKeeper connection with observable session state.
type Session struct {
	conn    *zk.Conn
	servers []string
	chroot  string
	timeout time.Duration
	log     *slog.Logger

	negotiated atomic.Int64  // session timeout granted by the server, ms (0: not yet known)
	link       atomic.Uint64 // session events seen (Link)
	observe    Observer      // told of every request (WithObserver); nil: none
	batch      *committer    // Multi's group commit (batch.go)
	order      *multiOrder   // multis enter the connection one at a time (order.go), when batches pipeline

	acl     []zk.ACL // of every znode zkcoord creates
	secured bool     // acl restricts access to the digest identity

	mu      sync.Mutex
	st      Status
	changed chan struct{} // closed and replaced on every state change
}

// Option configures Dial. An option refuses a value it cannot work with,
// and Dial returns that error before connecting.
type Option func(*options) error

type options struct {
	timeout          time.Duration
	log              *slog.Logger
	digestUser, pass string
	tls              *tls.Config
	observe          Observer
	pipeline         int // group commit batches in flight at most
}

// WithTLS connects to ZooKeeper's secure client port (secureClientPort)
// over TLS with cfg: its RootCAs verify the servers (each server's host
// from the connect string is the name checked unless cfg.ServerName is
// set), its Certificates are presented to a server that wants a client
// certificate.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) error {
		if cfg == nil {
			return errors.New("zkx: TLS config: nil")
		}
		o.tls = cfg
		return nil
	}
}

// tlsDialer dials each server with cfg, naming the server by its host.
func tlsDialer(cfg *tls.Config) zk.Dialer {
	return func(network, address string, timeout time.Duration) (net.Conn, error) {
		c := cfg.Clone()
		if c.ServerName == "" {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			c.ServerName = host
		}
		d := &net.Dialer{Timeout: timeout}
		return tls.DialWithDialer(d, network, address, c)
	}
}

// WithDigest authenticates the session with ZooKeeper's digest scheme as
// user:password, and makes every znode zkcoord creates readable and
// writable by that identity only. go-zookeeper sends the credentials again
// on every new connection and after a session expiry.
func WithDigest(user, password string) Option {
	return func(o *options) error {
		if user == "" || strings.Contains(user, ":") {
			return fmt.Errorf("zkx: digest user %q: want a name, without ':'", user)
		}
		o.digestUser, o.pass = user, password
		return nil
	}
}

// WithSessionTimeout sets the requested session timeout (default 10s). The
// server may clamp it to its min/max session timeout.
func WithSessionTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("zkx: session timeout %v: must be positive", d)
		}
		o.timeout = d
		return nil
	}
}

// WithWritePipeline sets how many batches of MultiShared's group commit
// may be in flight at once (default DefaultWritePipeline; 1: each batch
// waits for the answer to the one before; at most 64). More can overlap
// ZooKeeper's work on one batch with its sync of another, where ZooKeeper
// has CPU to spare; fewer make bigger batches, which cost ZooKeeper less
// per write (BENCHMARKS.md, "Pipelined group commit" and "Tenth stop of
// issue 15").
func WithWritePipeline(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 64 {
			return fmt.Errorf("zkx: write pipeline %d: must be 1 to 64", n)
		}
		o.pipeline = n
		return nil
	}
}

// WithLogger sets the logger for session events (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("zkx: logger: nil")
		}
		o.log = l
		return nil
	}
}

// Dial connects to the ensemble named by connect ("host:port,host:port/chroot")
// and returns once a session is established. Cancelling ctx abandons the
// attempt and closes the connection.
func Dial(ctx context.Context, connect string, opt ...Option) (*Session, error) {
	o := options{timeout: 10 * time.Second, pipeline: DefaultWritePipeline, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, fn := range opt {
		if err := fn(&o); err != nil {
			return nil, err
		}
	}
	servers, chroot, err := ParseConnect(connect)
	if err != nil {
		return nil, err
	}
	s := &Session{servers: servers, chroot: chroot, timeout: o.timeout, log: o.log, changed: make(chan struct{}),
		acl: zk.WorldACL(zk.PermAll), observe: o.observe}
	s.order = newMultiOrder(func() (bool, <-chan struct{}) {
		st, ch := s.Watch()
		return st.State == StateConnected, ch
	})
	if o.digestUser != "" {
		s.acl, s.secured = zk.DigestACL(zk.PermAll, o.digestUser, o.pass), true
	}
	s.st.Since = time.Now()
	dial := zk.Dialer(net.DialTimeout) // go-zookeeper's default
	if o.tls != nil {
		dial = tlsDialer(o.tls)
	}
	conn, _, err := zk.Connect(servers, o.timeout,
		zk.WithEventCallback(s.onEvent),
		zk.WithLogger(zkLogger{o.log, s}),
		zk.WithMaxBufferSize(maxPacket),
		zk.WithDialer(ordered(dial, s.order)))
	if err != nil {
		return nil, fmt.Errorf("zkx: connect %q: %w", connect, err)
	}
	s.batch = &committer{send: func(ops []any) ([]zk.MultiResponse, error) { return conn.Multi(ops...) },
		order: s.order, observe: o.observe, depth: o.pipeline, early: batchEarly}
	s.mu.Lock()
	s.conn = conn
	if s.st.State == StateConnected && s.st.SessionID == 0 { // the first session came before Connect returned
		if id := conn.SessionID(); id != 0 {
			s.st.SessionID, s.st.Epoch = id, s.st.Epoch+1
		}
	}
	s.mu.Unlock()
	for {
		st, ch := s.Watch()
		if st.State == StateConnected {
			if s.secured {
				if err := conn.AddAuth("digest", []byte(o.digestUser+":"+o.pass)); err != nil {
					conn.Close()
					return nil, fmt.Errorf("zkx: digest auth with %q: %w", connect, err)
				}
			}
			return s, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			conn.Close()
			return nil, fmt.Errorf("zkx: no ZooKeeper session with %q: %w", connect, ctx.Err())
		}
	}
}

// onEvent runs on go-zookeeper's goroutine for every event; it must not block.
func (s *Session) onEvent(ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	s.link.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.State == StateClosed {
		return
	}
	prev := s.st
	next := prev
	switch ev.State {
	case zk.StateHasSession:
		next.State = StateConnected
		// s.conn is nil when the first session comes before zk.Connect
		// has returned (its loop runs already): Dial reads the ID then.
		if s.conn != nil {
			if id := s.conn.SessionID(); id != prev.SessionID {
				next.SessionID = id
				next.Epoch++
			}
		}
		next.Server = ev.Server
	case zk.StateDisconnected:
		if prev.State == StateConnected {
			next.State = StateDisconnected
		}
	case zk.StateExpired:
		next.State = StateExpired
		next.Expirations++
	default:
		return
	}
	if next.State == prev.State && next.SessionID == prev.SessionID {
		return
	}
	next.Since = time.Now()
	s.st = next
	close(s.changed)
	s.changed = make(chan struct{})
	s.log.Info("zookeeper session", "state", next.State.String(), "session", fmt.Sprintf("0x%x", next.SessionID),
		"server", next.Server, "epoch", next.Epoch)
}

// Link returns a number that moves with every session event (connecting,
// connected, disconnected, expired, a new session): on each new connection
// go-zookeeper reports the session before it sends any request on it. So
// when a caller reads the same Link before sending request A and after
// request B's answer came, A's and B's answers came on one connection, in
// the order the server sent them, with every watch notification that
// server sent between them. A linearizable read leans on that
// (registry's catch-up, DESIGN.md "Linearizable reads").
func (s *Session) Link() uint64 { return s.link.Load() }

// ACL returns the ACL of every znode zkcoord creates: open to the digest
// identity only under WithDigest, open to everyone otherwise.
func (s *Session) ACL() []zk.ACL { return s.acl }

// Secured reports whether the session was dialled WithDigest.
func (s *Session) Secured() bool { return s.secured }

// Conn returns the underlying connection. Its calls fail with
// zk.ErrNoServer or zk.ErrConnectionClosed while no server is reachable.
// Send multis through the Session (Multi, MultiShared), not Conn: with
// batches in flight together the Session orders their entry on the
// connection, and a multi written past it would end another's turn
// early (order.go).
func (s *Session) Conn() *zk.Conn { return s.conn }

// Status returns the current session state.
func (s *Session) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// Watch returns the current state and a channel closed at the next change.
func (s *Session) Watch() (Status, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st, s.changed
}

// Servers returns the ensemble's addresses from the connect string.
func (s *Session) Servers() []string { return s.servers }

// Chroot returns the connect string's chroot ("" when none).
func (s *Session) Chroot() string { return s.chroot }

// Timeout returns the session timeout: the one the server granted once
// known (it clamps requests to its min/max), the requested one before.
func (s *Session) Timeout() time.Duration {
	if ms := s.negotiated.Load(); ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return s.timeout
}

// ExpiryBound returns the earliest time at which the server may expire this
// session, given that the client noticed the disconnection at since.
// go-zookeeper notices a silent connection only after 2/3 of the timeout
// without a reply, and the server expires the session one timeout after the
// last packet it received, so the session may end one third of a timeout
// after the client noticed.
func (s *Session) ExpiryBound(since time.Time) time.Time {
	return since.Add(s.Timeout() / 3)
}

// WaitConnected blocks until the session is connected or ctx is done.
func (s *Session) WaitConnected(ctx context.Context) error {
	for {
		st, ch := s.Watch()
		switch st.State {
		case StateConnected:
			return nil
		case StateClosed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close ends the session; its ephemeral nodes are removed by ZooKeeper.
func (s *Session) Close() {
	s.mu.Lock()
	if s.st.State == StateClosed {
		s.mu.Unlock()
		return
	}
	s.st.State = StateClosed
	s.st.Since = time.Now()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.conn.Close()
	s.batch.close()
}

// ErrClosed reports use of a closed Session.
var ErrClosed = errors.New("zkx: session closed")

// zkLogger passes go-zookeeper's log lines to slog, and picks the granted
// session timeout out of its "authenticated" line (go-zookeeper does not
// expose it otherwise).
type zkLogger struct {
	l *slog.Logger
	s *Session
}

func (z zkLogger) Printf(format string, a ...any) {
	if format == "authenticated: id=%d, timeout=%d" && len(a) == 2 {
		if ms, ok := a[1].(int32); ok {
			z.s.negotiated.Store(int64(ms))
		}
	}
	z.l.Debug(fmt.Sprintf(format, a...), "component", "go-zookeeper")
}
