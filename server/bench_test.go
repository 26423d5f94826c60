package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// The hot paths, against the test gateway (in-process, real ZooKeeper,
// gRPC over loopback). Compare before and after a change with benchstat:
//
//	go test -run '^$' -bench . -count 10 ./server/ > old.txt   # then new.txt
//	benchstat old.txt new.txt

var benchGroup atomic.Int64

// benchMembers registers n persistent members in a new group.
func benchMembers(b *testing.B, reg pb.RegistryServiceClient, n int) string {
	b.Helper()
	group := fmt.Sprintf("bench%d", benchGroup.Add(1))
	var wg sync.WaitGroup
	var failed atomic.Value
	next := atomic.Int64{}
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if _, err := reg.Register(context.Background(), &pb.RegisterRequest{Group: group, MemberId: fmt.Sprint("m", i), Value: "10.0.0.1:8080", Persistent: true}); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return group
}

func BenchmarkLookupCached(b *testing.B) {
	benchLookup(b, pb.NewRegistryServiceClient(testenv.Conn(b)), pb.Consistency_CONSISTENCY_UNSPECIFIED)
}

// BenchmarkLookupCachedAuth is BenchmarkLookupCached through the auth
// interceptors: a bearer token looked up, a scope checked, a token taken
// from the principal's rate bucket (a rate high enough never to refuse).
func BenchmarkLookupCachedAuth(b *testing.B) {
	dial, _ := authGateway(b)
	benchLookup(b, pb.NewRegistryServiceClient(dial("bench-token-0123456789")), pb.Consistency_CONSISTENCY_UNSPECIFIED)
}

func BenchmarkLookupLinearizable(b *testing.B) {
	benchLookup(b, pb.NewRegistryServiceClient(testenv.Conn(b)), pb.Consistency_CONSISTENCY_LINEARIZABLE)
}

