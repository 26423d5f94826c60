package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// TestRevokeIsAtomic: a lease that owns 200 members ends in one ZooKeeper
// transaction, at revision R, while callers look the group up (CACHED) and
// open new watches on two gateways: the one that revoked the lease and
// another on the same ZooKeeper. Every answer is the group exactly at the
// revision it names: all 200 members before R, none from R on. Watches
// opened before the end receive the 200 LEFTs as one unit: revision R on
// every message, more on all but the last.
func TestRevokeIsAtomic(t *testing.T) {
	const n = 200
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root := fmt.Sprintf("/%s-%d", name(t), time.Now().UnixNano())
	group := "g"
	a, b := startReplica(t, root, "a"), startReplica(t, root, "b")
	regs := map[string]pb.RegistryServiceClient{"a": pb.NewRegistryServiceClient(a.cc), "b": pb.NewRegistryServiceClient(b.cc)}
	leaseA := pb.NewLeaseServiceClient(a.cc)
	l, err := leaseA.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	registerMembers(ctx, t, regs["a"], group, l.LeaseId, n)

	// Watches opened before the end, and caches that hold every member.
	streams := map[string]pb.RegistryService_WatchGroupClient{}
	for gw, reg := range regs {
		if v, err := reg.Lookup(ctx, &pb.LookupRequest{Group: group, Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); err != nil || len(v.Members) != n {
			t.Fatalf("lookup on %s: %d members, %v", gw, len(v.GetMembers()), err)
		}
		w, err := reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: group})
		if err != nil {
			t.Fatal(err)
		}
		if s, err := w.Recv(); err != nil || len(s.Members) != n {
			t.Fatalf("snapshot on %s: %d members, %v", gw, len(s.GetMembers()), err)
		}
		streams[gw] = w
	}

	// Callers on both gateways: cached lookups and new watches' snapshots.
	type answer struct {
		gw, kind string
		rev      int64
		n        int
	}
	var (
		mu      sync.Mutex
		answers []answer
		stop    atomic.Bool
		wg      sync.WaitGroup
		started sync.WaitGroup
	)
	emptied := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	once := map[string]*sync.Once{"a": {}, "b": {}}
	record := func(a answer) {
		mu.Lock()
		answers = append(answers, a)
		mu.Unlock()
		if a.n == 0 {
			once[a.gw].Do(func() { close(emptied[a.gw]) })
		}
	}
	call := map[string]func(pb.RegistryServiceClient) (int64, int, error){
		"lookup": func(reg pb.RegistryServiceClient) (int64, int, error) {
			v, err := reg.Lookup(ctx, &pb.LookupRequest{Group: group})
			return v.GetRevision(), len(v.GetMembers()), err
		},
		"snapshot": func(reg pb.RegistryServiceClient) (int64, int, error) {
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			w, err := reg.WatchGroup(wctx, &pb.WatchGroupRequest{Group: group})
			if err != nil {
				return 0, 0, err
			}
			s, err := w.Recv()
			return s.GetRevision(), len(s.GetMembers()), err
		},
	}
	for gw, reg := range regs {
		for _, kind := range []string{"lookup", "lookup", "snapshot"} {
			wg.Add(1)
			started.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					rev, got, err := call[kind](reg)
					if err != nil {
						t.Errorf("%s on %s: %v", kind, gw, err)
						if i == 0 {
							started.Done()
						}
						return
					}
					record(answer{gw, kind, rev, got})
					if i == 0 {
						started.Done()
					}
				}
			}()
		}
	}
	started.Wait()
	if _, err := leaseA.Revoke(ctx, &pb.RevokeRequest{LeaseId: l.LeaseId}); err != nil {
		t.Fatal(err)
	}

	// The watches opened before: n LEFTs of one revision, as one unit.
	end := int64(0)
	for gw, w := range streams {
		bad := 0
		for i := range n {
			ev, err := w.Recv()
			if err != nil {
				t.Fatalf("watch on %s, message %d after the end: %v", gw, i, err)
			}
			if end == 0 {
				end = ev.Revision
			}
			if ev.Type != pb.WatchGroupResponse_TYPE_LEFT || ev.Revision != end || ev.More != (i < n-1) {
				if bad == 0 {
					t.Errorf("watch on %s, message %d of the lease's end: %v %d more=%v, want LEFT %d more=%v",
						gw, i, ev.Type, ev.Revision, ev.More, end, i < n-1)
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("watch on %s: %d of the %d messages of the lease's end are wrong", gw, bad, n)
		}
	}
	for gw, ch := range emptied {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("the callers on %s never saw the group empty", gw)
		}
	}
	stop.Store(true)
	wg.Wait()

	torn := map[string]int{}
	total := map[string]int{}
	for _, ans := range answers {
		want := n
		if ans.rev >= end {
			want = 0
		}
		key := ans.kind + " on " + ans.gw
		total[key]++
		if ans.n != want {
			if torn[key] == 0 {
				t.Errorf("%s: revision %d (the lease ended at %d) with %d of its %d members, want %d", key, ans.rev, end, ans.n, n, want)
			}
			torn[key]++
		}
	}
	t.Logf("answers: %v; torn: %v", total, torn)
	if len(torn) > 0 {
		t.Errorf("torn answers: %v of %v", torn, total)
	}
}

// registerMembers registers members m0.. of group under leaseID.
func registerMembers(ctx context.Context, t *testing.T, reg pb.RegistryServiceClient, group, leaseID string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: fmt.Sprint("m", i), Value: "v", LeaseId: leaseID}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}
