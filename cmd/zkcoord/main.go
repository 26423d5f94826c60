// Command zkcoord serves ZooKeeper's coordination recipes (leases, service
// registry, leader election, barriers, locks, semaphores) over gRPC, and
// drives a running gateway from the command line.
//
//	zkcoord serve --listen :7070 --zk zk1:2181,zk2:2181,zk3:2181/chroot
//	zkcoord dev   # on a private, temporary ZooKeeper
//	zkcoord get web                       # the members of group web
//	zkcoord lock jobs -- ./nightly.sh     # run while holding lock jobs
//
// Every flag of serve and dev can also be set by an environment variable:
// --zk is ZKCOORD_ZK, --session-timeout is ZKCOORD_SESSION_TIMEOUT, and so
// on; the client commands read ZKCOORD_ENDPOINTS, ZKCOORD_TOKEN,
// ZKCOORD_CACERT, ZKCOORD_CERT and ZKCOORD_KEY. docs/CLI.md describes
// every command and its exit statuses.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	sigs := newSignals()
	defer sigs.stop()
	os.Exit(execute(sigs.ctx, sigs, os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the command line args and returns the exit status.
func execute(ctx context.Context, sigs *signals, args []string, stdout, stderr io.Writer) int {
	root := newRoot(sigs, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "zkcoord:", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors: unknown commands and flags, bad arguments.
	hint := ""
	if strings.Contains(err.Error(), "unknown shorthand flag") {
		hint = " (long flags take two dashes: --zk, not -zk)"
	}
	fmt.Fprintf(stderr, "zkcoord: %v%s\nRun 'zkcoord --help' for usage.\n", err, hint)
	return exitUsage
}

// newRoot is the zkcoord command and its subcommands.
func newRoot(sigs *signals, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "zkcoord",
		Short: "zkcoord serves ZooKeeper recipes over gRPC, and drives a gateway from the command line",
		Long: `zkcoord serves ZooKeeper recipes (leases, a service registry, leader election,
barriers, locks, semaphores) over gRPC and HTTP, and its client commands
drive a running gateway. Run "zkcoord serve -h" for the server's flags; each
flag --name of serve and dev can be set with the environment variable
ZKCOORD_NAME (dashes become underscores). docs/CLI.md describes every command.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return err })
	root.AddCommand(newServeCmd(false), newServeCmd(true), &cobra.Command{
		Use:   "version",
		Short: "Print zkcoord's version",
		Args:  noArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version) },
	}, &cobra.Command{
		Use:   "health [--addr ADDR]",
		Short: "Exit 0 when the replica answers SERVING to grpc.health.v1 (a container's health check)",
		Long: `health asks a replica for its grpc.health.v1 status and fails unless it is
SERVING. It reads serve's own environment (ZKCOORD_LISTEN, ZKCOORD_TLS_*), so
in the container it needs no flag. Run "zkcoord health -h" for its flags.`,
		// Its flags are serve's, read from the same environment: parsed by
		// health itself.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := health(cmd.Context(), args); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			return nil
		},
	})
	g := &globals{sigs: sigs}
	root.AddCommand(clientCommands(g)...)
	return root
}

// Exit statuses of zkcoord (docs/CLI.md has the table). A command run by
// lock, elect or semaphore acquire passes its own status through.
const (
	exitOK     = 0
	exitFailed = 1 // the call failed: the gateway refused it, or could not be reached
	exitUsage  = 2 // bad command line: nothing was done
	// exitNo is a clear "no": check-sequencer's token is not current.
	exitNo = 3
	// exitNotAcquired: lock, elect or semaphore acquire did not get what
	// it waited for (--try found it taken, --wait-timeout passed, or the
	// gateway refused); the command was not started.
	exitNotAcquired = 121
	// exitLost: the hold or term ended (its lease revoked or expired, the
	// lock released elsewhere, the leader resigned by another call): the
	// command was stopped.
	exitLost = 122
	// exitJeopardy: the hold's jeopardy deadline, or its lease's end,
	// came within two graces: the command was stopped before it.
	exitJeopardy = 123
	// exitNoStart: the command could not be started.
	exitNoStart = 127
	// exitSignal + N: zkcoord got signal N (and passed it on to the
	// command), or the command was killed by signal N.
	exitSignal = 128
)

// exitError is an error with the exit status it calls for.
type exitError struct {
	code int
	err  error // printed unless nil
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErr is a command line error: exit status 2.
func usageErr(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// runE wraps a command's body: an error it returns without an exit status
// exits with 1.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		var ee *exitError
		if err == nil || errors.As(err, &ee) {
			return err
		}
		return &exitError{code: exitFailed, err: err}
	}
}

// noArgs refuses arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// argsBetween accepts min to max arguments, named in the command's Use.
func argsBetween(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			return usageErr("usage: %s", cmd.UseLine())
		}
		return nil
	}
}

// envFlags sets each flag of fs not given on the command line from its
// environment variable ZKCOORD_NAME, if set; only lists the flags to
// read, all when nil.
func envFlags(fs *pflag.FlagSet, only []string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" || (only != nil && !contains(only, f.Name)) {
			return
		}
		env := "ZKCOORD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if serr := f.Value.Set(v); serr != nil {
				err = usageErr("%s=%q: %w", env, v, serr)
			}
		}
	})
	return err
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// signals turns SIGINT and SIGTERM into the end of ctx, remembering the
// signal, and passes each to a command that lock or elect runs.
type signals struct {
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan os.Signal
	got    chan os.Signal // receives each signal, for a supervisor
	done   chan struct{}
	mu     sync.Mutex
	last   os.Signal // guarded by mu
}

func newSignals() *signals {
	s := &signals{ch: make(chan os.Signal, 4), got: make(chan os.Signal, 4), done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	signal.Notify(s.ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		defer close(s.done)
		for sig := range s.ch {
			s.mu.Lock()
			s.last = sig
			s.mu.Unlock()
			s.cancel()
			select {
			case s.got <- sig:
			default: // a supervisor has not taken the last ones: it stops the command anyway
			}
		}
	}()
	return s
}

// received returns the last signal received, nil if none.
func (s *signals) received() os.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// stop stops listening and waits for the goroutine.
func (s *signals) stop() {
	signal.Stop(s.ch)
	close(s.ch)
	<-s.done
	s.cancel()
}
