// Package child runs the server processes zkcoord's tests and bench start
// (zkserver's ZooKeeper, etcdserver's etcd): each in its own process group,
// so that a terminal's Ctrl-C reaches the parent only and the parent
// decides when the child stops, killed with its parent, and its exit
// observable.
package child

import (
	"fmt"
	"net"
	"os/exec"
	"syscall"
	"time"
)

// Process is a started child. A nil *Process is one not started: it has
// no pid, is not running, and its Done never closes.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts cmd as a child in its own process group.
func Start(cmd *exec.Cmd) (*Process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id, 0 when not started.
func (p *Process) Pid() int {
	if p == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} {
	if p == nil {
		return nil
	}
	return p.done
}

// Running reports whether the process was started and has not exited
// (a stopped one, SIGSTOP, is running).
func (p *Process) Running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// SignalGroup sends sig to the process's group, which it leads.
func (p *Process) SignalGroup(sig syscall.Signal) error {
	return syscall.Kill(-p.Pid(), sig)
}

// Kill kills the process (SIGKILL) and waits for it to exit.
func (p *Process) Kill() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop asks the process to end (SIGTERM), kills it after grace, and waits
// for it to exit.
func (p *Process) Stop(grace time.Duration) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
