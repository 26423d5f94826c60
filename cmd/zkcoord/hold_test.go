package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/proxy"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// childScript logs "start PID TOKEN" and "sleeper PID" (a grandchild in
// its process group) to $LOG, and "end PID" when SIGTERM reaches it.
const childScript = `trap 'echo "end $$ $(date +%s%N)" >> "$LOG"; exit 0' TERM
echo "start $$ $ZKCOORD_FENCING_TOKEN $ZKCOORD_LEASE_ID $(date +%s%N)" >> "$LOG"
sleep 1000 & echo "sleeper $!" >> "$LOG"
wait`

// cli is a zkcoord process the test started.
type cli struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when it has exited
	code   int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startCLI(t *testing.T, bin, log string, args ...string) *cli {
	t.Helper()
	c := &cli{cmd: exec.Command(bin, args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), "LOG="+log)
	c.cmd.Stdout, c.cmd.Stderr = c.stderr, c.stderr
	c.cmd.WaitDelay = 5 * time.Second // a process left holding the output must not hang the test
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := c.cmd.Wait()
		c.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			c.code = ee.ExitCode()
		}
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
		// A zkcoord killed (a failed test) cannot stop its command: do it here.
		for _, l := range logLines(log) {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "start" {
				if pid, err := strconv.Atoi(f[1]); err == nil {
					_ = syscall.Kill(-pid, syscall.SIGKILL)
				}
			}
		}
	})
	return c
}

// exit waits for the process to exit and returns its status.
func (c *cli) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
		return c.code
	case <-time.After(within):
		t.Fatalf("zkcoord %q still running after %v; stderr:\n%s", c.cmd.Args[1:], within, c.stderr)
		return -1
	}
}

// waitFor waits until cond holds, or fails the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond) // polls the condition, bounded by the deadline
	}
}

// logLines reads the children's log.
func logLines(log string) []string {
	b, _ := os.ReadFile(log)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// find returns the index and fields of the first log line starting with
// prefix, -1 if none.
func find(lines []string, prefix string) (int, []string) {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return i, strings.Fields(l)
		}
	}
	return -1, nil
}

// gone reports whether pid has exited (a zombie counts as exited).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

// TestLockStopsChildBeforeNextHolder runs two `zkcoord lock` processes on
// one lock. The first holds it through a proxy that the test then stalls,
// so its lease can no longer be renewed: it must stop its command (and the
// command's grandchild) before the lease ends, which is before the second
// is granted the lock and starts its own.
func TestLockStopsChildBeforeNextHolder(t *testing.T) {
	testStopsBeforeNext(t, "lock", "jobs-stall")
}

// TestElectStopsChildBeforeNextLeader is the same for `zkcoord elect`.
func TestElectStopsChildBeforeNextLeader(t *testing.T) {
	testStopsBeforeNext(t, "elect", "sched-stall")
}

