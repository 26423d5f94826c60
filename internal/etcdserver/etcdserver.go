// Package etcdserver starts and stops a private etcd server as a child
// process, from the machine's own install (Debian's etcd-server package,
// /usr/bin/etcd). It is what `zkcoord-bench` compares zkcoord with: one
// member on loopback ports of its own, a fresh data directory, fsync on
// (etcd's default; this package never passes --unsafe-no-fsync), so a
// system etcd that the package may have started is never touched.
package etcdserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zkcoord/zkcoord/internal/child"
)

// ErrNotInstalled reports that the etcd binary is missing.
var ErrNotInstalled = errors.New("etcdserver: etcd is not installed (install it with: apt-get install -y etcd-server)")

// DefaultBinary is where Debian's etcd-server package puts etcd.
const DefaultBinary = "/usr/bin/etcd"

// errExited: the server process died before it served.
var errExited = errors.New("etcdserver: etcd exited before it was ready (see its log)")

// Server is a running etcd child process. Whoever calls Start owns it and
// must call Stop.
type Server struct {
	opts       options
	dir        string
	ownDir     bool
	clientPort int
	peerPort   int
	proc       *child.Process // nil until spawned
}

// CheckInstalled reports ErrNotInstalled when the etcd binary is missing.
func CheckInstalled(opt ...Option) error {
	o := defaultOptions()
	for _, fn := range opt {
		fn(&o)
	}
	if _, err := exec.LookPath(o.binary); err != nil {
		return fmt.Errorf("%w: no %s", ErrNotInstalled, o.binary)
	}
	return nil
}

// Start launches a one-member etcd on two free loopback ports (client and
// peer) with a fresh data directory, and returns once its /health says
// so (a leader elected, requests served). Cancelling ctx aborts the start;
// it does not stop a server that has started (call Stop).
func Start(ctx context.Context, opt ...Option) (*Server, error) {
	s, err := start(ctx, opt...)
	for attempt := 1; err != nil && attempt < 3 && errors.Is(err, errExited) && ctx.Err() == nil; attempt++ {
		// Most likely a free port was taken before etcd bound it.
		s, err = start(ctx, opt...)
	}
	return s, err
}

func start(ctx context.Context, opt ...Option) (*Server, error) {
	o := defaultOptions()
	for _, fn := range opt {
		fn(&o)
	}
	if err := CheckInstalled(opt...); err != nil {
		return nil, err
	}
	s := &Server{opts: o, dir: o.dir}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "zkcoord-etcd-")
		if err != nil {
			return nil, fmt.Errorf("etcdserver: data dir: %w", err)
		}
		s.dir, s.ownDir = d, true
	}
	var err error
	if s.clientPort, err = child.FreePort(); err != nil {
		return nil, err
	}
	if s.peerPort, err = child.FreePort(); err != nil {
		return nil, err
	}
	if err := s.spawn(); err != nil {
		s.removeDir()
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// args is etcd's command line for one member with the given ports and
// data directory.
func args(dataDir string, clientPort, peerPort int, logLevel string, pprof bool) []string {
	client := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(clientPort))
	peer := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(peerPort))
	a := []string{
		"--name", "bench",
		"--data-dir", dataDir,
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "bench=" + peer,
		"--initial-cluster-state", "new",
		"--logger", "zap",
		"--log-level", logLevel,
	}
	if pprof {
		a = append(a, "--enable-pprof")
	}
	return a
}

func (s *Server) spawn() error {
	cmd := exec.Command(s.opts.binary, args(filepath.Join(s.dir, "data"), s.clientPort, s.peerPort, s.opts.logLevel, s.opts.pprof)...)
	cmd.Dir = s.dir
	// etcd reads ETCD_* variables as flags: none from our environment may
	// change the member this package configures.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = s.opts.logs, s.opts.logs
	p, err := child.Start(cmd)
	if err != nil {
		return fmt.Errorf("etcdserver: start %s: %w", s.opts.binary, err)
	}
	s.proc = p
	return nil
}

// waitReady polls /health until it answers {"health":"true"}, ctx ends or
// the process exits.
func (s *Server) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = s.health(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcdserver: %s not ready: %w (last: %v)", s.Addr(), ctx.Err(), last)
		case <-s.proc.Done():
			return fmt.Errorf("%w: %s", errExited, s.Addr())
		case <-tick.C:
		}
	}
}

func (s *Server) health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct {
		Health string `json:"health"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&h); err != nil {
		return err
	}
	if h.Health != "true" {
		return fmt.Errorf("health %q", h.Health)
	}
	return nil
}

// Addr is the client address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.clientPort)) }

// URL is the client URL, "http://127.0.0.1:PORT", an endpoint for clientv3.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Dir is the server's directory (its data directory is Dir()/data).
func (s *Server) Dir() string { return s.dir }

// Pid returns the server's process id (0 before it started).
func (s *Server) Pid() int { return s.proc.Pid() }

// Done is closed when the server process has exited.
func (s *Server) Done() <-chan struct{} { return s.proc.Done() }

// Stop terminates the server (SIGTERM, then SIGKILL after 5 s), waits for
// it to exit and removes its directory if Start created it.
func (s *Server) Stop() error {
	s.proc.Stop(5 * time.Second)
	return s.removeDir()
}

func (s *Server) removeDir() error {
	if s.ownDir {
		return os.RemoveAll(s.dir)
	}
	return nil
}
