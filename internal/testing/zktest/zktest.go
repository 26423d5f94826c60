// Package zktest runs integration tests against a real ZooKeeper: Main
// starts one private server per test binary (from the machine's install, see
// internal/zkserver), and each test gets its own root znode.
package zktest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/zkcoord/zkcoord/internal/zkserver"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

var (
	server *zkserver.Server
	seq    atomic.Int64
)

// Main starts ZooKeeper, runs the tests, stops ZooKeeper and checks that no
// goroutine leaked. Use it as TestMain's body: zktest.Main(m).
func Main(m *testing.M) {
	os.Exit(run(m, nil))
}

// MainWith is Main with a setup step that runs once ZooKeeper is up (given
// its address); the cleanup it returns runs after the tests.
func MainWith(m *testing.M, setup func(zkAddr string) (cleanup func(), err error)) {
	os.Exit(run(m, setup))
}

func run(m *testing.M, setup func(string) (func(), error)) int {
	if err := zkserver.CheckInstalled(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := zkserver.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "zktest: start ZooKeeper:", err)
		return 1
	}
	server = srv
	cleanup := func() {}
	if setup != nil {
		if cleanup, err = setup(srv.Addr()); err != nil {
			fmt.Fprintln(os.Stderr, "zktest: setup:", err)
			_ = srv.Stop()
			return 1
		}
	}
	code := m.Run()
	cleanup()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "zktest: stop ZooKeeper:", err)
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "zktest: leaked goroutines:", err)
			return 1
		}
	}
	return code
}

// Addr returns the address of the test ZooKeeper.
func Addr(tb testing.TB) string {
	tb.Helper()
	if server == nil {
		tb.Fatal("zktest: no ZooKeeper; call zktest.Main(m) from TestMain")
	}
	return server.Addr()
}

// Root returns a root znode path unique to this test.
func Root(tb testing.TB) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(tb.Name())
	return path.Join("/t", fmt.Sprintf("%s-%d", name, seq.Add(1)))
}

// Session opens a ZooKeeper session for the test, closed at cleanup, and
// a Layout rooted at a fresh root.
func Session(tb testing.TB, opt ...zkx.Option) (*zkx.Session, Layout) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := append([]zkx.Option{zkx.WithSessionTimeout(4 * time.Second)}, opt...)
	s, err := zkx.Dial(ctx, Addr(tb), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { closeSession(tb, s) })
	lay := Layout{Root: Root(tb)}
	if err := zkx.EnsurePath(s.Conn(), lay.Root, s.ACL()); err != nil {
		tb.Fatal(err)
	}
	return s, lay
}

// closeSession closes s and waits, up to 5 s, until the test ZooKeeper has
// dropped the session's connection ("cons" no longer lists it). The server
// answers the close before it drops the connection and, with it, the
// session's watches: a test that counts the server's watches (ChildWatches)
// right after the last test's cleanup could count that test's too.
func closeSession(tb testing.TB, s *zkx.Session) {
	id := s.Conn().SessionID()
	s.Close()
	if id == 0 {
		return
	}
	sid := fmt.Sprintf("sid=0x%x,", uint64(id))
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		out, err := zkserver.FourLetter(ctx, Addr(tb), "cons")
		cancel()
		if err != nil || !strings.Contains(out, sid) {
			return
		}
		if time.Now().After(deadline) {
			tb.Logf("zktest: session %s still listed 5s after its close", sid)
			return
		}
		time.Sleep(5 * time.Millisecond) // polling the server: no event tells us
	}
}

// FourLetter sends a four-letter command to the test ZooKeeper.
func FourLetter(tb testing.TB, cmd string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := zkserver.FourLetter(ctx, Addr(tb), cmd)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Logger returns a logger writing to the test log when -v is set.
func Logger(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Eventually polls cond every 5 ms until it holds or the deadline passes.
// Use it for conditions that have no event to wait on (state in ZooKeeper
// read by a second client).
func Eventually(tb testing.TB, within time.Duration, cond func() bool, msg string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("zktest: not within %v: "+msg, append([]any{within}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
