package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testenv"
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
