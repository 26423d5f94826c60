package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

func newBarrierCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "barrier",
		Short: "Wait at, join, leave and read barriers; wait for a group to fill",
		Args:  noArgs,
	}
	bc := func(cc *grpc.ClientConn) pb.BarrierServiceClient { return pb.NewBarrierServiceClient(cc) }
	var (
		participant, lease string
		ttl                time.Duration
	)
	owner := func(c *cobra.Command) {
		c.Flags().StringVar(&participant, "participant", "", "the participant's ID (default: the gateway makes one)")
		c.Flags().StringVar(&lease, "lease", "", "the place is owned by this lease")
		c.Flags().DurationVar(&ttl, "ttl", 0, "the place is owned by a new lease of this TTL")
	}
	threshold := func(s string) (int32, error) {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 1 {
			return 0, usageErr("threshold %q: want a whole number of participants, at least 1", s)
		}
		return int32(n), nil
	}
	ttlPB := func() *durationpb.Duration {
		if ttl == 0 {
			return nil
		}
		return durationpb.New(ttl)
	}

	await := &cobra.Command{
		Use:   "await NAME THRESHOLD",
		Short: "Arrive at a barrier and wait until THRESHOLD participants have (AwaitBarrier)",
		Long:  "await arrives and waits, printing arrivals on stderr; the place, owned by the stream's own lease unless --lease or --ttl, goes when it ends.",
		Args:  argsBetween(2, 2),
	}
	owner(await)
	await.RunE = runE(func(cmd *cobra.Command, args []string) error {
		n, err := threshold(args[1])
		if err != nil {
			return err
		}
		return g.withConn(func(cc *grpc.ClientConn) error {
			stream, err := bc(cc).AwaitBarrier(cmd.Context(), &pb.AwaitBarrierRequest{Barrier: args[0], Threshold: n,
				ParticipantId: participant, LeaseId: lease, Ttl: ttlPB()})
			if err != nil {
				return rpcErr(err)
			}
			for {
				msg, err := stream.Recv()
				if err != nil {
					return rpcErr(err)
				}
				if !msg.GetReleased() {
					progress(cmd, "barrier %s: %d of %d arrived; waiting", args[0], msg.GetArrived(), msg.GetThreshold())
					continue
				}
				return g.printer(cmd).print(msg, func(w io.Writer) {
					row(w, "BARRIER", "ARRIVED", "THRESHOLD", "RELEASED", "PARTICIPANT", "LEASE")
					row(w, args[0], msg.GetArrived(), msg.GetThreshold(), msg.GetReleased(), msg.GetParticipantId(), msg.GetLeaseId())
				})
			}
		})
	})

	join := &cobra.Command{
		Use:   "join NAME THRESHOLD (--lease ID | --ttl D)",
		Short: "Arrive at a barrier without waiting; the place stays with its lease (JoinBarrier)",
		Args:  argsBetween(2, 2),
	}
	owner(join)
	join.RunE = runE(func(cmd *cobra.Command, args []string) error {
		n, err := threshold(args[1])
		if err != nil {
			return err
		}
		if (lease == "") == (ttl == 0) {
			return usageErr("join needs exactly one of --lease and --ttl: the lease that owns the place")
		}
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := bc(cc).JoinBarrier(ctx, &pb.JoinBarrierRequest{Barrier: args[0], Threshold: n,
				ParticipantId: participant, LeaseId: lease, Ttl: ttlPB()})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				row(w, "BARRIER", "ARRIVED", "THRESHOLD", "RELEASED", "PARTICIPANT", "LEASE", "REVISION")
				row(w, args[0], resp.GetArrived(), resp.GetThreshold(), resp.GetReleased(), resp.GetParticipantId(), resp.GetLeaseId(), resp.GetRevision())
			})
		})
	})

	leave := &cobra.Command{
		Use:   "leave NAME PARTICIPANT --lease ID",
		Short: "Leave a barrier before it is released (LeaveBarrier)",
		Args:  argsBetween(2, 2),
	}
	leave.Flags().StringVar(&lease, "lease", "", "the lease that owns the place (required)")
	leave.RunE = runE(func(cmd *cobra.Command, args []string) error {
		if lease == "" {
			return usageErr("leave needs --lease: the lease that owns the place")
		}
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := bc(cc).LeaveBarrier(ctx, &pb.LeaveBarrierRequest{Barrier: args[0], ParticipantId: args[1], LeaseId: lease})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				fmt.Fprintf(w, "left %s (it was released: %v)\n", args[0], resp.GetWasReleased())
			})
		})
	})

	get := &cobra.Command{Use: "get NAME", Short: "Show a barrier's arrivals (GetBarrier)", Args: argsBetween(1, 1)}
	get.RunE = runE(func(cmd *cobra.Command, args []string) error {
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := bc(cc).GetBarrier(ctx, &pb.GetBarrierRequest{Barrier: args[0]})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				row(w, "BARRIER", "ARRIVED", "THRESHOLD", "RELEASED", "REVISION")
				row(w, args[0], resp.GetArrived(), resp.GetThreshold(), resp.GetReleased(), resp.GetRevision())
			})
		})
	})

	group := &cobra.Command{
		Use:   "await-group GROUP MIN",
		Short: "Wait until a registry group has at least MIN members (AwaitGroup)",
		Args:  argsBetween(2, 2),
	}
	group.RunE = runE(func(cmd *cobra.Command, args []string) error {
		n, err := threshold(args[1])
		if err != nil {
			return err
		}
		return g.withConn(func(cc *grpc.ClientConn) error {
			stream, err := bc(cc).AwaitGroup(cmd.Context(), &pb.AwaitGroupRequest{Group: args[0], MinMembers: n})
			if err != nil {
				return rpcErr(err)
			}
			for {
				msg, err := stream.Recv()
				if err != nil {
					if errors.Is(err, io.EOF) {
						return errors.New("the gateway ended the stream before the group was ready")
					}
					return rpcErr(err)
				}
				if !msg.GetReady() {
					progress(cmd, "group %s: %d of %d members; waiting", args[0], msg.GetMembers(), msg.GetMinMembers())
					continue
				}
				return g.printer(cmd).print(msg, func(w io.Writer) {
					row(w, "GROUP", "MEMBERS", "MIN", "REVISION")
					row(w, args[0], msg.GetMembers(), msg.GetMinMembers(), msg.GetRevision())
				})
			}
		})
	})
	cmd.AddCommand(await, join, leave, get, group)
	return cmd
}
