package server_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// The requests of BenchmarkSnapshot100k and BenchmarkLookupWhole100k: in
// pages. (The tree before pages measured the same benchmarks with a copy
// of this file that asks for one message: docs/BENCHMARKS.md.)

func snapshotRequest(group string) *pb.WatchGroupRequest {
	return &pb.WatchGroupRequest{Group: group, SnapshotPageSize: 10000}
}

// lookupWhole reads every page of group and returns how many members.
func lookupWhole(b *testing.B, reg pb.RegistryServiceClient, group string) int {
	n := 0
	req := &pb.LookupRequest{Group: group}
	for {
		p, err := reg.Lookup(context.Background(), req, grpc.MaxCallRecvMsgSize(64<<20))
		if err != nil {
			b.Fatal(err)
		}
		n += len(p.Members)
		if p.NextPageToken == "" {
			return n
		}
		req = &pb.LookupRequest{Group: group, PageToken: p.NextPageToken}
	}
}
