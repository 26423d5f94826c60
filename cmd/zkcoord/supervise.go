package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/zkcoord/zkcoord/client"
)

// held is what a command may run under: a lock's hold (client.Lock), a
// term (client.Leadership) or a semaphore's permit (client.Permit).
type held interface {
	Context() context.Context
	State() client.TermState
	Token() int64
}

// child is a command run under a hold, in a process group of its own.
type child struct {
	argv    []string
	env     []string // added to zkcoord's environment
	what    string   // "lock jobs", for messages
	grace   time.Duration
	expires func() time.Time // when the hold's lease could end
	// eager stops the command as soon as the hold is in jeopardy: for a
	// lock, whose hold the gateway keeps only while its stream lasts, so
	// that a hold in jeopardy may be gone already.
	eager  bool
	sigs   <-chan os.Signal // signals to pass on to the group
	stdout io.Writer
	stderr io.Writer
}

// run starts the command and waits for it while h lasts, and returns the
// exit status:
//   - the command's own, when it ends by itself (128+N when a signal N
//     killed it);
//   - 128+N when zkcoord got signal N, passed it on to the group, and the
//     command then ended;
//   - exitLost when the hold ended, exitJeopardy when its deadline (or its
//     lease's end) came within two graces: the group then got SIGTERM, and
//     SIGKILL a grace later, so that it is gone a grace before the
//     deadline, before another holder can be granted.
//
// Whatever is left of the group when the command ends gets the same.
func (c child) run(h held) *exitError {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice == 0 {
		cmd.Stdin = os.Stdin // a pipe or file; a terminal would stop a background group (SIGTTIN)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A grandchild left running keeps the output pipes (when stdout is not a
	// file) open: do not wait for it to let go before sweeping the group.
	cmd.WaitDelay = c.grace
	if err := cmd.Start(); err != nil {
		return &exitError{code: exitNoStart, err: fmt.Errorf("start %s: %w", c.argv[0], err)}
	}
	pgid := cmd.Process.Pid
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var got os.Signal
	for {
		st := h.State()
		if st.Jeopardy && c.eager {
			fmt.Fprintf(c.stderr, "zkcoord: %s in jeopardy (it may be gone already): stopping the command (SIGTERM, SIGKILL after %v)\n", c.what, c.grace)
			c.stop(pgid, waited)
			return &exitError{code: exitJeopardy, err: fmt.Errorf("%s in jeopardy: the command was stopped", c.what)}
		}
		deadline := c.stopAt(st)
		timer := time.NewTimer(time.Until(deadline))
		select {
		case err := <-waited:
			timer.Stop()
			c.sweep(pgid)
			if got != nil {
				return &exitError{code: exitSignal + sigNum(got)}
			}
			return &exitError{code: childStatus(err)}
		case sig := <-c.sigs:
			got = sig
			_ = syscall.Kill(-pgid, sig.(syscall.Signal))
		case <-h.Context().Done():
			timer.Stop()
			cause := context.Cause(h.Context())
			fmt.Fprintf(c.stderr, "zkcoord: %s ended (%v): stopping the command (SIGTERM, SIGKILL after %v)\n", c.what, cause, c.grace)
			c.stop(pgid, waited)
			code := exitLost
			if errors.Is(cause, client.ErrJeopardy) {
				code = exitJeopardy
			}
			return &exitError{code: code, err: fmt.Errorf("%s ended: %w; the command was stopped", c.what, cause)}
		case <-st.Changed:
		case <-timer.C:
			if d := c.stopAt(h.State()); time.Now().Before(d) {
				continue // renewed, or out of jeopardy
			}
			fmt.Fprintf(c.stderr, "zkcoord: %s could end at %s (no renewal or confirmation since): stopping the command (SIGTERM, SIGKILL after %v)\n",
				c.what, c.deadline(h.State()).Format(time.RFC3339Nano), c.grace)
			c.stop(pgid, waited)
			return &exitError{code: exitJeopardy, err: fmt.Errorf("%s in jeopardy: the command was stopped before the deadline", c.what)}
		}
		timer.Stop()
	}
}

// deadline is when the hold could end: its jeopardy deadline, or its
// lease's end if sooner (the lease ends unless a keepalive renews it).
func (c child) deadline(st client.TermState) time.Time {
	d := c.expires()
	if st.Jeopardy && st.Deadline.Before(d) {
		d = st.Deadline
	}
	return d
}

// stopAt is when to send SIGTERM: two graces before the deadline, so that
// SIGKILL comes a grace before it.
func (c child) stopAt(st client.TermState) time.Time {
	return c.deadline(st).Add(-2 * c.grace)
}

// stop sends SIGTERM to the group, SIGKILL a grace later if the command or
// others of its group are still there, and waits for the command.
func (c child) stop(pgid int, waited <-chan error) {
	kill := time.Now().Add(c.grace)
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-waited:
	case <-time.After(c.grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-waited
	}
	c.killBy(pgid, kill)
}

// sweep stops what is left of the group once the command has ended.
func (c child) sweep(pgid int) {
	if !groupAlive(pgid) {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	c.killBy(pgid, time.Now().Add(c.grace))
}

// killBy waits until the group is gone or at, then SIGKILLs what is left.
func (c child) killBy(pgid int, at time.Time) {
	for groupAlive(pgid) {
		if !time.Now().Before(at) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		}
		time.Sleep(min(20*time.Millisecond, time.Until(at))) // polls the group's end, bounded by at
	}
}

// groupAlive reports whether the process group has a process that is not
// a zombie (an orphan that init has not reaped yet counts as gone).
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil && !allZombies(pgid)
}

// childStatus is the exit status of a command that ended by itself.
func childStatus(err error) int {
	if errors.Is(err, exec.ErrWaitDelay) {
		return exitOK // it exited 0; what it left held its output open
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err != nil {
			return exitFailed
		}
		return exitOK
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitSignal + int(ws.Signal())
	}
	return ee.ExitCode()
}

func sigNum(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return int(syscall.SIGTERM)
}
