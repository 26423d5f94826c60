package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

func newGetCmd(g *globals) *cobra.Command {
	var linearizable bool
	var pageSize int32
	cmd := &cobra.Command{
		Use:   "get GROUP [MEMBER]",
		Short: "List a group's members, or show one (Lookup)",
		Args:  argsBetween(1, 2),
	}
	cmd.Flags().BoolVar(&linearizable, "linearizable", false, "sync with the ZooKeeper leader first: see every change made before the call")
	cmd.Flags().Int32Var(&pageSize, "page-size", snapshotPage, "members per Lookup call (0: the whole group in one answer); get reads every page, all at the first page's revision")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		req := &pb.LookupRequest{Group: args[0], PageSize: pageSize}
		if len(args) == 2 {
			req.MemberId = args[1]
		}
		if linearizable {
			req.Consistency = pb.Consistency_CONSISTENCY_LINEARIZABLE
		}
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := lookupAll(ctx, pb.NewRegistryServiceClient(cc), req)
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				row(w, "MEMBER", "VALUE", "METADATA", "PERSISTENT", "CREATED", "REVISION")
				for _, m := range resp.GetMembers() {
					row(w, m.GetId(), m.GetValue(), kv(m.GetMetadata()), m.GetPersistent(), ts(m.GetCreatedAt()), m.GetModRevision())
				}
				fmt.Fprintf(w, "(group %s at revision %d)\n", req.Group, resp.GetRevision())
			})
		})
	})
	return cmd
}

// lookupAll reads req's first page and every page after it, all at the
// first page's revision, into one answer; when the gateway no longer holds
// that revision (OUT_OF_RANGE), it reads again from a first page, up to
// three times.
func lookupAll(ctx context.Context, reg pb.RegistryServiceClient, req *pb.LookupRequest) (*pb.LookupResponse, error) {
	resp, err := reg.Lookup(ctx, req)
	for restarts := 0; err == nil && resp.GetNextPageToken() != ""; {
		var next *pb.LookupResponse
		next, err = reg.Lookup(ctx, &pb.LookupRequest{Group: req.GetGroup(), PageSize: req.GetPageSize(), PageToken: resp.GetNextPageToken()})
		switch {
		case status.Code(err) == codes.OutOfRange && restarts < 3:
			restarts++
			resp, err = reg.Lookup(ctx, req)
		case err == nil:
			resp.Members, resp.NextPageToken = append(resp.Members, next.GetMembers()...), next.GetNextPageToken()
		}
	}
	return resp, err
}

// snapshotPage is the snapshot_page_size of watch: the gateway's default
// page, so that a group of any size arrives within gRPC's 4 MiB limit.
const snapshotPage = 10000

func newWatchCmd(g *globals) *cobra.Command {
	var rev int64
	cmd := &cobra.Command{
		Use:   "watch GROUP [GROUP...]",
		Short: "Print a group's changes as they happen, one line per event (WatchGroup; several groups: Watch)",
		Long: `watch prints the group's members (a snapshot), then one line per member that
joins, leaves or is updated, until interrupted. With --rev N it starts after
revision N instead: the changes since, or a snapshot with resync when they
are no longer kept. When the stream breaks (the gateway restarts or drains),
watch opens it again after the last revision it printed whole, and says so
on stderr: no change is missed, and a revision cut in the middle is printed
again whole.

With several groups, watch follows them all on one stream (Watch), each
line starting with its group; a group refused (a bad name, no right) is
reported on stderr and the others go on. --rev needs one group.`,
		Args: argsBetween(1, 1000),
	}
	cmd.Flags().Int64Var(&rev, "rev", 0, "start after this revision (that of a get or of a watch's last line)")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		if len(args) > 1 {
			if rev != 0 {
				return errors.New("--rev needs one group")
			}
			return g.withConn(func(cc *grpc.ClientConn) error {
				return watchMany(cmd.Context(), cc, g.printer(cmd), cmd.ErrOrStderr(), args)
			})
		}
		return g.withConn(func(cc *grpc.ClientConn) error {
			p, after := g.printer(cmd), rev
			return resume(cmd.Context(), cmd.ErrOrStderr(), "watch "+args[0], func(ctx context.Context) (bool, error) {
				stream, err := pb.NewRegistryServiceClient(cc).WatchGroup(ctx, &pb.WatchGroupRequest{Group: args[0], StartRevision: after,
					SnapshotPageSize: snapshotPage})
				if err != nil {
					return false, err
				}
				for got := false; ; got = true {
					msg, err := stream.Recv()
					if err != nil {
						return got, err
					}
					if err := p.print(msg, func(w io.Writer) { watchLines(w, msg, "") }); err != nil {
						return got, err
					}
					if !msg.GetMore() { // the group is whole at this revision: resume after it
						after = msg.GetRevision()
					}
				}
			})
		})
	})
	return cmd
}

