package main

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// watchMany is `watch GROUP GROUP...`: every group on one Watch stream
// (watch i+1 is groups[i]), each line prefixed with its group. A group the
// gateway refuses is reported on stderr and dropped; a watch it cuts alone
// (too slow) is created again at once after its last whole revision; when
// the stream breaks, resume opens it again and every watch resumes.
func watchMany(ctx context.Context, cc *grpc.ClientConn, p printer, stderr io.Writer, groups []string) error {
	after := make([]int64, len(groups))
	dropped := make([]bool, len(groups))
	live := len(groups)
	return resume(ctx, stderr, "watch", func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := pb.NewRegistryServiceClient(cc).Watch(ctx)
		if err != nil {
			return false, err
		}
		created := make([]bool, len(groups))
		create := func(i int) error {
			created[i] = false
			return stream.Send(&pb.WatchRequest{Request: &pb.WatchRequest_Create{Create: &pb.WatchCreateRequest{
				WatchId: int64(i + 1), Group: groups[i], StartRevision: after[i], SnapshotPageSize: snapshotPage}}})
		}
		for i := range groups {
			if !dropped[i] {
				if err := create(i); err != nil {
					return false, err
				}
			}
		}
		got := false
		for live > 0 {
			msg, err := stream.Recv()
			if err != nil {
				return got, err
			}
			i := int(msg.GetWatchId()) - 1
			if i < 0 || i >= len(groups) || dropped[i] {
				continue
			}
			switch ev := msg.GetEvent(); {
			case msg.GetCreated():
				created[i] = true
			case msg.GetCanceled():
				err := status.Error(codes.Code(msg.GetCancelCode()), msg.GetCancelReason())
				switch {
				case resumable(err) && created[i]:
					fmt.Fprintf(stderr, "zkcoord: watch %s: %v; resuming after revision %d\n", groups[i], rpcErr(err), after[i])
					if err := create(i); err != nil {
						return got, err
					}
				case resumable(err):
					return got, err
				default:
					fmt.Fprintf(stderr, "zkcoord: watch %s: %v\n", groups[i], rpcErr(err))
					dropped[i] = true
					live--
				}
			case ev != nil:
				got = true
				if err := p.print(msg, func(w io.Writer) { watchLines(w, ev, groups[i]) }); err != nil {
					return got, err
				}
				if !ev.GetMore() {
					after[i] = ev.GetRevision()
				}
			}
		}
		return got, status.Error(codes.InvalidArgument, "every group was refused")
	})
}
