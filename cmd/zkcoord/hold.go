package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/zkcoord/zkcoord/client"
	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// holdFlags are the flags of the commands that run a command under a hold.
type holdFlags struct {
	ttl, grace, waitTimeout time.Duration
	try                     bool
}

func (f *holdFlags) add(fs *pflag.FlagSet, try string) {
	fs.DurationVar(&f.ttl, "ttl", client.DefaultTTL, "TTL of the session's lease: how long the hold outlives zkcoord's last keepalive")
	fs.DurationVar(&f.grace, "grace", 2*time.Second, "the command gets SIGTERM two graces before the hold's jeopardy deadline (or its lease's end), SIGKILL one grace before")
	fs.DurationVar(&f.waitTimeout, "wait-timeout", 0, "give up waiting after this long (exit 121); 0: wait until interrupted")
	if try != "" {
		fs.BoolVar(&f.try, "try", false, try)
	}
}

// commandArgs checks the command line NAME -- COMMAND [ARGS...] and the
// flags; it returns the command to run.
func (f *holdFlags) commandArgs(cmd *cobra.Command, args []string) ([]string, error) {
	dash := cmd.ArgsLenAtDash()
	if dash != 1 || len(args) < 2 {
		return nil, usageErr("usage: %s", cmd.UseLine())
	}
	switch {
	case f.grace <= 0:
		return nil, usageErr("--grace %v: want more than 0", f.grace)
	case 4*f.grace > f.ttl:
		return nil, usageErr("--grace %v needs --ttl of at least %v: the command is stopped two graces before the lease could end, and the lease is renewed every third of its TTL", f.grace, 4*f.grace)
	case f.waitTimeout < 0:
		return nil, usageErr("--wait-timeout %v: want 0 or more", f.waitTimeout)
	}
	return args[1:], nil
}

// acquired is a hold taken: what the command runs under, how to give it
// up, and the environment that tells the command about it.
type acquired struct {
	h       held
	release func(context.Context) error
	env     []string
	eager   bool // stop the command as soon as the hold is in jeopardy (see child.eager)
}

// runHeld opens a session, takes the hold with acquire, runs argv under it
// and gives it up; the exit status says how it went (see child.run).
func runHeld(cmd *cobra.Command, g *globals, f *holdFlags, what string, argv []string,
	acquire func(context.Context, *client.Session) (acquired, error)) error {
	ctx := cmd.Context() // ends on SIGINT or SIGTERM
	c, err := g.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	sctx, cancel := g.call(ctx)
	s, err := c.NewSession(sctx, client.WithTTL(f.ttl))
	cancel()
	if err != nil {
		return notAcquired(g, what, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), f.grace)
		defer cancel()
		_ = s.Close(ctx) // revokes the lease: whatever it still holds goes now
	}()
	actx := ctx
	if f.waitTimeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, f.waitTimeout)
		defer cancel()
	}
	a, err := acquire(actx, s)
	if err != nil {
		return notAcquired(g, what, err)
	}
	progress(cmd, "holding %s (fencing token %d, lease %s): running %s", what, a.h.Token(), s.Lease(), argv[0])
	ch := child{argv: argv, what: what, grace: f.grace, expires: s.Expires, eager: a.eager, stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(),
		env: append(a.env, "ZKCOORD_FENCING_TOKEN="+strconv.FormatInt(a.h.Token(), 10), "ZKCOORD_LEASE_ID="+s.Lease())}
	if g.sigs != nil {
		ch.sigs = g.sigs.got
	}
	res := ch.run(a.h)
	if a.h.Context().Err() == nil {
		rctx, cancel := context.WithTimeout(context.Background(), f.grace)
		_ = a.release(rctx)
		cancel()
	}
	return res
}

