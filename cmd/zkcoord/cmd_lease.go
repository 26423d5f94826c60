package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

func newLeaseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lease",
		Short: "Grant, keep alive, revoke and read leases",
		Long: `A lease owns members, candidacies, barrier places, lock holds and semaphore
permits; when it ends (revoked, or not kept alive within its TTL) they go.
"zkcoord ls leases" lists them (admin only).`,
		Args: noArgs,
	}
	lease := func(cc *grpc.ClientConn) pb.LeaseServiceClient { return pb.NewLeaseServiceClient(cc) }

	grant := &cobra.Command{Use: "grant TTL", Short: "Grant a lease of TTL, 1s to 24h (Grant)", Args: argsBetween(1, 1), Example: "  zkcoord lease grant 30s"}
	grant.RunE = runE(func(cmd *cobra.Command, args []string) error {
		ttl, err := time.ParseDuration(args[0])
		if err != nil {
			return usageErr("TTL %q: %v", args[0], err)
		}
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := lease(cc).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(ttl)})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				row(w, "LEASE", "TTL", "EXPIRES")
				row(w, resp.GetLeaseId(), dur(resp.GetTtl()), ts(resp.GetExpiresAt()))
			})
		})
	})

	var forever bool
	keepalive := &cobra.Command{
		Use:   "keepalive ID [--forever]",
		Short: "Renew a lease once (KeepAlive), or every third of its TTL until interrupted (KeepAliveStream)",
		Args:  argsBetween(1, 1),
	}
	keepalive.Flags().BoolVar(&forever, "forever", false, "keep renewing over a stream, one line per renewal, until interrupted or the lease is gone")
	keepalive.RunE = runE(func(cmd *cobra.Command, args []string) error {
		return g.withConn(func(cc *grpc.ClientConn) error {
			if forever {
				return keepAliveForever(cmd, g, lease(cc), args[0])
			}
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := lease(cc).KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: args[0]})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				row(w, "LEASE", "TTL", "EXPIRES")
				row(w, args[0], dur(resp.GetTtl()), ts(resp.GetExpiresAt()))
			})
		})
	})

	revoke := &cobra.Command{Use: "revoke ID", Short: "End a lease now, removing all it owns (Revoke)", Args: argsBetween(1, 1)}
	revoke.RunE = runE(func(cmd *cobra.Command, args []string) error {
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := lease(cc).Revoke(ctx, &pb.RevokeRequest{LeaseId: args[0]})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				fmt.Fprintf(w, "revoked %s at revision %d\n", args[0], resp.GetRevision())
			})
		})
	})

	get := &cobra.Command{Use: "get ID", Short: "Show a lease's TTL, expiry and what it owns (GetLease)", Args: argsBetween(1, 1)}
	get.RunE = runE(func(cmd *cobra.Command, args []string) error {
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := lease(cc).GetLease(ctx, &pb.GetLeaseRequest{LeaseId: args[0]})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				row(w, "LEASE", "TTL", "EXPIRES", "OWNS")
				row(w, args[0], dur(resp.GetTtl()), ts(resp.GetExpiresAt()), strings.Join(resp.GetOwned(), ","))
			})
		})
	})
	cmd.AddCommand(grant, keepalive, revoke, get)
	return cmd
}

// keepAliveForever renews lease over a stream every third of its TTL,
// printing each renewal, until ctx ends (exit 0) or the lease is refused
// (gone, or not the caller's). A stream that breaks for a reason that
// passes is opened again (resume) at once, then backing off: the lease
// lives on its TTL meanwhile.
func keepAliveForever(cmd *cobra.Command, g *globals, lc pb.LeaseServiceClient, lease string) error {
	p := g.printer(cmd)
	return resume(cmd.Context(), cmd.ErrOrStderr(), "keepalive "+lease, func(ctx context.Context) (bool, error) {
		stream, err := lc.KeepAliveStream(ctx)
		if err != nil {
			return false, err
		}
		for got := false; ; got = true {
			if err := stream.Send(&pb.KeepAliveStreamRequest{LeaseId: lease}); err != nil {
				_, err = stream.Recv() // Send hides the stream's status
				return got, err
			}
			resp, err := stream.Recv()
			if err != nil {
				return got, err
			}
			if err := p.print(resp, func(w io.Writer) {
				row(w, resp.GetLeaseId(), "ttl", dur(resp.GetTtl()), "expires", ts(resp.GetExpiresAt()))
			}); err != nil {
				return got, err
			}
			select {
			case <-time.After(max(resp.GetTtl().AsDuration()/3, 100*time.Millisecond)):
			case <-ctx.Done():
				return got, ctx.Err()
			}
		}
	})
}
