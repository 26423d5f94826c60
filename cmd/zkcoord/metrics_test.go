package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/zkserver"
)

// TestServeMetrics runs `zkcoord serve --metrics-listen` as an operator
// would: /metrics answers on the address it logged, counts a call, times
// ZooKeeper's requests (the session was dialled with the observer), and
// stops with the process. `zkcoord health`, a container's health check,
// passes while it serves (finding the port from ZKCOORD_LISTEN, as in the
// image) and fails once it stopped.
func TestServeMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bin := build(t)
	zks, err := zkserver.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer zks.Stop()
	port, err := zkserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "serve", "--plaintext", "--no-auth", "--listen", addr, "--zk", zks.Addr(), "--metrics-listen", "127.0.0.1:0")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up, scanned := make(chan string, 1), make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log(sc.Text())
			if m := regexp.MustCompile(`zkcoord serving.* metrics=(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				up <- m[1]
			}
		}
	}()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-scanned
			_ = cmd.Wait()
		}
	}()
	var metricsAddr string
	select {
	case metricsAddr = <-up:
	case <-ctx.Done():
		t.Fatal("not serving")
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := pb.NewRegistryServiceClient(cc).Register(ctx, &pb.RegisterRequest{Group: "web", MemberId: "w1", Value: "v", Persistent: true}); err != nil {
		t.Fatal(err)
	}
	get := func() (string, error) {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	body, err := get()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^zkcoord_zk_session_connected 1$`),
		regexp.MustCompile(`(?m)^grpc_server_handled_total\{grpc_code="OK",grpc_method="Register",grpc_service="zkcoord.v1.RegistryService",grpc_type="unary"\} 1$`),
		regexp.MustCompile(`(?m)^zkcoord_zk_request_duration_seconds_count\{op="multi"\} [1-9]`),
		regexp.MustCompile(`(?m)^zkcoord_replica_info\{replica="[^"]+",version="dev"\} 1$`),
	} {
		if !want.MatchString(body) {
			t.Errorf("/metrics has no line matching %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(body, "zkcoord_|grpc_server_handled"))
	}
	healthCmd := func() (string, error) {
		h := exec.Command(bin, "health")
		h.Env = append(os.Environ(), "ZKCOORD_LISTEN=:"+strconv.Itoa(port))
		out, err := h.CombinedOutput()
		return string(out), err
	}
	if out, err := healthCmd(); err != nil || strings.TrimSpace(out) != "SERVING" {
		t.Errorf("zkcoord health while serving: %v, %q", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-scanned
	stopped = true
	if err := cmd.Wait(); err != nil {
		t.Fatalf("zkcoord serve exit: %v", err)
	}
	if _, err := get(); err == nil {
		t.Error("/metrics still answers after the process stopped")
	}
	if out, err := healthCmd(); err == nil || !strings.Contains(out, "health of 127.0.0.1:"+strconv.Itoa(port)) {
		t.Errorf("zkcoord health after the stop: %v, %q; want a failure naming the address", err, out)
	}
}

// grepLines returns the lines of s that match re.
func grepLines(s, re string) string {
	var out []string
	r := regexp.MustCompile(re)
	for _, l := range strings.Split(s, "\n") {
		if r.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
