// Package zkserver starts and stops a private ZooKeeper server as a child
// process, from the machine's own install (Debian's zookeeper package). It is
// what `zkcoord dev` runs on and what the integration tests run against: a
// real ZooKeeper, never a fake.
package zkserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zkcoord/zkcoord/internal/child"
)

// ErrNotInstalled reports that Java or the ZooKeeper jar is missing.
var ErrNotInstalled = errors.New("zkserver: ZooKeeper is not installed (install it with: apt-get install -y zookeeper default-jre-headless)")

// DefaultJars is where Debian's zookeeper package puts the server's jar
// (its manifest carries the rest of the classpath) and a console logger.
var DefaultJars = []string{"/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"}

// Server is a running ZooKeeper child process.
type Server struct {
	opts   options
	dir    string
	port   int
	sport  int            // the secure client port, with WithTLS
	proc   *child.Process // nil until spawned
	ownDir bool

	// Ensemble members only: this server's id and every member's
	// "server.N" line.
	id      int
	members []string
}

// CheckInstalled reports ErrNotInstalled when java or the ZooKeeper jar is
// missing.
func CheckInstalled() error {
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("%w: no java on PATH", ErrNotInstalled)
	}
	if _, err := os.Stat(DefaultJars[0]); err != nil {
		return fmt.Errorf("%w: no %s", ErrNotInstalled, DefaultJars[0])
	}
	return nil
}

// Start launches a standalone ZooKeeper on a free loopback port with a fresh
// data directory, and returns once it serves requests. Cancelling ctx aborts
// the start; it does not stop a server that has started (call Stop).
func Start(ctx context.Context, opt ...Option) (*Server, error) {
	s, err := start(ctx, opt...)
	for attempt := 1; err != nil && attempt < 3 && errors.Is(err, errExited) && ctx.Err() == nil; attempt++ {
		// Most likely the free port was taken before ZooKeeper bound it.
		s, err = start(ctx, opt...)
	}
	return s, err
}

// errExited: the server process died before it served.
var errExited = errors.New("zkserver: ZooKeeper exited before it was ready (see its log)")

func start(ctx context.Context, opt ...Option) (*Server, error) {
	o := defaultOptions()
	for _, fn := range opt {
		fn(&o)
	}
	if err := CheckInstalled(); err != nil {
		return nil, err
	}
	s := &Server{opts: o, dir: o.dir, port: o.port}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "zkcoord-zk-")
		if err != nil {
			return nil, fmt.Errorf("zkserver: data dir: %w", err)
		}
		s.dir, s.ownDir = d, true
	}
	if s.port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		s.port = p
	}
	if o.tls != nil {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		s.sport = p
	}
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	if err := s.spawn(); err != nil {
		return nil, err
	}
	if err := WaitReady(ctx, s.Addr(), s.proc.Done()); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) writeConfig() error {
	data := filepath.Join(s.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("zkserver: %w", err)
	}
	cfg := map[string]string{
		"tickTime":                  strconv.Itoa(int(s.opts.tickTime / time.Millisecond)),
		"dataDir":                   data,
		"clientPort":                strconv.Itoa(s.port),
		"clientPortAddress":         "127.0.0.1",
		"admin.enableServer":        "false",
		"4lw.commands.whitelist":    strings.Join(s.opts.fourLetterWords, ","),
		"maxClientCnxns":            "0",
		"minSessionTimeout":         strconv.Itoa(int(s.opts.minSession / time.Millisecond)),
		"maxSessionTimeout":         strconv.Itoa(int(s.opts.maxSession / time.Millisecond)),
		"extendedTypesEnabled":      "true",
		"forceSync":                 yesNo(s.opts.forceSync), // ZooKeeper turns it off only on "no"
		"autopurge.purgeInterval":   "1",
		"autopurge.snapRetainCount": "3",
	}
	if t := s.opts.tls; t != nil {
		clientAuth := "none"
		if t.NeedClientAuth {
			clientAuth = "need"
		}
		cfg["serverCnxnFactory"] = "org.apache.zookeeper.server.NettyServerCnxnFactory"
		cfg["secureClientPort"] = strconv.Itoa(s.sport)
		cfg["secureClientPortAddress"] = "127.0.0.1"
		cfg["ssl.keyStore.location"], cfg["ssl.keyStore.type"] = t.KeyStore, "PEM"
		cfg["ssl.trustStore.location"], cfg["ssl.trustStore.type"] = t.TrustStore, "PEM"
		cfg["ssl.clientAuth"] = clientAuth
	}
	if s.id > 0 {
		cfg["initLimit"], cfg["syncLimit"] = "10", "5"
		for i, m := range s.members {
			cfg[fmt.Sprintf("server.%d", i+1)] = m
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(s.id)), 0o644); err != nil {
			return fmt.Errorf("zkserver: %w", err)
		}
	}
	var b strings.Builder
	for _, k := range sortedKeys(cfg) {
		fmt.Fprintf(&b, "%s=%s\n", k, cfg[k])
	}
	return os.WriteFile(filepath.Join(s.dir, "zoo.cfg"), []byte(b.String()), 0o644)
}

