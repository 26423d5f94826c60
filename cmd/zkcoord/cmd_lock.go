package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// newLockGetCmd is `lock get NAME`.
func newLockGetCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "get NAME", Short: "Show a lock's holders and waiters (GetLock)", Args: argsBetween(1, 1)}
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := pb.NewLockServiceClient(cc).GetLock(ctx, &pb.GetLockRequest{Lock: args[0]})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				row(w, "STATE", "NODE", "MODE", "TOKEN", "HOLDS", "POSITION")
				for _, h := range resp.GetHolders() {
					row(w, "held", h.GetNode(), mode(h.GetMode()), h.GetFencingToken(), h.GetHolds(), "")
				}
				for _, q := range resp.GetWaiters() {
					row(w, "waiting", q.GetNode(), mode(q.GetMode()), "", "", q.GetPosition())
				}
				fmt.Fprintf(w, "(lock %s at revision %d)\n", args[0], resp.GetRevision())
			})
		})
	})
	return cmd
}

func mode(m pb.LockMode) string {
	return strings.ToLower(strings.TrimPrefix(m.String(), "LOCK_MODE_"))
}

// newLockReleaseCmd is `lock release NAME --lease ID [--hold H]`.
func newLockReleaseCmd(g *globals) *cobra.Command {
	var lease, hold string
	cmd := &cobra.Command{
		Use:   "release NAME --lease ID [--hold H]",
		Short: "Release a lease's hold of a lock, from outside its holder (ReleaseLock)",
		Args:  argsBetween(1, 1),
	}
	cmd.Flags().StringVar(&lease, "lease", "", "the lease that holds the lock (required)")
	cmd.Flags().StringVar(&hold, "hold", "", "the hold to release (default: one of the lease's holds)")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		if lease == "" {
			return usageErr("release needs --lease: the lease that holds the lock")
		}
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := pb.NewLockServiceClient(cc).ReleaseLock(ctx, &pb.ReleaseLockRequest{Lock: args[0], LeaseId: lease, Hold: hold})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				fmt.Fprintf(w, "released %s; the lease holds it %d more times (revision %d)\n", args[0], resp.GetHolds(), resp.GetRevision())
			})
		})
	})
	return cmd
}

// newSemaphoreCmd is `semaphore get|release|acquire`.
func newSemaphoreCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "semaphore", Short: "Read semaphores, release permits, run a command while holding one", Args: noArgs}
	get := &cobra.Command{Use: "get NAME", Short: "Show a semaphore's permits, holders and waiters (GetSemaphore)", Args: argsBetween(1, 1)}
	get.RunE = runE(func(cmd *cobra.Command, args []string) error {
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := pb.NewSemaphoreServiceClient(cc).GetSemaphore(ctx, &pb.GetSemaphoreRequest{Semaphore: args[0]})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				row(w, "STATE", "SLOT", "VALUE", "TOKEN", "SINCE")
				for _, h := range resp.GetHolders() {
					row(w, "held", h.GetSlot(), h.GetValue(), h.GetToken(), ts(h.GetAcquiredAt()))
				}
				for _, q := range resp.GetWaiters() {
					row(w, "waiting", q.GetSlot(), q.GetValue(), "", ts(q.GetAcquiredAt()))
				}
				fmt.Fprintf(w, "(semaphore %s: %d permits, at revision %d)\n", args[0], resp.GetPermits(), resp.GetRevision())
			})
		})
	})
	var lease string
	release := &cobra.Command{Use: "release NAME --lease ID", Short: "Release a lease's permit, from outside its holder (ReleaseSemaphore)", Args: argsBetween(1, 1)}
	release.Flags().StringVar(&lease, "lease", "", "the lease that holds the permit (required)")
	release.RunE = runE(func(cmd *cobra.Command, args []string) error {
		if lease == "" {
			return usageErr("release needs --lease: the lease that holds the permit")
		}
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := pb.NewSemaphoreServiceClient(cc).ReleaseSemaphore(ctx, &pb.ReleaseSemaphoreRequest{Semaphore: args[0], LeaseId: lease})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(resp, func(w io.Writer) {
				fmt.Fprintf(w, "released %s (it held a permit: %v) at revision %d\n", args[0], resp.GetWasHolder(), resp.GetRevision())
			})
		})
	})
	cmd.AddCommand(get, release, newSemaphoreAcquireCmd(g))
	return cmd
}

func newCheckSequencerCmd(g *globals) *cobra.Command {
	var lock, election string
	cmd := &cobra.Command{
		Use:   "check-sequencer (--lock NAME | --election NAME) TOKEN",
		Short: "Say whether a fencing token is still current; exit 3 when it is not (CheckSequencer)",
		Args:  argsBetween(1, 1),
	}
	cmd.Flags().StringVar(&lock, "lock", "", "the token is a hold of this lock")
	cmd.Flags().StringVar(&election, "election", "", "the token is a term of this election")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		if (lock == "") == (election == "") {
			return usageErr("check-sequencer needs exactly one of --lock and --election")
		}
		token, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || token < 1 {
			return usageErr("TOKEN %q: want a fencing token, a whole number from 1", args[0])
		}
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			resp, err := pb.NewLockServiceClient(cc).CheckSequencer(ctx, &pb.CheckSequencerRequest{Lock: lock, Election: election, FencingToken: token})
			if err != nil {
				return rpcErr(err)
			}
			err = g.printer(cmd).print(resp, func(w io.Writer) {
				row(w, "TOKEN", "CURRENT", "HIGHEST", "REVISION")
				row(w, token, resp.GetCurrent(), resp.GetHighestToken(), resp.GetRevision())
			})
			if err == nil && !resp.GetCurrent() {
				return &exitError{code: exitNo}
			}
			return err
		})
	})
	return cmd
}

func newStatusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "status", Short: "Show the gateway's ZooKeeper session and counts (GetStatus)", Args: noArgs}
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		return g.withConn(func(cc *grpc.ClientConn) error {
			ctx, cancel := g.call(cmd.Context())
			defer cancel()
			s, err := pb.NewStatusServiceClient(cc).GetStatus(ctx, &pb.GetStatusRequest{})
			if err != nil {
				return rpcErr(err)
			}
			return g.printer(cmd).print(s, func(w io.Writer) {
				for _, kv := range [][2]any{
					{"replica", s.GetReplicaId()}, {"version", s.GetVersion()},
					{"zookeeper", strings.ToLower(strings.TrimPrefix(s.GetState().String(), "CONNECTION_STATE_"))},
					{"since", ts(s.GetStateSince())}, {"server", s.GetServer()}, {"servers", strings.Join(s.GetServers(), ",")},
					{"chroot", s.GetChroot()}, {"root", s.GetRoot()}, {"session", s.GetSessionId()},
					{"session timeout", dur(s.GetSessionTimeout())}, {"session expirations", s.GetSessionExpirations()},
					{"leases", s.GetLeases()}, {"watched groups", s.GetWatchedGroups()}, {"polls", s.GetPolls()},
				} {
					row(w, kv[0].(string)+":", kv[1])
				}
			})
		})
	})
	return cmd
}