func testStopsBeforeNext(t *testing.T, verb, name string) {
	bin := build(t)
	px, err := proxy.New(testenv.Gateway(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	log := filepath.Join(t.TempDir(), "log")
	args := func(endpoint string) []string {
		return []string{verb, name, "--endpoints", endpoint, "--ttl", "3s", "--grace", "500ms", "--", "sh", "-c", childScript}
	}
	first := startCLI(t, bin, log, args(px.Addr())...)
	waitFor(t, 30*time.Second, "the first command starts", func() bool { i, _ := find(logLines(log), "sleeper"); return i >= 0 })
	second := startCLI(t, bin, log, args(testenv.Gateway(t))...)
	waitFor(t, 30*time.Second, "the second zkcoord queues", func() bool {
		return strings.Contains(second.stderr.String(), "1 ahead")
	})

	px.Stall() // the first can no longer renew its lease
	if code := first.exit(t, 30*time.Second); code != exitJeopardy {
		t.Errorf("first zkcoord %s: exit %d, want %d (stopped before the deadline); stderr:\n%s", verb, code, exitJeopardy, first.stderr)
	}
	waitFor(t, 30*time.Second, "the second command starts", func() bool { return strings.Count(strings.Join(logLines(log), "\n"), "start ") == 2 })

	lines := logLines(log)
	i1, start1 := find(lines, "start ")
	_, sleeper1 := find(lines, "sleeper ")
	iEnd1, _ := find(lines, "end "+start1[1])
	i2, start2 := find(lines[i1+1:], "start ")
	i2 += i1 + 1
	if iEnd1 < 0 || iEnd1 > i2 {
		t.Fatalf("the first command's end (line %d) does not precede the second's start (line %d):\n%s", iEnd1, i2, strings.Join(lines, "\n"))
	}
	_, end1 := find(lines, "end "+start1[1])
	endNS, _ := strconv.ParseInt(end1[2], 10, 64)
	startNS, _ := strconv.ParseInt(start2[4], 10, 64)
	t.Logf("the first command ended %v before the second started", time.Duration(startNS-endNS))
	pid1, _ := strconv.Atoi(start1[1])
	spid1, _ := strconv.Atoi(sleeper1[1])
	if !gone(pid1) || !gone(spid1) || groupAlive(pid1) {
		t.Errorf("the first command (%d) or its grandchild (%d) outlived zkcoord", pid1, spid1)
	}
	tok1, _ := strconv.ParseInt(start1[2], 10, 64)
	tok2, _ := strconv.ParseInt(start2[2], 10, 64)
	if tok1 < 1 || tok2 <= tok1 {
		t.Errorf("ZKCOORD_FENCING_TOKEN %d then %d: want them to increase", tok1, tok2)
	}

	// SIGTERM to the second zkcoord reaches its command's group: it ends, and
	// zkcoord exits 128+15.
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := second.exit(t, 30*time.Second); code != exitSignal+int(syscall.SIGTERM) {
		t.Errorf("second zkcoord %s after SIGTERM: exit %d, want %d; stderr:\n%s", verb, code, exitSignal+int(syscall.SIGTERM), second.stderr)
	}
	lines = logLines(log)
	if i, _ := find(lines, "end "+start2[1]); i < 0 {
		t.Errorf("SIGTERM did not reach the second command:\n%s", strings.Join(lines, "\n"))
	}
	pid2, _ := strconv.Atoi(start2[1])
	if groupAlive(pid2) {
		t.Errorf("the second command's group (%d) outlived zkcoord", pid2)
	}
}

// TestLockExitStatuses checks the exit statuses of `zkcoord lock`: the
// command's own, 121 when --try finds the lock held, 122 when the hold is
// lost (its lease revoked through `zkcoord lease revoke`), with the command
// stopped.
func TestLockExitStatuses(t *testing.T) {
	bin := build(t)
	gw := testenv.Gateway(t)
	log := filepath.Join(t.TempDir(), "log")
	lock := func(name string, extra ...string) []string {
		return append([]string{"lock", name, "--endpoints", gw, "--ttl", "4s", "--grace", "500ms"}, extra...)
	}
	if code := startCLI(t, bin, log, append(lock("exits"), "--", "sh", "-c", "exit 7")...).exit(t, 30*time.Second); code != 7 {
		t.Errorf("lock -- sh -c 'exit 7': exit %d, want the command's 7", code)
	}
	if code := startCLI(t, bin, log, append(lock("exits"), "--", "/nonexistent/cmd")...).exit(t, 30*time.Second); code != exitNoStart {
		t.Errorf("lock -- /nonexistent/cmd: exit %d, want %d", code, exitNoStart)
	}

	holder := startCLI(t, bin, log, append(lock("exits"), "--", "sh", "-c", childScript)...)
	waitFor(t, 30*time.Second, "the command starts", func() bool { i, _ := find(logLines(log), "sleeper"); return i >= 0 })
	try := startCLI(t, bin, log, append(lock("exits", "--try"), "--", "sh", "-c", "echo ran >> \"$LOG\"")...)
	if code := try.exit(t, 30*time.Second); code != exitNotAcquired || !strings.Contains(try.stderr.String(), "not acquired") {
		t.Errorf("lock --try on a held lock: exit %d, want %d; stderr:\n%s", code, exitNotAcquired, try.stderr)
	}
	if i, _ := find(logLines(log), "ran"); i >= 0 {
		t.Error("lock --try ran its command without the lock")
	}

	_, start := find(logLines(log), "start ")
	revoke := startCLI(t, bin, log, "lease", "revoke", start[3], "--endpoints", gw)
	if code := revoke.exit(t, 30*time.Second); code != 0 {
		t.Fatalf("lease revoke %s: exit %d: %s", start[3], code, revoke.stderr)
	}
	if code := holder.exit(t, 30*time.Second); code != exitLost {
		t.Errorf("lock whose lease was revoked: exit %d, want %d; stderr:\n%s", code, exitLost, holder.stderr)
	}
	pid, _ := strconv.Atoi(start[1])
	if i, _ := find(logLines(log), "end "+start[1]); i < 0 || groupAlive(pid) {
		t.Errorf("the command was not stopped (end logged: %v):\n%s", i >= 0, strings.Join(logLines(log), "\n"))
	}
}

// TestLockCutStopsChildAtOnce cuts the first holder's connection (both
// sides see it reset): the gateway releases a lock's hold when its stream
// ends, so zkcoord must stop its command at once, not when the lease
// (20s) could end. The second holder may start meanwhile (the page says
// so: that is what fencing tokens are for); the test logs by how much.
func TestLockCutStopsChildAtOnce(t *testing.T) {
	bin := build(t)
	px, err := proxy.New(testenv.Gateway(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { px.Close() })
	log := filepath.Join(t.TempDir(), "log")
	args := func(endpoint string) []string {
		return []string{"lock", "jobs-cut", "--endpoints", endpoint, "--ttl", "20s", "--grace", "500ms", "--", "sh", "-c", childScript}
	}
	first := startCLI(t, bin, log, args(px.Addr())...)
	waitFor(t, 30*time.Second, "the first command starts", func() bool { i, _ := find(logLines(log), "sleeper"); return i >= 0 })
	second := startCLI(t, bin, log, args(testenv.Gateway(t))...)
	waitFor(t, 30*time.Second, "the second zkcoord queues", func() bool { return strings.Contains(second.stderr.String(), "1 ahead") })

	cut := time.Now()
	px.Cut()
	if code := first.exit(t, 10*time.Second); code != exitJeopardy && code != exitLost {
		t.Errorf("first zkcoord lock after the cut: exit %d, want %d or %d; stderr:\n%s", code, exitJeopardy, exitLost, first.stderr)
	}
	lines := logLines(log)
	_, start1 := find(lines, "start ")
	_, end1 := find(lines, "end "+start1[1])
	if end1 == nil {
		t.Fatalf("the first command was not sent SIGTERM:\n%s", strings.Join(lines, "\n"))
	}
	endNS, _ := strconv.ParseInt(end1[2], 10, 64)
	if d := time.Unix(0, endNS).Sub(cut); d > 3*time.Second {
		t.Errorf("the first command ended %v after the cut; want at once (well before the 20s lease)", d)
	}
	waitFor(t, 30*time.Second, "the second command starts", func() bool { return strings.Count(strings.Join(logLines(log), "\n"), "start ") == 2 })
	i1, _ := find(logLines(log), "start ")
	_, start2 := find(logLines(log)[i1+1:], "start ")
	startNS, _ := strconv.ParseInt(start2[4], 10, 64)
	t.Logf("cut: the first command ended %v after the cut, %v before the second started (negative: overlap)",
		time.Unix(0, endNS).Sub(cut), time.Duration(startNS-endNS))
}