func (s *Server) spawn() error {
	jars := s.opts.jars
	if s.opts.tls != nil {
		// Netty's codec is not on the Debian jar's manifest class path.
		jars = append(slices.Clone(jars), nettyCodecJar)
	}
	args := []string{
		"-cp", strings.Join(jars, ":"),
		"-Xmx" + s.opts.heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
		"-Dzookeeper.admin.enableServer=false",
		"-Dorg.slf4j.simpleLogger.defaultLogLevel=" + s.opts.logLevel,
		"-Dznode.container.checkIntervalMs=1000",
	}
	args = append(args, s.opts.jvmFlags...)
	args = append(args, "org.apache.zookeeper.server.quorum.QuorumPeerMain", filepath.Join(s.dir, "zoo.cfg"))
	cmd := exec.Command("java", args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = s.opts.logs, s.opts.logs
	p, err := child.Start(cmd)
	if err != nil {
		return fmt.Errorf("zkserver: start java: %w", err)
	}
	s.proc = p
	return nil
}

// Addr is the server's client address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// SecureAddr is the server's TLS client address with WithTLS, "" without.
func (s *Server) SecureAddr() string {
	if s.sport == 0 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.sport))
}

// nettyCodecJar is the Netty codec the secure client port needs.
const nettyCodecJar = "/usr/share/java/netty-codec.jar"

// Dir is the server's directory (config and data).
func (s *Server) Dir() string { return s.dir }

// Pid returns the server's process id (0 before it started).
func (s *Server) Pid() int { return s.proc.Pid() }

// Done is closed when the server process has exited.
func (s *Server) Done() <-chan struct{} { return s.proc.Done() }

// Stop terminates the server (SIGTERM, then SIGKILL after 5 s), waits for it
// to exit and removes its data directory if Start created it.
func (s *Server) Stop() error {
	s.proc.Stop(5 * time.Second)
	if s.ownDir {
		return os.RemoveAll(s.dir)
	}
	return nil
}

// FourLetter sends a four-letter command ("ruok", "wchp", "mntr", ...) to a
// ZooKeeper server and returns its answer. The command must be whitelisted in
// the server's 4lw.commands.whitelist.
func FourLetter(ctx context.Context, addr, cmd string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	}
	if _, err := io.WriteString(conn, cmd); err != nil {
		return "", err
	}
	b, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// Mntr reads the integer lines of a server's mntr (zk_watch_count,
// zk_cnt_fsynctime, ...); lines whose value is not an integer (averages,
// versions) are left out.
func Mntr(ctx context.Context, addr string) (map[string]int64, error) {
	out, err := FourLetter(ctx, addr, "mntr")
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); ok && err == nil {
			m[k] = n
		}
	}
	return m, nil
}

// WaitReady polls addr until it serves requests (`srvr` reports its mode;
// `ruok` alone answers before the server serves), ctx ends, or exited (if
// not nil) is closed.
func WaitReady(ctx context.Context, addr string, exited <-chan struct{}) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		c, cancel := context.WithTimeout(ctx, time.Second)
		out, err := FourLetter(c, addr, "srvr")
		cancel()
		if err == nil && strings.Contains(out, "Mode: ") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("zkserver: %s not ready: %w (last: %q, %v)", addr, ctx.Err(), out, err)
		case <-exited:
			return fmt.Errorf("%w: %s", errExited, addr)
		case <-tick.C:
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) { return child.FreePort() }

// yesNo spells b as ZooKeeper's forceSync wants it: it compares the
// value with "no", so "false" leaves the flush on.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
