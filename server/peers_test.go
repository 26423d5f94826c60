package server

import (
	"context"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/zktest"
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
	p := newPeers(sess, lay, nil, nil)
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
