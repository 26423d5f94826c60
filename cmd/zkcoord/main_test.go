package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zkcoord/zkcoord/internal/zkserver"
)

// build compiles the binary once per test.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "zkcoord")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestDev runs `zkcoord dev` as a user would: it starts its own ZooKeeper,
// serves (healthy), and on SIGINT stops, taking ZooKeeper with it.
func TestDev(t *testing.T) {
	if err := zkserver.CheckInstalled(); err != nil {
		t.Fatal(err)
	}
	bin := build(t)
	port, err := zkserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "dev")
	cmd.Env = append(os.Environ(), "ZKCOORD_LISTEN="+addr) // flags also come from env
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	zkDir := ""
	deadline := time.After(60 * time.Second)
	for serving := false; !serving; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("zkcoord dev exited before serving")
			}
			if _, d, ok := strings.Cut(l, "dir="); ok && strings.Contains(l, "private ZooKeeper started") {
				zkDir = strings.Fields(d)[0]
			}
			serving = strings.Contains(l, "zkcoord serving")
		case <-deadline:
			cmd.Process.Kill()
			t.Fatal("zkcoord dev not serving within 60s")
		}
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", h, err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("zkcoord dev exit: %v", err)
	}
	if zkDir == "" {
		t.Fatal("no ZooKeeper directory logged")
	}
	if _, err := os.Stat(zkDir); !os.IsNotExist(err) {
		t.Fatalf("private ZooKeeper's directory %s left behind: %v", zkDir, err)
	}
}

func TestUsageErrors(t *testing.T) {
	bin := build(t)
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{args: []string{"serve"}, want: "--zk (or ZKCOORD_ZK) is required"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--log-level", "loud"}, want: "--log-level"},
		{args: []string{"serve", "--zk", "127.0.0.1:1"}, want: "serve needs TLS (--tls-cert and --tls-key"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--tls-cert", "c.pem"}, want: "--tls-cert and --tls-key go together"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--tls-client-ca", "ca.pem"}, want: "--tls-client-ca needs --tls-cert and --tls-key"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, want: "--plaintext conflicts"},
		{args: []string{"serve"}, env: []string{"ZKCOORD_SESSION_TIMEOUT=soon"}, want: "ZKCOORD_SESSION_TIMEOUT"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext"}, want: "serve needs --auth-policy (who may do what) or --no-auth"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--zk-tls-cert", "c.pem"}, want: "--zk-tls-cert and --zk-tls-key go together"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--zk-tls-cert", "c.pem", "--zk-tls-key", "k.pem"}, want: "--zk-tls-cert needs --zk-tls-ca"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--zk-tls-ca", "/nonexistent/ca.pem"}, want: "--zk-tls-ca: open /nonexistent/ca.pem"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--auth-policy", "p.json"}, want: "--no-auth conflicts with --auth-policy"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--auth-open", "grpc.health.v1.Health,admin"}, want: `--auth-open: unknown service "admin"`},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--dns-listen", "127.0.0.1:8600"}, want: "--dns-listen needs --dns-groups"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--dns-ttl", "1500ms"}, want: "--dns-ttl: dnsview: TTL 1.5s: want whole seconds"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--dns-ttl", "2h"}, want: "--dns-ttl: "},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--dns-domain", "a b"}, want: `--dns-domain: dnsview: domain "a b"`},
		{args: []string{"dev", "--dns-groups", "web,a/b"}, want: `--dns-groups: dnsview: group prefix "a/b"`},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--metrics-listen", "9464"}, want: `--metrics-listen "9464": want host:port`},
		{args: []string{"dev", "--metrics-listen", "localhost"}, want: `--metrics-listen "localhost": want host:port`},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--zk-write-pipeline", "0"}, want: "--zk-write-pipeline 0: must be 1 to 64"},
		{args: []string{"serve", "--zk", "127.0.0.1:1", "--plaintext", "--no-auth", "--grpc-stream-workers", "-1"}, want: "--grpc-stream-workers -1: must be 0 to 4096"},
		{args: []string{"frobnicate"}, want: `unknown command "frobnicate"`},
		// pflag reads -zk as the shorthands -z -k: say what to write instead.
		{args: []string{"serve", "-zk", "127.0.0.1:1"}, want: "long flags take two dashes"},
		// No Java: the error names the command that installs it.
		{args: []string{"dev"}, env: []string{"PATH=/nonexistent"}, want: "apt-get install -y zookeeper default-jre-headless"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(os.Environ(), tc.env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("zkcoord %v (%v): err %v, output %q; want it to mention %q", tc.args, tc.env, err, out, tc.want)
		}
	}
}
