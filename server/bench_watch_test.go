package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// BenchmarkWatchMuxFanOut measures one membership change reaching 10,000
// watches of its group multiplexed on 16 Watch streams, one per
// connection: ns/op is per change, to every watch (the gateway's sends and
// the client's receives share the machine).
func BenchmarkWatchMuxFanOut(b *testing.B) {
	const watches, streams = 10000, 16
	reg := pb.NewRegistryServiceClient(testenv.Conn(b))
	group := benchMembers(b, reg, 1)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan int, streams)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	ready := make(chan error, 2*streams)
	for s := range streams {
		cc, err := grpc.NewClient(testenv.Gateway(b), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		st, err := pb.NewRegistryServiceClient(cc).Watch(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n := watches / streams
		for range n {
			if err := st.Send(&pb.WatchRequest{Request: &pb.WatchRequest_Create{Create: &pb.WatchCreateRequest{Group: group}}}); err != nil {
				b.Fatal(err)
			}
		}
		wg.Add(1)
		go func() { // ends with ctx: Recv fails then
			defer wg.Done()
			snaps, joins := 0, 0
			for {
				m, err := st.Recv()
				switch {
				case err != nil:
					return
				case m.GetCanceled():
					ready <- fmt.Errorf("stream %d: watch %d canceled: %s", s, m.GetWatchId(), m.GetCancelReason())
					return
				case m.GetEvent().GetType() == pb.WatchGroupResponse_TYPE_SNAPSHOT:
					if snaps++; snaps == n {
						ready <- nil
					}
				case m.GetEvent().GetType() == pb.WatchGroupResponse_TYPE_JOINED:
					if joins++; joins == n {
						joins = 0
						got <- s
					}
				}
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