// notAcquired is the exit of a hold not taken: 128+N when signal N
// stopped the wait, else exitNotAcquired.
func notAcquired(g *globals, what string, err error) error {
	if g.sigs != nil {
		if sig := g.sigs.received(); sig != nil {
			return &exitError{code: exitSignal + sigNum(sig), err: fmt.Errorf("%s: interrupted while waiting", what)}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = errors.New("--wait-timeout passed")
	}
	return &exitError{code: exitNotAcquired, err: fmt.Errorf("%s not acquired: %w", what, rpcErr(err))}
}

// newLockCmd is `lock NAME -- COMMAND`, with `lock get` and `lock release`.
func newLockCmd(g *globals) *cobra.Command {
	var (
		f      holdFlags
		shared bool
	)
	cmd := &cobra.Command{
		Use:   "lock NAME [--shared] [--try] -- COMMAND [ARGS...]",
		Short: "Run a command while holding a lock; read and release locks",
		Long: `lock NAME -- COMMAND waits for the lock, then runs COMMAND in a process group
of its own with ZKCOORD_FENCING_TOKEN, ZKCOORD_LEASE_ID and ZKCOORD_LOCK set,
and releases the lock when it ends. When the hold is lost, or its deadline
comes near (see --grace), the group gets SIGTERM, then SIGKILL a grace
later. docs/CLI.md lists the exit statuses.`,
		Example: `  zkcoord lock nightly -- ./backup.sh --full
  zkcoord lock reports --shared -- ./read-report.sh`,
		Args: cobra.ArbitraryArgs,
	}
	f.add(cmd.Flags(), "take the lock only if it is free now; exit 121 if not")
	cmd.Flags().BoolVar(&shared, "shared", false, "take it shared (a read lock): shared holders hold it together")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		argv, err := f.commandArgs(cmd, args)
		if err != nil {
			return err
		}
		name := args[0]
		var opts []client.LockOption
		if shared {
			opts = append(opts, client.Shared())
		}
		opts = append(opts, client.WithOnLockQueued(func(pos int) { progress(cmd, "waiting for lock %s: %d ahead", name, pos) }))
		return runHeld(cmd, g, &f, "lock "+name, argv, func(ctx context.Context, s *client.Session) (acquired, error) {
			take := s.Lock
			if f.try {
				take = s.TryLock
			}
			l, err := take(ctx, name, opts...)
			if err != nil {
				return acquired{}, err
			}
			// The gateway releases a hold whose stream ends (unless it drains):
			// a hold in jeopardy, its stream broken, may be gone already.
			return acquired{h: l, release: l.Unlock, env: []string{"ZKCOORD_LOCK=" + name}, eager: true}, nil
		})
	})
	cmd.AddCommand(newLockGetCmd(g), newLockReleaseCmd(g))
	return cmd
}

// newElectCmd is `elect ELECTION -- COMMAND`.
func newElectCmd(g *globals) *cobra.Command {
	var (
		f     holdFlags
		value string
	)
	cmd := &cobra.Command{
		Use:   "elect ELECTION [--value V] -- COMMAND [ARGS...]",
		Short: "Campaign, and run a command while leading (Campaign)",
		Long: `elect campaigns in ELECTION and, once elected, runs COMMAND in a process group
of its own with ZKCOORD_FENCING_TOKEN, ZKCOORD_LEASE_ID and ZKCOORD_ELECTION
set; it resigns when the command ends. When the term is lost, or its
deadline comes near (see --grace), the group gets SIGTERM, then SIGKILL a
grace later. docs/CLI.md lists the exit statuses.`,
		Example: "  zkcoord elect scheduler --value $(hostname) -- ./scheduler",
		Args:    cobra.ArbitraryArgs,
	}
	f.add(cmd.Flags(), "")
	host, _ := os.Hostname()
	cmd.Flags().StringVar(&value, "value", host, "the value the leader publishes (Leader and Observe show it)")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		argv, err := f.commandArgs(cmd, args)
		if err != nil {
			return err
		}
		name := args[0]
		queued := client.WithOnQueued(func(pos int, leader *pb.LeaderInfo) {
			progress(cmd, "campaigning in %s: %d ahead (leader %s)", name, pos, leader.GetCandidate())
		})
		return runHeld(cmd, g, &f, "term in "+name, argv, func(ctx context.Context, s *client.Session) (acquired, error) {
			l, err := s.Campaign(ctx, name, value, queued)
			if err != nil {
				return acquired{}, err
			}
			return acquired{h: l, release: l.Resign, env: []string{"ZKCOORD_ELECTION=" + name}}, nil
		})
	})
	return cmd
}

// newSemaphoreAcquireCmd is `semaphore acquire NAME --permits N -- COMMAND`.
func newSemaphoreAcquireCmd(g *globals) *cobra.Command {
	var (
		f       holdFlags
		permits int
		value   string
	)
	cmd := &cobra.Command{
		Use:   "acquire NAME --permits N [--try] -- COMMAND [ARGS...]",
		Short: "Run a command while holding one of a semaphore's N permits (AcquireSemaphore)",
		Args:  cobra.ArbitraryArgs,
	}
	f.add(cmd.Flags(), "take a permit only if one is free now; exit 121 if not (TryAcquireSemaphore)")
	cmd.Flags().IntVar(&permits, "permits", 0, "the semaphore's number of permits (fixed by its first acquirer; required)")
	cmd.Flags().StringVar(&value, "value", "", "a value the holder publishes (semaphore get shows it)")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		argv, err := f.commandArgs(cmd, args)
		if err != nil {
			return err
		}
		if permits < 1 {
			return usageErr("acquire needs --permits N, N at least 1")
		}
		name := args[0]
		opts := []client.PermitOption{client.WithPermitValue(value),
			client.WithOnPermitQueued(func(pos int) { progress(cmd, "waiting for a permit of %s: %d ahead", name, pos) })}
		return runHeld(cmd, g, &f, "permit of "+name, argv, func(ctx context.Context, s *client.Session) (acquired, error) {
			take := s.AcquirePermit
			if f.try {
				take = s.TryAcquirePermit
			}
			p, err := take(ctx, name, permits, opts...)
			if err != nil {
				return acquired{}, err
			}
			return acquired{h: p, release: p.Release, env: []string{"ZKCOORD_SEMAPHORE=" + name}}, nil
		})
	})
	return cmd
}
