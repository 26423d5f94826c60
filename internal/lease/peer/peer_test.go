package peer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

func TestMain(m *testing.M) { zktest.Main(m) }

// TestCallsHonourDeadlineWhileZooKeeperStalls: a call forwarded to the
// replica that owns a lease first reads that replica's address from
// ZooKeeper; while ZooKeeper stalls, the read (and so the call) ends with
// the caller's deadline. (Through gRPC, the lease manager's own reads come
// first and already end with it, so the read is reached here directly.)
func TestCallsHonourDeadlineWhileZooKeeperStalls(t *testing.T) {
	px := zktest.NewProxy(t, zktest.Addr(t))
	sess, lay := zktest.SessionThrough(t, px, zkx.WithSessionTimeout(20*time.Second))
	p := New(sess, lease.Layout{Root: lay.Root}, nil, nil)
	defer p.Close()
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

// TestClientErr: a peer's PERMISSION_DENIED is lease.ErrNotHolder only with
// the LEASE_NOT_HOLDER ErrorInfo that the PeerService attaches to it
// (NotHolderDetail); any other PERMISSION_DENIED or UNAUTHENTICATED is the
// peer refusing this replica's credentials (ErrRefused, naming the peer).
func TestClientErr(t *testing.T) {
	st, err := status.New(codes.PermissionDenied, "lease: held by another principal").WithDetails(NotHolderDetail())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		peer error // the peer's answer
		is   error // what clientErr's result wraps
	}{
		{st.Err(), lease.ErrNotHolder},
		{status.Error(codes.PermissionDenied, `principal "reader" lacks the admin right over every name`), ErrRefused},
		{status.Error(codes.Unauthenticated, "unknown bearer token"), ErrRefused},
		{status.Error(codes.NotFound, "lease: not found or expired"), lease.ErrNotFound},
		{status.Error(codes.Unavailable, "lease: manager closed"), lease.ErrOwnedElsewhere},
	} {
		err := clientErr("r7", c.peer)
		if !errors.Is(err, c.is) {
			t.Errorf("clientErr(%v) = %v, want %v", c.peer, err, c.is)
		}
		if c.is == ErrRefused && (!strings.Contains(err.Error(), "replica r7") || !strings.Contains(err.Error(), "peer credentials")) {
			t.Errorf("clientErr(%v) = %q: name the replica and its refused peer credentials", c.peer, err)
		}
	}
}
