package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	peerpb "github.com/zkcoord/zkcoord/gen/zkcoord/peer/v1"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// peers reaches other replicas for the lease manager (lease.Peers): it finds
// a replica's address in <root>/replicas/<id> and calls its PeerService.
type peers struct {
	sess *zkx.Session
	lay  lease.Layout

	creds credentials.TransportCredentials
	token credentials.PerRPCCredentials // nil: none

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // by address
}

var _ lease.Peers = (*peers)(nil)

func newPeers(sess *zkx.Session, lay lease.Layout, creds credentials.TransportCredentials, token credentials.PerRPCCredentials) *peers {
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	return &peers{sess: sess, lay: lay, creds: creds, token: token, conns: map[string]*grpc.ClientConn{}}
}

// client returns a client of replica's PeerService, reading its address
// from ZooKeeper bounded by ctx.
func (p *peers) client(ctx context.Context, replica string) (peerpb.PeerServiceClient, error) {
	addr, _, err := p.sess.Get(ctx, p.lay.Replica(replica))
	switch {
	case errors.Is(err, zk.ErrNoNode):
		return nil, fmt.Errorf("%w: replica %s is gone; its leases are adopted once its session ends", lease.ErrOwnedElsewhere, replica)
	case zkx.Unknown(err): // ZooKeeper unreachable (UNAVAILABLE), or ctx ended
		return nil, fmt.Errorf("zkcoord: read the address of replica %s: %w", replica, err)
	case err != nil:
		return nil, fmt.Errorf("%w: replica %s: read its address: %v", errPeerUnreachable, replica, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cc, ok := p.conns[string(addr)]
	if !ok {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(p.creds), peerConnectParams}
		if p.token != nil {
			opts = append(opts, grpc.WithPerRPCCredentials(p.token))
		}
		if cc, err = grpc.NewClient(string(addr), opts...); err != nil {
			return nil, fmt.Errorf("%w: replica %s: its address %q: %v", errPeerUnreachable, replica, addr, err)
		}
		p.conns[string(addr)] = cc
	}
	return peerpb.NewPeerServiceClient(cc), nil
}

// peerConnectParams reconnect to a replica within a second of its coming
// back: a replica restarted in place (same address) owns leases adopted at
// its start, and keepalives forwarded to it fail while the connection backs
// off (gRPC's default backoff grows to two minutes).
var peerConnectParams = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
	MinConnectTimeout: time.Second,
})

// callerPB is the Caller of ctx for a forwarded call; nil when the
// replica acts for itself.
func callerPB(ctx context.Context) *peerpb.Caller {
	c, ok := lease.CallerFrom(ctx)
	if !ok {
		return nil
	}
	return &peerpb.Caller{Name: c.Name, Admin: c.Admin}
}

// withCaller returns ctx acting for the caller a peer forwarded, if any.
func withCaller(ctx context.Context, c *peerpb.Caller) context.Context {
	if c == nil {
		return ctx
	}
	return lease.WithCaller(ctx, lease.Caller{Name: c.GetName(), Admin: c.GetAdmin()})
}

func (p *peers) KeepAlive(ctx context.Context, replica, id string) (lease.Lease, error) {
	c, err := p.client(ctx, replica)
	if err != nil {
		return lease.Lease{}, err
	}
	r, err := c.KeepAlive(ctx, &peerpb.KeepAliveRequest{LeaseId: id, Caller: callerPB(ctx)})
	if err != nil {
		return lease.Lease{}, peerErr(replica, err)
	}
	return lease.Lease{ID: id, Key: lease.KeyOf(id), TTL: r.GetTtl().AsDuration(), ExpiresAt: r.GetExpiresAt().AsTime()}, nil
}

func (p *peers) Handoff(ctx context.Context, replica, id string) error {
	c, err := p.client(ctx, replica)
	if err != nil {
		return err
	}
	if _, err := c.Handoff(ctx, &peerpb.HandoffRequest{LeaseId: id, Caller: callerPB(ctx)}); err != nil {
		return peerErr(replica, err)
	}
	return nil
}

func (p *peers) Get(ctx context.Context, replica, id string) (lease.Lease, error) {
	c, err := p.client(ctx, replica)
	if err != nil {
		return lease.Lease{}, err
	}
	r, err := c.GetLease(ctx, &peerpb.GetLeaseRequest{LeaseId: id, Caller: callerPB(ctx)})
	if err != nil {
		return lease.Lease{}, peerErr(replica, err)
	}
	return lease.Lease{ID: id, Key: lease.KeyOf(id), TTL: r.GetTtl().AsDuration(), ExpiresAt: r.GetExpiresAt().AsTime()}, nil
}

// The ErrorInfo with which the PeerService says lease.ErrNotHolder: the
// caller it acts for does not hold the lease. A PERMISSION_DENIED without
// it is the peer's authorization refusing this replica.
const (
	errorDomain     = "zkcoord.dev"
	reasonNotHolder = "LEASE_NOT_HOLDER"
)

// peerStatus is toStatus for the PeerService: lease.ErrNotHolder gets the
// LEASE_NOT_HOLDER ErrorInfo, which peerErr maps back.
func peerStatus(err error) error {
	serr := toStatus(err)
	if !errors.Is(err, lease.ErrNotHolder) {
		return serr
	}
	st, err := status.Convert(serr).WithDetails(&errdetails.ErrorInfo{Domain: errorDomain, Reason: reasonNotHolder})
	if err != nil {
		return serr
	}
	return st.Err()
}

