package main

import (
	"bufio"
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/zkserver"
)

// TestServeDNS runs `zkcoord serve --dns-listen` as an operator would: the
// DNS view answers on the port it logged, in the domain and with the TTL
// given, shows only the groups given (REFUSED for others), and stops
// with the process.
func TestServeDNS(t *testing.T) {
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
	cmd := exec.Command(bin, "serve", "--plaintext", "--no-auth", "--listen", addr, "--zk", zks.Addr(),
		"--dns-listen", "127.0.0.1:0", "--dns-domain", "Svc.Test", "--dns-ttl", "3s", "--dns-groups", "web, db.")
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
			if m := regexp.MustCompile(`zkcoord serving.* dns=(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
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
	var dnsAddr string
	select {
	case dnsAddr = <-up:
	case <-ctx.Done():
		t.Fatal("not serving")
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	reg := pb.NewRegistryServiceClient(cc)
	for _, m := range []*pb.RegisterRequest{
		{Group: "web", MemberId: "w1", Value: "10.0.0.1:80", Persistent: true},
		{Group: "secret", MemberId: "s1", Value: "10.0.0.2:22", Persistent: true},
	} {
		if _, err := reg.Register(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	ask := func(network, name string) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeSRV)
		r, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, dnsAddr)
		if err != nil {
			t.Fatalf("SRV %s over %s: %v", name, network, err)
		}
		return r
	}
	for _, network := range []string{"udp", "tcp"} {
		r := ask(network, "web.svc.test.")
		if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 3 || !strings.HasSuffix(r.Answer[0].String(), "\t1 1 80 w1.web.svc.test.") {
			t.Errorf("SRV web.svc.test. over %s: %v; want w1's, TTL 3", network, r)
		}
		if r := ask(network, "secret.svc.test."); r.Rcode != dns.RcodeRefused {
			t.Errorf("SRV secret.svc.test. over %s: %v; want REFUSED", network, r)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-scanned
	stopped = true
	if err := cmd.Wait(); err != nil {
		t.Fatalf("zkcoord serve exit: %v", err)
	}
	if _, _, err := (&dns.Client{Net: "tcp", Timeout: time.Second}).Exchange(new(dns.Msg).SetQuestion("web.svc.test.", dns.TypeSRV), dnsAddr); err == nil {
		t.Error("the DNS view still answers after the process stopped")
	}
}
