package server_test

import (
	"context"
	"os"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// big100k is one 100,000-member group per benchmark binary: filling it
// (about a minute) is not part of any measure.
var big100k struct {
	once  sync.Once
	group string
}

func group100k(b *testing.B, reg pb.RegistryServiceClient) string {
	big100k.once.Do(func() {
		t0 := time.Now()
		big100k.group = benchMembers(b, reg, 100000)
		// A LINEARIZABLE read brings the cache up to every registration.
		if _, err := reg.Lookup(context.Background(), &pb.LookupRequest{Group: big100k.group, MemberId: "m0",
			Consistency: pb.Consistency_CONSISTENCY_LINEARIZABLE}); err != nil {
			b.Fatal(err)
		}
		b.Logf("filled 100,000 members in %v", time.Since(t0).Round(time.Second))
	})
	return big100k.group
}

// BenchmarkSnapshot100k opens a WatchGroup stream on a 100,000-member
// group (cache warm) and reads its snapshot, as snapshotRequest asks for
// it (in pages; one 5.3 MiB message before pages existed). ns/op is the
// whole snapshot; first-ms the time to its first message, the first page.
//
//	go test -run '^$' -bench 'Snapshot100k|LookupWhole100k' -benchtime 20x ./server/
func BenchmarkSnapshot100k(b *testing.B) {
	reg := pb.NewRegistryServiceClient(testenv.Conn(b))
	group := group100k(b, reg)
	var first time.Duration
	read := func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		t0 := time.Now()
		st, err := reg.WatchGroup(ctx, snapshotRequest(group), grpc.MaxCallRecvMsgSize(64<<20))
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			m, err := st.Recv()
			if err != nil || m.Type != pb.WatchGroupResponse_TYPE_SNAPSHOT {
				b.Fatalf("snapshot: %v, %v", m, err)
			}
			if n == 0 {
				first += time.Since(t0)
			}
			n += len(m.Members)
			if !m.More {
				break
			}
		}
		if n != 100000 {
			b.Fatalf("snapshot of %d members", n)
		}
	}
	read() // load the cache
	first = 0
	defer profileLoop(b)()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		read()
	}
	b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "first-ms")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// profileLoop writes a CPU profile of the benchmark's loop, not of the
// fill, to $SNAPSHOT_CPUPROFILE when it is set; call the function it
// returns at the end.
func profileLoop(b *testing.B) func() {
	path := os.Getenv("SNAPSHOT_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// cpuTime is the CPU time the process (gateway and client both) used so
// far: on a machine shared with other work, a steadier measure of a
// snapshot's cost than its wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLookupWhole100k reads a 100,000-member group with Lookup, every
// page of it (one answer before pages existed).
func BenchmarkLookupWhole100k(b *testing.B) {
	reg := pb.NewRegistryServiceClient(testenv.Conn(b))
	group := group100k(b, reg)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		if n := lookupWhole(b, reg, group); n != 100000 {
			b.Fatalf("Lookup of %d members", n)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
