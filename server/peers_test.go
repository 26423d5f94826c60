package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestPeerCallsHonourDeadlineWhileZooKeeperStalls: a call forwarded to the
// replica that owns a lease first reads that replica's address from
// ZooKeeper; while ZooKeeper stalls, the read (and so the call) ends with
// the caller's deadline. (Through gRPC, the lease manager's own reads come
// first and already end with it, so the read is reached here directly.)
func TestPeerCallsHonourDeadlineWhileZooKeeperStalls(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	p := newPeers(sess, lease.Layout{Root: lay.Root}, nil, nil)
	defer p.close()
	const id = "0123456789abcdef0123456789abcdef"

	px.Stall()
	late := zktest.CheckDeadlines(t, 200*time.Millisecond, []zktest.DeadlineCall{
		{Name: "KeepAlive forwarded", Call: func(ctx context.Context) error {
			_, err := p.KeepAlive(ctx, "r9", id)
			return err
		}},
		{Name: "Handoff asked", Call: func(ctx context.Context) error { return p.Handoff(ctx, "r9", id) }},
		{Name: "GetLease forwarded", Call: func(ctx context.Context) error {
			_, err := p.Get(ctx, "r9", id)
			return err
		}},
	})
	px.Restore()
	late()
}

// TestPeerErr: a peer's PERMISSION_DENIED is lease.ErrNotHolder only with
// the LEASE_NOT_HOLDER ErrorInfo that the PeerService attaches to it; any
// other PERMISSION_DENIED or UNAUTHENTICATED is the peer refusing this
// replica's credentials, UNAVAILABLE naming the peer.
func TestPeerErr(t *testing.T) {
	notHolder := peerStatus(fmt.Errorf("%w: %q may not use it", lease.ErrNotHolder, "web"))
	if c := status.Code(notHolder); c != codes.PermissionDenied {
		t.Fatalf("the PeerService's ErrNotHolder: %v, want PERMISSION_DENIED", notHolder)
	}
	for _, c := range []struct {
		peer error // the peer's answer
		is   error // what peerErr's result wraps
		code codes.Code
	}{
		{notHolder, lease.ErrNotHolder, codes.PermissionDenied},
		{status.Error(codes.PermissionDenied, `principal "reader" lacks the admin right over every name`), errPeerRefused, codes.Unavailable},
		{status.Error(codes.Unauthenticated, "unknown bearer token"), errPeerRefused, codes.Unavailable},
		{peerStatus(lease.ErrNotFound), lease.ErrNotFound, codes.NotFound},
		{peerStatus(lease.ErrClosed), lease.ErrOwnedElsewhere, codes.Unavailable},
	} {
		err := peerErr("r7", c.peer)
		if !errors.Is(err, c.is) || status.Code(toStatus(err)) != c.code {
			t.Errorf("peerErr(%v) = %v (%v), want %v (%v)", c.peer, err, status.Code(toStatus(err)), c.is, c.code)
		}
		if c.is == errPeerRefused && (!strings.Contains(err.Error(), "replica r7") || !strings.Contains(err.Error(), "peer credentials")) {
			t.Errorf("peerErr(%v) = %q: name the replica and its refused peer credentials", c.peer, err)
		}
	}
}