// notHolder reports whether st carries the LEASE_NOT_HOLDER ErrorInfo.
func notHolder(st *status.Status) bool {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetDomain() == errorDomain && ei.GetReason() == reasonNotHolder {
			return true
		}
	}
	return false
}

// peerErr turns a peer's status back into the lease package's errors. A
// peer that refuses this replica's own credentials is errPeerRefused
// (UNAVAILABLE), not the caller's PERMISSION_DENIED: only the
// LEASE_NOT_HOLDER reason says the caller may not use the lease.
func peerErr(replica string, err error) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.NotFound:
		return fmt.Errorf("%w (at replica %s)", lease.ErrNotFound, replica)
	case codes.PermissionDenied, codes.Unauthenticated:
		if st.Code() == codes.PermissionDenied && notHolder(st) {
			return fmt.Errorf("%w (at replica %s)", lease.ErrNotHolder, replica)
		}
		return fmt.Errorf("%w by replica %s (%s: %s): this replica's peer credentials need a principal with the admin "+
			"right over every name (check its --peer-token-file, or its client certificate's principal)",
			errPeerRefused, replica, st.Code(), st.Message())
	case codes.Unavailable:
		return fmt.Errorf("%w: replica %s: %s", lease.ErrOwnedElsewhere, replica, st.Message())
	}
	return fmt.Errorf("lease: replica %s: %w", replica, err)
}

func (p *peers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cc := range p.conns {
		cc.Close()
	}
	p.conns = map[string]*grpc.ClientConn{}
}

// peerService answers other replicas.
type peerService struct {
	peerpb.UnimplementedPeerServiceServer
	g *Gateway
}

var _ peerpb.PeerServiceServer = (*peerService)(nil)

func (s *peerService) KeepAlive(ctx context.Context, req *peerpb.KeepAliveRequest) (*peerpb.KeepAliveResponse, error) {
	l, err := s.g.leases.KeepAliveLocal(withCaller(ctx, req.GetCaller()), req.GetLeaseId())
	if err != nil {
		return nil, peerStatus(err)
	}
	return &peerpb.KeepAliveResponse{Ttl: durationpb.New(l.TTL), ExpiresAt: timestamppb.New(l.ExpiresAt)}, nil
}

func (s *peerService) Handoff(ctx context.Context, req *peerpb.HandoffRequest) (*peerpb.HandoffResponse, error) {
	if err := s.g.leases.Handoff(withCaller(ctx, req.GetCaller()), req.GetLeaseId()); err != nil {
		return nil, peerStatus(err)
	}
	return &peerpb.HandoffResponse{}, nil
}

func (s *peerService) GetLease(ctx context.Context, req *peerpb.GetLeaseRequest) (*peerpb.GetLeaseResponse, error) {
	l, err := s.g.leases.Get(withCaller(ctx, req.GetCaller()), req.GetLeaseId())
	if err != nil {
		return nil, peerStatus(err)
	}
	return &peerpb.GetLeaseResponse{Ttl: durationpb.New(l.TTL), ExpiresAt: timestamppb.New(l.ExpiresAt)}, nil
}

// announce keeps this replica's node in <root>/replicas: it creates it on
// each new session, replaces one left by a dead process with the same id
// (an ephemeral of another session), and re-creates it if it goes. It runs
// until ctx is done.
func (g *Gateway) announce(ctx context.Context) {
	node := g.lay.Replica(g.opts.replicaID)
	attempt := 0
	for {
		st, changed := g.sess.Watch()
		var gone <-chan zk.Event
		if st.State == zkx.StateConnected {
			ch, err := g.announceOnce(ctx, node, st.SessionID)
			if err != nil && !zkx.Unknown(err) {
				g.log.Warn("announce replica", "err", err)
			}
			gone = ch
			if err != nil {
				if !zkx.Backoff(ctx, attempt) {
					return
				}
				attempt++
				continue
			}
			attempt = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-gone:
		}
	}
}

// announceOnce makes node an ephemeral of this session and returns a watch
// that fires when it changes or goes.
func (g *Gateway) announceOnce(ctx context.Context, node string, session int64) (<-chan zk.Event, error) {
	c := g.sess
	for {
		ok, stat, ch, err := c.ExistsW(ctx, node)
		if err != nil {
			return nil, err
		}
		if ok && stat.EphemeralOwner == session {
			return ch, nil
		}
		if ok { // a dead predecessor's node: it goes with its session anyway
			if err := c.Delete(ctx, node, stat.Version); err != nil && !errors.Is(err, zk.ErrNoNode) && !errors.Is(err, zk.ErrBadVersion) {
				return nil, err
			}
		}
		_, err = c.Create(ctx, node, []byte(g.opts.advertise), zk.FlagEphemeral)
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return nil, err
		}
	}
}

// defaultReplicaID is hostname-pid: unique per process, so a restarted
// replica never mistakes a predecessor's owner nodes for its own.
func defaultReplicaID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// AdvertiseAddr turns a listener's address into one peers can dial: an
// unspecified IP (":7070", "0.0.0.0:7070") becomes the hostname.
func AdvertiseAddr(listen net.Addr) string {
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return listen.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}
