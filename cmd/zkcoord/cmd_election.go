package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// maxPollWait is the longest wait a blocking query may ask for.
const maxPollWait = 5 * time.Minute

func newLeaderCmd(g *globals) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "leader ELECTION [--wait]",
		Short: "Show an election's leader (Leader)",
		Args:  argsBetween(1, 1),
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "when there is no leader, wait until there is one")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		return g.withConn(func(cc *grpc.ClientConn) error {
			ec := pb.NewElectionServiceClient(cc)
			req := &pb.LeaderRequest{Election: args[0]}
			for {
				ctx, cancel := g.call(cmd.Context())
				if req.AfterRevision != 0 {
					cancel() // a blocking query: bounded by its wait, not --timeout
					ctx, cancel = cmd.Context(), func() {}
				}
				resp, err := ec.Leader(ctx, req)
				cancel()
				if err != nil {
					return rpcErr(err)
				}
				if resp.GetLeader() != nil || !wait {
					return g.printer(cmd).print(resp, func(w io.Writer) { leaderTable(w, args[0], resp.GetLeader(), resp.GetRevision()) })
				}
				if req.AfterRevision == 0 {
					progress(cmd, "no leader of %s yet; waiting", args[0])
				}
				req.AfterRevision, req.Wait = resp.GetRevision(), durationpb.New(maxPollWait)
			}
		})
	})
	return cmd
}

// leaderTable writes an election's leader for people.
func leaderTable(w io.Writer, election string, l *pb.LeaderInfo, rev int64) {
	if l == nil {
		fmt.Fprintf(w, "no leader of %s (revision %d)\n", election, rev)
		return
	}
	row(w, "ELECTION", "LEADER", "VALUE", "TOKEN", "SINCE", "REVISION")
	row(w, election, l.GetCandidate(), l.GetValue(), l.GetFencingToken(), ts(l.GetCampaignedAt()), rev)
}

func newObserveCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "observe ELECTION",
		Short: "Print an election's leader, then each change of leader, until interrupted (Observe)",
		Long: `observe prints the election's leader, then each change of leader, until
interrupted. When the stream breaks it opens it again and goes on, saying so
on stderr (a leader it already printed is not printed again).`,
		Args: argsBetween(1, 1),
	}
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		return g.withConn(func(cc *grpc.ClientConn) error {
			p := g.printer(cmd)
			var last *pb.ObserveResponse
			return resume(cmd.Context(), cmd.ErrOrStderr(), "observe "+args[0], func(ctx context.Context) (bool, error) {
				stream, err := pb.NewElectionServiceClient(cc).Observe(ctx, &pb.ObserveRequest{Election: args[0]})
				if err != nil {
					return false, err
				}
				for got := false; ; got = true {
					msg, err := stream.Recv()
					if err != nil {
						return got, err
					}
					if last != nil && proto.Equal(msg, last) {
						continue // a resumed stream's first answer, unchanged
					}
					last = msg
					err = p.print(msg, func(w io.Writer) {
						if l := msg.GetLeader(); l != nil {
							row(w, msg.GetRevision(), "leader", l.GetCandidate(), l.GetValue(), "token", l.GetFencingToken())
						} else {
							row(w, msg.GetRevision(), "no leader")
						}
					})
					if err != nil {
						return got, err
					}
				}
			})
		})
	})
	return cmd
}

func newResignCmd(g *globals) *cobra.Command {
	var lease string
	cmd := &cobra.Command{
		Use:   "resign ELECTION --lease ID",
		Short: "Withdraw a lease's candidacy or end its term (Resign)",
		Args:  argsBetween(1, 1),
	}
	cmd.Flags().StringVar(&lease, "lease", "", "the lease that owns the candidacy (required)")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		if lease == "" {
			return usageErr("resign needs --lease: the lease that owns the candidacy")
		}
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := pb.NewElectionServiceClient(cc).Resign(ctx, &pb.ResignRequest{Election: args[0], LeaseId: lease})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				what := "withdrew the candidacy"
				if resp.GetWasLeader() {
					what = "ended the term"
				}
				fmt.Fprintf(w, "%s in %s at revision %d\n", what, args[0], resp.GetRevision())
			})
		})
	})
	return cmd
}