// watchLines writes a watch event for people: REVISION EVENT MEMBER VALUE,
// after GROUP when group is not "".
func watchLines(w io.Writer, msg *pb.WatchGroupResponse, group string) {
	line := func(w io.Writer, cells ...any) {
		if group != "" {
			cells = append([]any{group}, cells...)
		}
		row(w, cells...)
	}
	kind := strings.ToLower(strings.TrimPrefix(msg.GetType().String(), "TYPE_"))
	if msg.GetResync() {
		kind += " (resync)"
	}
	if msg.GetType() == pb.WatchGroupResponse_TYPE_SNAPSHOT {
		if len(msg.GetMembers()) == 0 {
			line(w, msg.GetRevision(), kind, "(empty)")
		}
		for _, m := range msg.GetMembers() {
			line(w, msg.GetRevision(), kind, m.GetId(), m.GetValue())
		}
		return
	}
	line(w, msg.GetRevision(), kind, msg.GetMember().GetId(), msg.GetMember().GetValue())
}

// streamEnd is how a stream that should run until interrupted ended: nil
// when ctx ended (the user stopped it).
func streamEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return errors.New("the gateway ended the stream")
	}
	return rpcErr(err)
}

func newRegisterCmd(g *globals) *cobra.Command {
	var (
		ttl        time.Duration
		lease      string
		persistent bool
		meta       []string
	)
	cmd := &cobra.Command{
		Use:   "register GROUP MEMBER VALUE (--ttl D | --lease ID | --persistent)",
		Short: "Add a member to a group, owned by a new lease, a lease, or no one (Register)",
		Example: `  zkcoord register web w1 10.0.0.7:8080 --ttl 30s --meta zone=a   # keep it with: zkcoord lease keepalive ID --forever
  zkcoord register config db 10.0.0.9:5432 --persistent`,
		Args: argsBetween(3, 3),
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "owned by a new lease of this TTL (printed; keep it alive or it expires)")
	cmd.Flags().StringVar(&lease, "lease", "", "owned by this lease")
	cmd.Flags().BoolVar(&persistent, "persistent", false, "owned by no lease: stays until deregistered")
	cmd.Flags().StringArrayVar(&meta, "meta", nil, "metadata key=value (repeat the flag for more)")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		n := 0
		for _, set := range []bool{ttl != 0, lease != "", persistent} {
			if set {
				n++
			}
		}
		if n != 1 {
			return usageErr("register needs exactly one of --ttl, --lease and --persistent")
		}
		req := &pb.RegisterRequest{Group: args[0], MemberId: args[1], Value: args[2], LeaseId: lease, Persistent: persistent}
		if ttl != 0 {
			req.Ttl = durationpb.New(ttl)
		}
		for _, m := range meta {
			k, v, ok := strings.Cut(m, "=")
			if !ok || k == "" {
				return usageErr("--meta %q: want key=value", m)
			}
			if req.Metadata == nil {
				req.Metadata = map[string]string{}
			}
			req.Metadata[k] = v
		}
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := pb.NewRegistryServiceClient(cc).Register(ctx, req)
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				row(w, "GROUP", "MEMBER", "VALUE", "LEASE", "LEASE EXPIRES", "REVISION")
				row(w, req.Group, req.MemberId, req.Value, resp.GetLeaseId(), ts(resp.GetLeaseExpiresAt()), resp.GetRevision())
			})
		})
	})
	return cmd
}

func newDeregisterCmd(g *globals) *cobra.Command {
	var lease string
	cmd := &cobra.Command{
		Use:   "deregister GROUP MEMBER [--lease ID]",
		Short: "Remove a member (Deregister)",
		Args:  argsBetween(2, 2),
	}
	cmd.Flags().StringVar(&lease, "lease", "", "the lease that owns the member (none for a persistent member)")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := pb.NewRegistryServiceClient(cc).Deregister(ctx, &pb.DeregisterRequest{Group: args[0], MemberId: args[1], LeaseId: lease})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				fmt.Fprintf(w, "deregistered %s/%s at revision %d\n", args[0], args[1], resp.GetRevision())
			})
		})
	})
	return cmd
}
