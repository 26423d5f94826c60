package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// lsPage lists one page: its answer, its rows for people, and the next
// page's token.
type lsPage func(ctx context.Context, ic pb.InspectServiceClient, prefix string, size int32, token string) (proto.Message, [][]any, string, error)

// lsKind is one thing ls lists.
type lsKind struct {
	name, short string
	header      []any
	page        lsPage
}

func lsKinds() []lsKind {
	return []lsKind{
		{"groups", "List registry groups: members, revision (ListGroups)", []any{"GROUP", "MEMBERS", "REVISION"},
			func(ctx context.Context, ic pb.InspectServiceClient, prefix string, size int32, token string) (proto.Message, [][]any, string, error) {
				r, err := ic.ListGroups(ctx, &pb.ListGroupsRequest{Prefix: prefix, PageSize: size, PageToken: token})
				var rows [][]any
				for _, g := range r.GetGroups() {
					rows = append(rows, []any{g.GetName(), g.GetMembers(), g.GetRevision()})
				}
				return r, rows, r.GetNextPageToken(), err
			}},
		{"elections", "List elections: leader, token, candidates (ListElections)", []any{"ELECTION", "LEADER", "VALUE", "TOKEN", "CANDIDATES", "REVISION"},
			func(ctx context.Context, ic pb.InspectServiceClient, prefix string, size int32, token string) (proto.Message, [][]any, string, error) {
				r, err := ic.ListElections(ctx, &pb.ListElectionsRequest{Prefix: prefix, PageSize: size, PageToken: token})
				var rows [][]any
				for _, e := range r.GetElections() {
					l := e.GetLeader()
					rows = append(rows, []any{e.GetName(), l.GetCandidate(), l.GetValue(), l.GetFencingToken(), e.GetCandidates(), e.GetRevision()})
				}
				return r, rows, r.GetNextPageToken(), err
			}},
		{"barriers", "List barriers: arrivals and threshold (ListBarriers)", []any{"BARRIER", "ARRIVED", "THRESHOLD", "RELEASED"},
			func(ctx context.Context, ic pb.InspectServiceClient, prefix string, size int32, token string) (proto.Message, [][]any, string, error) {
				r, err := ic.ListBarriers(ctx, &pb.ListBarriersRequest{Prefix: prefix, PageSize: size, PageToken: token})
				var rows [][]any
				for _, b := range r.GetBarriers() {
					rows = append(rows, []any{b.GetName(), b.GetArrived(), b.GetThreshold(), b.GetReleased()})
				}
				return r, rows, r.GetNextPageToken(), err
			}},
		{"locks", "List locks: holders and waiters (ListLocks)", []any{"LOCK", "HOLDERS", "TOKENS", "WAITERS"},
			func(ctx context.Context, ic pb.InspectServiceClient, prefix string, size int32, token string) (proto.Message, [][]any, string, error) {
				r, err := ic.ListLocks(ctx, &pb.ListLocksRequest{Prefix: prefix, PageSize: size, PageToken: token})
				var rows [][]any
				for _, l := range r.GetLocks() {
					var toks []string
					for _, h := range l.GetHolders() {
						toks = append(toks, fmt.Sprint(h.GetFencingToken()))
					}
					rows = append(rows, []any{l.GetName(), len(l.GetHolders()), strings.Join(toks, ","), len(l.GetWaiters())})
				}
				return r, rows, r.GetNextPageToken(), err
			}},
		{"semaphores", "List semaphores: permits, holders, waiters (ListSemaphores)", []any{"SEMAPHORE", "PERMITS", "HOLDERS", "WAITERS"},
			func(ctx context.Context, ic pb.InspectServiceClient, prefix string, size int32, token string) (proto.Message, [][]any, string, error) {
				r, err := ic.ListSemaphores(ctx, &pb.ListSemaphoresRequest{Prefix: prefix, PageSize: size, PageToken: token})
				var rows [][]any
				for _, s := range r.GetSemaphores() {
					rows = append(rows, []any{s.GetName(), s.GetPermits(), len(s.GetHolders()), len(s.GetWaiters())})
				}
				return r, rows, r.GetNextPageToken(), err
			}},
		{"leases", "List leases: TTL, expiry, owner replica, what each owns; admin only (ListLeases)", []any{"LEASE KEY", "TTL", "EXPIRES", "OWNER", "OWNS"},
			func(ctx context.Context, ic pb.InspectServiceClient, _ string, size int32, token string) (proto.Message, [][]any, string, error) {
				r, err := ic.ListLeases(ctx, &pb.ListLeasesRequest{PageSize: size, PageToken: token})
				var rows [][]any
				for _, l := range r.GetLeases() {
					rows = append(rows, []any{l.GetKey(), dur(l.GetTtl()), ts(l.GetExpiresAt()), l.GetOwner(), strings.Join(l.GetOwned(), ",")})
				}
				return r, rows, r.GetNextPageToken(), err
			}},
		{"replicas", "List the gateway's replicas; admin only (ListReplicas)", []any{"REPLICA", "ADDRESS", "SELF"},
			func(ctx context.Context, ic pb.InspectServiceClient, _ string, _ int32, _ string) (proto.Message, [][]any, string, error) {
				r, err := ic.ListReplicas(ctx, &pb.ListReplicasRequest{})
				var rows [][]any
				for _, x := range r.GetReplicas() {
					rows = append(rows, []any{x.GetId(), x.GetAddress(), x.GetSelf()})
				}
				return r, rows, "", err
			}},
	}
}

// newLsCmd is `ls groups|elections|barriers|locks|semaphores|leases|replicas`.
func newLsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "ls", Short: "List groups, elections, barriers, locks, semaphores, leases or replicas (InspectService)", Args: noArgs}
	for _, k := range lsKinds() {
		var (
			prefix string
			size   int32
		)
		sub := &cobra.Command{Use: k.name, Short: k.short, Args: noArgs}
		if k.name != "leases" && k.name != "replicas" {
			sub.Flags().StringVar(&prefix, "prefix", "", "only names that start with this prefix")
		}
		if k.name != "replicas" {
			sub.Flags().Int32Var(&size, "page-size", 0, "names per call (the gateway's default when 0); every page is listed")
		}
		sub.RunE = runE(func(cmd *cobra.Command, _ []string) error {
			return g.withConn(func(cc *grpc.ClientConn) error { return lsAll(cmd, g, pb.NewInspectServiceClient(cc), k, prefix, size) })
		})
		cmd.AddCommand(sub)
	}
	return cmd
}

// lsAll lists every page: one JSON document per page with -o json, else one
// table.
func lsAll(cmd *cobra.Command, g *globals, ic pb.InspectServiceClient, k lsKind, prefix string, size int32) error {
	p := g.printer(cmd)
	var all [][]any
	token := ""
	for {
		ctx, cancel := g.call(cmd.Context())
		resp, rows, next, err := k.page(ctx, ic, prefix, size, token)
		cancel()
		if err != nil {
			return rpcErr(err)
		}
		if p.json {
			if err := p.printJSON(resp); err != nil {
				return err
			}
		}
		all = append(all, rows...)
		if next == "" {
			break
		}
		token = next
	}
	if p.json {
		return nil
	}
	return p.print(nil, func(w io.Writer) {
		row(w, k.header...)
		for _, r := range all {
			row(w, r...)
		}
	})
}
