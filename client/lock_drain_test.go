package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestGiveUpDuringDrain: a Lock cancelled while it waits gives its place
// up, and an Unlock (a permit's Release) whose call is cancelled gives its
// hold (its permit) up, even when the replica serving their streams is
// draining at that moment. A
// draining replica keeps the holds of the streams that end meanwhile, for
// their clients to resume, and so kept the hold of a stream its client had
// just closed: under a session that lives on, the place later held the
// lock for nobody, and the hold (the permit) never ended. Replica a serves both
// streams (b is out of the client's reach until then), and its ZooKeeper
// stalls while it drains, so that the cancels land inside the drain; then
// another session must get the lock.
func TestGiveUpDuringDrain(t *testing.T) {
	ctx := ctxT(t)
	root := fmt.Sprintf("/lockdrain-%d", time.Now().UnixNano())
	zkA := zktest.NewProxy(t, testenv.ZooKeeper(t))
	a := testenv.StartReplicaVia(t, zkA.Addr(), root, "a")
	b := testenv.StartReplica(t, root, "b")
	toA, toB := zktest.NewProxy(t, a.Addr), zktest.NewProxy(t, b.Addr)
	truth, err := zkx.Dial(ctx, testenv.ZooKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	defer truth.Close()
	lay := zktest.Layout{Root: root}
	owner := func(s *client.Session) string {
		data, _, err := truth.Conn().Get(lay.Lease(lease.KeyOf(s.Lease())))
		if err != nil {
			t.Fatal(err)
		}
		var rec struct{ Owner string }
		_ = json.Unmarshal(data, &rec)
		return rec.Owner
	}
	toB.Cut()
	c, err := client.New(ctx, toA.Addr()+","+toB.Addr(), client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	holder, waiter, other := session(t, c), session(t, c), session(t, c)
	l, err := holder.Lock(ctx, "l")
	if err != nil {
		t.Fatal(err)
	}
	p, err := holder.AcquirePermit(ctx, "s", 1)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancelWait := context.WithCancel(ctx)
	queued := make(chan int, 10)
	done := make(chan error, 1)
	go func() {
		_, err := waiter.Lock(wctx, "l", client.WithOnLockQueued(func(p int) {
			select {
			case queued <- p:
			default:
			}
		}))
		done <- err
	}()
	select {
	case <-queued:
	case <-ctx.Done():
		t.Fatal("the waiter never queued")
	}
	// The streams are on a (their leases moved there with them).
	if h, w := owner(holder), owner(waiter); h != "a" || w != "a" {
		t.Fatalf("the holder's lease is on %q, the waiter's on %q; want both on a", h, w)
	}
	// b within the client's reach again: wait until a stream lands there.
	toB.Restore()
	for i := 0; ; i++ {
		pl, err := other.Lock(ctx, fmt.Sprintf("probe-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		on := owner(other)
		_ = pl.Unlock(ctx)
		if on == "b" {
			break
		}
		// Round robin takes the replicas in turn, and a probe makes two
		// calls: one more call now and then, or every probe's stream
		// would land on a.
		if i%2 == 0 {
			_, _ = c.Semaphore(ctx, "probe")
		}
	}
	// a's drain hands its leases off: writes, which wait while its
	// ZooKeeper stalls, before it ends the streams. NOT_SERVING says the
	// drain has begun.
	health := watchHealth(t, ctx, a.Addr)
	zkA.Stall()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		a.Stop()
	}()
	for st := range health {
		if st == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
	}
	// The cancels land inside the drain: a's streams end while it drains,
	// whether it sees the client's cancel first or ends them itself once
	// the hand-off is done.
	cancelWait()
	gone, abandon := context.WithCancel(ctx)
	abandon()
	if err := l.Unlock(gone); err == nil {
		t.Fatal("Unlock with a cancelled context: nil error")
	}
	if err := p.Release(gone); err == nil {
		t.Fatal("Release with a cancelled context: nil error")
	}
	zkA.Restore()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled Lock: %v", err)
	}
	<-stopped
	deadline := time.Now().Add(10 * time.Second)
	for ; ; time.Sleep(10 * time.Millisecond) {
		l2, err := other.TryLock(ctx, "l")
		if err == nil {
			_ = l2.Unlock(ctx)
			break
		}
		if time.Now().After(deadline) {
			kids, _, _ := truth.Conn().Children(lay.Lock("l"))
			t.Fatalf("the lock is not free 10s after its holder unlocked and its waiter gave up (TryLock: %v); its queue: %v", err, kids)
		}
	}
	for ; ; time.Sleep(10 * time.Millisecond) {
		p2, err := other.TryAcquirePermit(ctx, "s", 1)
		if err == nil {
			_ = p2.Release(ctx)
			break
		}
		if time.Now().After(deadline) {
			kids, _, _ := truth.Conn().Children(lay.Semaphore("s"))
			t.Fatalf("the permit is not free 10s after its holder released it (TryAcquirePermit: %v); its slots: %v", err, kids)
		}
	}
}

// watchHealth streams the health of the gateway at addr.
func watchHealth(t *testing.T, ctx context.Context, addr string) <-chan healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	w, err := healthpb.NewHealthClient(cc).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := w.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health of %s: %v, %v", addr, r, err)
	}
	out := make(chan healthpb.HealthCheckResponse_ServingStatus, 4)
	go func() {
		defer close(out)
		for {
			r, err := w.Recv()
			if err != nil {
				return
			}
			out <- r.Status
		}
	}()
	return out
}

// TestUnlockThroughAnotherReplica: a client of two replicas unlocks (its
// ReleaseLock goes to either) and the hold's context always ends with
// ErrReleased: the stream's gateway, which did not release the hold
// itself, reports it LOST, and that must not read as a lost lock. The
// same for a permit's Release.
func TestUnlockThroughAnotherReplica(t *testing.T) {
	ctx := ctxT(t)
	root := fmt.Sprintf("/unlockelsewhere-%d", time.Now().UnixNano())
	a, b := testenv.StartReplica(t, root, "a"), testenv.StartReplica(t, root, "b")
	c, err := client.New(ctx, a.Addr+","+b.Addr, client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := session(t, c)
	lost := 0
	for i := range 30 {
		l, err := s.Lock(ctx, "l")
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Unlock(ctx); err != nil {
			t.Fatalf("Unlock %d: %v", i, err)
		}
		<-l.Context().Done()
		if cause := context.Cause(l.Context()); !errors.Is(cause, client.ErrReleased) {
			lost++
			t.Logf("Unlock %d: the hold's context ended with %v", i, cause)
		}
	}
	if lost > 0 {
		t.Errorf("%d of 30 unlocked holds ended with another cause than ErrReleased", lost)
	}
	lost = 0
	for i := range 30 {
		p, err := s.AcquirePermit(ctx, "s", 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Release(ctx); err != nil {
			t.Fatalf("Release %d: %v", i, err)
		}
		if cause := context.Cause(p.Context()); !errors.Is(cause, client.ErrReleased) {
			lost++
			t.Logf("Release %d: the permit's context ended with %v", i, cause)
		}
	}
	if lost > 0 {
		t.Errorf("%d of 30 released permits ended with another cause than ErrReleased", lost)
	}
}