// BenchmarkLookupLinearizableOne is one caller's LINEARIZABLE Lookup (issue
// 15, item 3): nothing to share the barrier write with.
func BenchmarkLookupLinearizableOne(b *testing.B) {
	reg := pb.NewRegistryServiceClient(testenv.Conn(b))
	group := benchMembers(b, reg, 10)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := reg.Lookup(context.Background(), &pb.LookupRequest{Group: group, MemberId: "m3", Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchLookup looks up one member of a 10-member group from 16 callers.
func benchLookup(b *testing.B, reg pb.RegistryServiceClient, consistency pb.Consistency) {
	group := benchMembers(b, reg, 10)
	b.ReportAllocs()
	b.SetParallelism(8) // 16 callers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb_ *testing.PB) {
		for pb_.Next() {
			if _, err := reg.Lookup(context.Background(), &pb.LookupRequest{Group: group, MemberId: "m3", Consistency: consistency}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkRegisterDeregister(b *testing.B) {
	cc := testenv.Conn(b)
	reg := pb.NewRegistryServiceClient(cc)
	leases := pb.NewLeaseServiceClient(cc)
	g, err := leases.Grant(context.Background(), &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	defer leases.Revoke(context.Background(), &pb.RevokeRequest{LeaseId: g.LeaseId})
	group := fmt.Sprintf("benchreg%d", benchGroup.Add(1))
	var id atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb_ *testing.PB) {
		for pb_.Next() {
			m := fmt.Sprint("m", id.Add(1))
			if _, err := reg.Register(context.Background(), &pb.RegisterRequest{Group: group, MemberId: m, Value: "v", LeaseId: g.LeaseId}); err != nil {
				b.Error(err)
				return
			}
			if _, err := reg.Deregister(context.Background(), &pb.DeregisterRequest{Group: group, MemberId: m, LeaseId: g.LeaseId}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRegisterDeregisterLeases is BenchmarkRegisterDeregister with a
// lease per caller, as the bench tool's register workload: one lease's
// writes are serialized (its op lock), different leases' share ZooKeeper
// transactions (group commit, DESIGN.md).
func BenchmarkRegisterDeregisterLeases(b *testing.B) {
	cc := testenv.Conn(b)
	reg := pb.NewRegistryServiceClient(cc)
	leases := pb.NewLeaseServiceClient(cc)
	callers := 8 * runtime.GOMAXPROCS(0)
	ids := make([]string, callers)
	for i := range ids {
		g, err := leases.Grant(context.Background(), &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = g.LeaseId
		defer leases.Revoke(context.Background(), &pb.RevokeRequest{LeaseId: g.LeaseId})
	}
	group := fmt.Sprintf("benchreg%d", benchGroup.Add(1))
	var id, caller atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb_ *testing.PB) {
		lease := ids[int(caller.Add(1)-1)%callers]
		for pb_.Next() {
			m := fmt.Sprint("m", id.Add(1))
			if _, err := reg.Register(context.Background(), &pb.RegisterRequest{Group: group, MemberId: m, Value: "v", LeaseId: lease}); err != nil {
				b.Error(err)
				return
			}
			if _, err := reg.Deregister(context.Background(), &pb.DeregisterRequest{Group: group, MemberId: m, LeaseId: lease}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkKeepAlive(b *testing.B) {
	leases := pb.NewLeaseServiceClient(testenv.Conn(b))
	g, err := leases.Grant(context.Background(), &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	defer leases.Revoke(context.Background(), &pb.RevokeRequest{LeaseId: g.LeaseId})
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb_ *testing.PB) {
		for pb_.Next() {
			if _, err := leases.KeepAlive(context.Background(), &pb.KeepAliveRequest{LeaseId: g.LeaseId}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkWatchFanOut measures one membership change reaching 1,000
// WatchGroup streams: ns/op is per change, to every stream.
func BenchmarkWatchFanOut(b *testing.B) {
	const streams = 1000
	cc := testenv.Conn(b)
	reg := pb.NewRegistryServiceClient(cc)
	group := benchMembers(b, reg, 1)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan struct{}, streams)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	ready := make(chan error, streams)
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: group})
			if err != nil {
				ready <- err
				return
			}
			if _, err := st.Recv(); err != nil {
				ready <- err
				return
			}
			ready <- nil
			for {
				if _, err := st.Recv(); err != nil {
					return
				}
				got <- struct{}{}
			}
		}()
	}
	for range streams {
		if err := <-ready; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: fmt.Sprint("x", i), Value: "v", Persistent: true}); err != nil {
			b.Fatal(err)
		}
		for range streams {
			<-got
		}
	}
}

// BenchmarkSnapshot10k opens a WatchGroup stream on a 10,000-member group
// (cache warm) and reads its SNAPSHOT.
func BenchmarkSnapshot10k(b *testing.B) {
	reg := pb.NewRegistryServiceClient(testenv.Conn(b))
	group := benchMembers(b, reg, 10000)
	read := func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st, err := reg.WatchGroup(ctx, &pb.WatchGroupRequest{Group: group}, grpc.MaxCallRecvMsgSize(64<<20))
		if err != nil {
			b.Fatal(err)
		}
		m, err := st.Recv()
		if err != nil || len(m.Members) != 10000 {
			b.Fatalf("snapshot: %v, %d members", err, len(m.GetMembers()))
		}
	}
	read() // load the cache
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		read()
	}
}

// BenchmarkLongPollWakeHTTP measures how long a change takes to answer
// blocking queries over HTTP, as PHP workers hold them: pollers each
// long-poll a group (GET /v1/groups/{group}?afterRevision=R&wait=60s, on
// keep-alive connections) and poll again at once from each answer's
// revision; each iteration registers or deregisters a member (gRPC) once
// every poller waits, and times each answer from that call's return. ns/op
// is per change; p50-ms and p99-ms are over every answer.
//
//	go test -run '^$' -bench LongPollWakeHTTP -benchtime 200x ./server/
func BenchmarkLongPollWakeHTTP(b *testing.B) {
	for _, pollers := range []int{1, 100} {
		b.Run(fmt.Sprint("pollers=", pollers), func(b *testing.B) { benchLongPollWake(b, pollers) })
	}
}

func benchLongPollWake(b *testing.B, pollers int) {
	cc := testenv.Conn(b)
	reg, st := pb.NewRegistryServiceClient(cc), pb.NewStatusServiceClient(cc)
	group := benchMembers(b, reg, 1)
	first, err := reg.Lookup(context.Background(), &pb.LookupRequest{Group: group})
	if err != nil {
		b.Fatal(err)
	}
	base := testenv.HTTP(b) + "/v1/groups/" + group
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: pollers}}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	answers := make(chan time.Time, pollers)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rev := strconv.FormatInt(first.Revision, 10)
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", base+"?afterRevision="+rev+"&wait=60s", nil)
				resp, err := hc.Do(req)
				if err != nil {
					return
				}
				var body struct{ Revision string }
				err = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					return
				}
				if body.Revision != rev {
					answers <- time.Now()
				}
				rev = body.Revision
			}
		}()
	}
	waiting := func() {
		for {
			s, err := st.GetStatus(ctx, &pb.GetStatusRequest{})
			if err != nil {
				b.Fatal(err)
			}
			if s.Polls == int64(pollers) {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	lat := make([]time.Duration, 0, b.N*pollers)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		waiting()
		b.StartTimer()
		var err error
		if i%2 == 0 { // the group stays at one or two members: answers stay small
			_, err = reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: "x", Value: "v", Persistent: true})
		} else {
			_, err = reg.Deregister(ctx, &pb.DeregisterRequest{Group: group, MemberId: "x"})
		}
		if err != nil {
			b.Fatal(err)
		}
		changed := time.Now()
		for range pollers {
			select {
			case at := <-answers:
				lat = append(lat, max(at.Sub(changed), 0))
			case <-time.After(30 * time.Second):
				b.Fatal("a poller did not answer within 30s")
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
