package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/client"
)

// fakeHold is a hold the test ends, or puts in jeopardy.
type fakeHold struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	mu      sync.Mutex
	st      client.TermState
	changed chan struct{}
}

func newFakeHold() *fakeHold {
	h := &fakeHold{changed: make(chan struct{})}
	h.ctx, h.cancel = context.WithCancelCause(context.Background())
	h.st.Changed = h.changed
	return h
}

func (h *fakeHold) Context() context.Context { return h.ctx }
func (h *fakeHold) Token() int64             { return 7 }

func (h *fakeHold) State() client.TermState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st
}

func (h *fakeHold) jeopardy(deadline time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	close(h.changed)
	h.changed = make(chan struct{})
	h.st = client.TermState{Jeopardy: true, Deadline: deadline, Changed: h.changed}
}

// testGrace is the supervisor's grace in these tests: long enough for the
// command's shell to run its TERM trap on a loaded machine (300 ms was
// not, once, during a full test run beside other work), short enough to
// keep the tests quick.
const testGrace = time.Second

// superviseRun runs script under h, in the background; expires is the
// lease's end (far away when zero).
func superviseRun(t *testing.T, h held, script string, expires time.Time, eager bool, sigs chan os.Signal) (log string, done chan *exitError) {
	t.Helper()
	log = filepath.Join(t.TempDir(), "log")
	if expires.IsZero() {
		expires = time.Now().Add(time.Hour)
	}
	c := child{argv: []string{"sh", "-c", script}, env: []string{"LOG=" + log}, what: "lock test", grace: testGrace,
		expires: func() time.Time { return expires }, eager: eager, sigs: sigs, stdout: io.Discard, stderr: io.Discard}
	done = make(chan *exitError, 1)
	go func() { done <- c.run(h) }()
	waitFor(t, 10*time.Second, "the command starts", func() bool { i, _ := find(logLines(log), "sleeper"); return i >= 0 })
	return log, done
}

func result(t *testing.T, done chan *exitError) *exitError {
	t.Helper()
	select {
	case e := <-done:
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("the supervisor did not return within 20s")
		return nil
	}
}

// stopped checks that the log's command got SIGTERM and that its group
// (the grandchild too) is gone.
func stopped(t *testing.T, log string) {
	t.Helper()
	lines := logLines(log)
	_, start := find(lines, "start ")
	_, sleeper := find(lines, "sleeper ")
	if i, _ := find(lines, "end "+start[1]); i < 0 {
		t.Errorf("the command got no SIGTERM:\n%s", strings.Join(lines, "\n"))
	}
	pid, _ := strconv.Atoi(start[1])
	spid, _ := strconv.Atoi(sleeper[1])
	if groupAlive(pid) || !gone(spid) {
		t.Errorf("the command's group (%d) or its grandchild (%d) is still there", pid, spid)
	}
}

func TestSuperviseHoldLost(t *testing.T) {
	h := newFakeHold()
	log, done := superviseRun(t, h, childScript, time.Time{}, false, nil)
	h.cancel(client.ErrLockLost)
	if e := result(t, done); e.code != exitLost {
		t.Errorf("hold lost: exit %d (%v), want %d", e.code, e.err, exitLost)
	}
	stopped(t, log)
}

// TestSuperviseLeaseEnd: a lease not renewed stops the command two graces
// before its end, so that it is gone a grace before.
func TestSuperviseLeaseEnd(t *testing.T) {
	h := newFakeHold()
	expires := time.Now().Add(2*testGrace + 2*time.Second)
	log, done := superviseRun(t, h, childScript, expires, false, nil)
	e := result(t, done)
	if e.code != exitJeopardy {
		t.Errorf("lease about to end: exit %d (%v), want %d", e.code, e.err, exitJeopardy)
	}
	if now := time.Now(); now.After(expires.Add(-testGrace)) {
		t.Errorf("stopped %v before the lease's end; want at least a grace (%v)", expires.Sub(now), testGrace)
	}
	stopped(t, log)
}

// TestSuperviseJeopardy: a jeopardy deadline nearer than the lease's end
// counts; with eager (a lock), any jeopardy stops at once.
func TestSuperviseJeopardy(t *testing.T) {
	h := newFakeHold()
	log, done := superviseRun(t, h, childScript, time.Time{}, false, nil)
	deadline := time.Now().Add(2*testGrace + 1500*time.Millisecond)
	h.jeopardy(deadline)
	if e := result(t, done); e.code != exitJeopardy || time.Now().After(deadline.Add(-testGrace)) {
		t.Errorf("jeopardy: exit %d (%v), %v before the deadline; want %d, a grace before", e.code, e.err, time.Until(deadline), exitJeopardy)
	}
	stopped(t, log)

	h = newFakeHold()
	log, done = superviseRun(t, h, childScript, time.Time{}, true, nil)
	h.jeopardy(time.Now().Add(time.Hour))
	if e := result(t, done); e.code != exitJeopardy {
		t.Errorf("eager, in jeopardy: exit %d (%v), want %d", e.code, e.err, exitJeopardy)
	}
	stopped(t, log)
}

// TestSuperviseSignal: a signal zkcoord gets goes to the group; the exit
// status is 128+signal.
func TestSuperviseSignal(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	log, done := superviseRun(t, newFakeHold(), childScript, time.Time{}, false, sigs)
	sigs <- syscall.SIGTERM
	if e := result(t, done); e.code != exitSignal+int(syscall.SIGTERM) {
		t.Errorf("SIGTERM passed on: exit %d (%v), want %d", e.code, e.err, exitSignal+int(syscall.SIGTERM))
	}
	stopped(t, log)
}

// TestSuperviseKill: a command that ignores SIGTERM gets SIGKILL a grace
// later; a grandchild left behind by a command that ended is stopped.
func TestSuperviseKill(t *testing.T) {
	h := newFakeHold()
	stubborn := `trap '' TERM; echo "start $$" >> "$LOG"; sleep 1000 & echo "sleeper $!" >> "$LOG"; wait`
	log, done := superviseRun(t, h, stubborn, time.Time{}, false, nil)
	began := time.Now()
	h.cancel(client.ErrLost)
	if e := result(t, done); e.code != exitLost || time.Since(began) < testGrace {
		t.Errorf("stubborn command: exit %d after %v; want %d after the grace", e.code, time.Since(began), exitLost)
	}
	_, start := find(logLines(log), "start ")
	if pid, _ := strconv.Atoi(start[1]); groupAlive(pid) {
		t.Error("the stubborn command's group outlived SIGKILL")
	}

	leaver := `echo "start $$" >> "$LOG"; sleep 1000 & echo "sleeper $!" >> "$LOG"; exit 4`
	log, done = superviseRun(t, newFakeHold(), leaver, time.Time{}, false, nil)
	if e := result(t, done); e.code != 4 {
		t.Errorf("command that exits 4: exit %d, want its 4", e.code)
	}
	_, sleeper := find(logLines(log), "sleeper ")
	if spid, _ := strconv.Atoi(sleeper[1]); !gone(spid) {
		t.Errorf("the grandchild (%d) the command left behind is still running", spid)
	}
}
