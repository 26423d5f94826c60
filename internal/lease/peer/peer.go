// Package peer is how zkcoord replicas reach each other for the lease
// manager: a Client (lease.Peers) that finds a replica's address in its
// announcement and calls its PeerService, forwarding the caller it acts for;
// and Announce, which keeps this replica's announcement
// (<root>/replicas/<id>, docs/REPLICAS.md). The PeerService itself is served
// by package server.
package peer

import (
	"context"
	"errors"
	"fmt"
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

	peerpb "github.com/zkcoord/zkcoord/gen/zkcoord/peer/v1"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// Errors a Client returns besides the lease package's.
var (
	// ErrUnreachable: the replica that owns a lease cannot be called (its
	// address cannot be read or dialled).
	ErrUnreachable = errors.New("zkcoord: cannot reach the replica that owns the lease")
	// ErrRefused: the replica that owns a lease refused this replica's
	// peer credentials (a misconfiguration of the replicas, not the
	// caller's fault).
	ErrRefused = errors.New("zkcoord: peer credentials refused")
)

// Client reaches other replicas for the lease manager (lease.Peers): it
// finds a replica's address in <root>/replicas/<id> and calls its
// PeerService.
type Client struct {
	sess *zkx.Session
	lay  lease.Layout

	creds credentials.TransportCredentials
	token credentials.PerRPCCredentials // nil: none

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // by address
}

var _ lease.Peers = (*Client)(nil)

// New returns a Client that dials replicas with creds (nil: plaintext) and
// presents token (nil: none) to their PeerService.
func New(sess *zkx.Session, lay lease.Layout, creds credentials.TransportCredentials, token credentials.PerRPCCredentials) *Client {
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	return &Client{sess: sess, lay: lay, creds: creds, token: token, conns: map[string]*grpc.ClientConn{}}
}

// client returns a client of replica's PeerService, reading its address
// from ZooKeeper bounded by ctx.
func (p *Client) client(ctx context.Context, replica string) (peerpb.PeerServiceClient, error) {
	addr, _, err := p.sess.Get(ctx, p.lay.Replica(replica))
	switch {
	case errors.Is(err, zk.ErrNoNode):
		return nil, fmt.Errorf("%w: replica %s is gone; its leases are adopted once its session ends", lease.ErrOwnedElsewhere, replica)
	case zkx.Unknown(err): // ZooKeeper unreachable (UNAVAILABLE), or ctx ended
		return nil, fmt.Errorf("zkcoord: read the address of replica %s: %w", replica, err)
	case err != nil:
		return nil, fmt.Errorf("%w: replica %s: read its address: %v", ErrUnreachable, replica, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cc, ok := p.conns[string(addr)]
	if !ok {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(p.creds), connectParams}
		if p.token != nil {
			opts = append(opts, grpc.WithPerRPCCredentials(p.token))
		}
		if cc, err = grpc.NewClient(string(addr), opts...); err != nil {
			return nil, fmt.Errorf("%w: replica %s: its address %q: %v", ErrUnreachable, replica, addr, err)
		}
		p.conns[string(addr)] = cc
	}
	return peerpb.NewPeerServiceClient(cc), nil
}

// connectParams reconnect to a replica within a second of its coming
// back: a replica restarted in place (same address) owns leases adopted at
// its start, and keepalives forwarded to it fail while the connection backs
// off (gRPC's default backoff grows to two minutes).
var connectParams = grpc.WithConnectParams(grpc.ConnectParams{
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

// WithCaller returns ctx acting for the caller a peer forwarded, if any
// (the PeerService's side of callerPB).
func WithCaller(ctx context.Context, c *peerpb.Caller) context.Context {
	if c == nil {
		return ctx
	}
	return lease.WithCaller(ctx, lease.Caller{Name: c.GetName(), Admin: c.GetAdmin()})
}

func (p *Client) KeepAlive(ctx context.Context, replica, id string) (lease.Lease, error) {
	c, err := p.client(ctx, replica)
	if err != nil {
		return lease.Lease{}, err
	}
	r, err := c.KeepAlive(ctx, &peerpb.KeepAliveRequest{LeaseId: id, Caller: callerPB(ctx)})
	if err != nil {
		return lease.Lease{}, clientErr(replica, err)
	}
	return lease.Lease{ID: id, Key: lease.KeyOf(id), TTL: r.GetTtl().AsDuration(), ExpiresAt: r.GetExpiresAt().AsTime()}, nil
}

func (p *Client) Handoff(ctx context.Context, replica, id string) error {
	c, err := p.client(ctx, replica)
	if err != nil {
		return err
	}
	if _, err := c.Handoff(ctx, &peerpb.HandoffRequest{LeaseId: id, Caller: callerPB(ctx)}); err != nil {
		return clientErr(replica, err)
	}
	return nil
}

func (p *Client) Get(ctx context.Context, replica, id string) (lease.Lease, error) {
	c, err := p.client(ctx, replica)
	if err != nil {
		return lease.Lease{}, err
	}
	r, err := c.GetLease(ctx, &peerpb.GetLeaseRequest{LeaseId: id, Caller: callerPB(ctx)})
	if err != nil {
		return lease.Lease{}, clientErr(replica, err)
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

// NotHolderDetail is the detail a PeerService attaches to the status of
// lease.ErrNotHolder, so that the forwarding replica tells it from a
// refusal of its own credentials.
func NotHolderDetail() *errdetails.ErrorInfo {
	return &errdetails.ErrorInfo{Domain: errorDomain, Reason: reasonNotHolder}
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

// clientErr turns a peer's status back into the lease package's errors. A
// peer that refuses this replica's own credentials is ErrRefused
// (UNAVAILABLE), not the caller's PERMISSION_DENIED: only the
// LEASE_NOT_HOLDER reason says the caller may not use the lease.
func clientErr(replica string, err error) error {
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
			ErrRefused, replica, st.Code(), st.Message())
	case codes.Unavailable:
		return fmt.Errorf("%w: replica %s: %s", lease.ErrOwnedElsewhere, replica, st.Message())
	}
	return fmt.Errorf("lease: replica %s: %w", replica, err)
}

// Close closes the connections to the other replicas.
func (p *Client) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cc := range p.conns {
		cc.Close()
	}
	p.conns = map[string]*grpc.ClientConn{}
}
