package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
	"github.com/zkcoord/zkcoord/internal/testing/testenv/httpc"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkserver"
)

// pki is a test CA that issues certificates into a directory.
type pki struct {
	*zktest.CA
	t   *testing.T
	dir string
}

func newPKI(t *testing.T) *pki {
	p := &pki{CA: zktest.NewCA(t, "zkcoord test CA"), t: t, dir: t.TempDir()}
	p.write("ca.pem", p.PEM)
	return p
}

// write replaces the file name in the directory at once (a rename).
func (p *pki) write(name string, data []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue writes a certificate and key for 127.0.0.1, usable by servers and
// clients, with the given serial; it returns the file paths and the pair.
func (p *pki) issue(name string, serial int64) (certFile, keyFile string, pair tls.Certificate) {
	c := p.Issue(p.t, name, serial)
	keyFile = p.write(name+"-key.pem", c.KeyPEM)
	certFile = p.write(name+".pem", c.CertPEM)
	return certFile, keyFile, c.Pair
}

// TestServeMutualTLS runs `zkcoord dev` with TLS and a client CA: a client
// with a certificate from the CA is served; one without, or in plaintext, is
// refused; a certificate replaced on disk is served from the next
// connection on, without a restart.
func TestServeMutualTLS(t *testing.T) {
	if err := zkserver.CheckInstalled(); err != nil {
		t.Fatal(err)
	}
	bin := build(t)
	ca := newPKI(t)
	serverCert, serverKey, _ := ca.issue("server", 100)
	clientCert, clientKey, clientPair := ca.issue("client", 200)
	port, err := zkserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "dev", "--listen", addr, "--tls-cert", serverCert, "--tls-key", serverKey,
		"--tls-client-ca", filepath.Join(ca.dir, "ca.pem"))
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}()
	serving := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if l := sc.Text(); strings.Contains(l, "zkcoord serving") {
				serving <- strings.Contains(l, "tls=true") && strings.Contains(l, "mutual_tls=true")
			}
		}
		close(serving)
	}()
	select {
	case ok := <-serving:
		if !ok {
			t.Fatal("serving, but not with mutual TLS")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("zkcoord dev not serving within 60s")
	}

	// check connects with creds and runs a health check.
	check := func(creds credentials.TransportCredentials) error {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		if err == nil && h.Status != healthpb.HealthCheckResponse_SERVING {
			err = fmt.Errorf("health %v", h.Status)
		}
		return err
	}
	var seen int64
	tlsCreds := func(withCert bool) credentials.TransportCredentials {
		cfg := &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12,
			VerifyConnection: func(cs tls.ConnectionState) error {
				seen = cs.PeerCertificates[0].SerialNumber.Int64()
				return nil
			}}
		if withCert {
			cfg.Certificates = []tls.Certificate{clientPair}
		}
		return credentials.NewTLS(cfg)
	}
	if err := check(tlsCreds(true)); err != nil {
		t.Fatalf("client with a certificate from the CA: %v", err)
	}
	if seen != 100 {
		t.Fatalf("server certificate serial %d, want 100", seen)
	}
	if err := check(tlsCreds(false)); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	// The CLI, with the CA and the client's certificate from the
	// environment: served; without the certificate: refused, exit 1.
	t.Setenv("ZKCOORD_CACERT", filepath.Join(ca.dir, "ca.pem"))
	t.Setenv("ZKCOORD_CERT", clientCert)
	t.Setenv("ZKCOORD_KEY", clientKey)
	var out, errb bytes.Buffer
	if code := execute(context.Background(), nil, []string{"status", "--endpoints", addr, "-o", "json"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), `"state":"CONNECTION_STATE_CONNECTED"`) {
		t.Fatalf("zkcoord status over mutual TLS: exit %d, %s%s", code, out.String(), errb.String())
	}
	t.Setenv("ZKCOORD_CERT", "")
	t.Setenv("ZKCOORD_KEY", "")
	out.Reset()
	if code := execute(context.Background(), nil, []string{"status", "--endpoints", addr, "--timeout", "3s"}, &out, &errb); code != exitFailed {
		t.Fatalf("zkcoord status without a client certificate: exit %d, %s; want 1", code, out.String())
	}
	if err := check(insecure.NewCredentials()); err == nil {
		t.Fatal("a plaintext client was served")
	}

	// Replace the server's certificate on disk; new connections get it
	// once the gateway looks at the files again (at most every second).
	ca.issue("server", 101)
	deadline := time.Now().Add(10 * time.Second)
	for seen != 101 && time.Now().Before(deadline) {
		if err := check(tlsCreds(true)); err != nil {
			t.Fatalf("after the certificate changed: %v", err)
		}
	}
	if seen != 101 {
		t.Fatalf("server still presents serial %d after its certificate file changed", seen)
	}
}

// TestReplicasOverMutualTLS: two replicas serving mutual TLS with an auth
// policy that maps certificate names to principals. They reach each other
// with their certificates (the replicas' principal is admin): a keepalive
// sent to the replica that does not own the lease is forwarded to the one
// that does. The client's certificate makes it a principal with the
// register right on "app." only; a certificate the policy does not name is
// refused.
func TestReplicasOverMutualTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	zks, err := zkserver.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer zks.Stop()
	bin := build(t)
	ca := newPKI(t)
	cert, key, _ := ca.issue("replica", 300)
	_, _, clientPair := ca.issue("client", 301)
	_, _, strangerPair := ca.issue("stranger", 302)
	policy := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policy, []byte(`{"principals": [
		{"name": "replicas", "mtls_names": ["replica"], "scopes": [{"prefix": "", "rights": ["admin"]}]},
		{"name": "app", "mtls_names": ["client"], "scopes": [{"prefix": "app.", "rights": ["read", "register"]}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	hport, err := zkserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	httpsAddr := "127.0.0.1:" + strconv.Itoa(hport) // replica 0's HTTP face
	for i := range 2 {
		port, err := zkserver.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		addrs = append(addrs, addr)
		args := []string{"serve", "--zk", zks.Addr(), "--listen", addr, "--replica-id", fmt.Sprint("r", i),
			"--tls-cert", cert, "--tls-key", key, "--tls-client-ca", filepath.Join(ca.dir, "ca.pem"), "--auth-policy", policy}
		if i == 0 {
			args = append(args, "--http-listen", httpsAddr)
		}
		cmd := exec.Command(bin, args...)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}()
		up := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "zkcoord serving") {
					close(up)
				}
			}
		}()
		select {
		case <-up:
		case <-ctx.Done():
			t.Fatal("replica not serving")
		}
	}
	dial := func(addr string, pair tls.Certificate) *grpc.ClientConn {
		creds := credentials.NewTLS(&tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	conn := func(addr string) pb.LeaseServiceClient { return pb.NewLeaseServiceClient(dial(addr, clientPair)) }
	a, b := conn(addrs[0]), conn(addrs[1])
	g, err := a.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.KeepAlive(ctx, &pb.KeepAliveRequest{LeaseId: g.LeaseId}); err != nil {
		t.Fatalf("keepalive through the other replica (forwarded over mutual TLS): %v", err)
	}
	l, err := b.GetLease(ctx, &pb.GetLeaseRequest{LeaseId: g.LeaseId})
	if err != nil || l.GetTtl().AsDuration() != time.Minute {
		t.Fatalf("GetLease through the other replica: %v, %v", l, err)
	}
	reg := pb.NewRegistryServiceClient(dial(addrs[1], clientPair))
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "app.web", MemberId: "m1", Value: "v", LeaseId: g.LeaseId}); err != nil {
		t.Fatalf("Register in scope: %v", err)
	}
	if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: "billing", MemberId: "m1", Value: "v", LeaseId: g.LeaseId}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Register out of scope: %v, want PermissionDenied", err)
	}
	st := pb.NewStatusServiceClient(dial(addrs[0], clientPair))
	if _, err := st.GetStatus(ctx, &pb.GetStatusRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("GetStatus without admin: %v, want PermissionDenied", err)
	}
	stranger := pb.NewLeaseServiceClient(dial(addrs[0], strangerPair))
	if _, err := stranger.Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Grant with a certificate the policy does not name: %v, want Unauthenticated", err)
	}
	// Health stays open (the default --auth-open) for load balancers.
	hc := healthpb.NewHealthClient(dial(addrs[0], strangerPair))
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health check without a principal: %v", err)
	}

	// The HTTP face serves the same TLS, and a client certificate is the
	// same principal over HTTP as over gRPC.
	https := func(pair *tls.Certificate) httpc.Client {
		cfg := &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
		if pair != nil {
			cfg.Certificates = []tls.Certificate{*pair}
		}
		return httpc.Client{Base: "https://" + httpsAddr, HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}}
	}
	r, err := https(&clientPair).Do(ctx, "PUT", "/v1/groups/app.web/members/m2", map[string]any{"value": "v", "leaseId": g.LeaseId})
	if err != nil || r.Status != 200 {
		t.Fatalf("HTTPS Register in scope with the client certificate: %v, %v", r, err)
	}
	r, err = https(&clientPair).Do(ctx, "GET", "/v1/groups/billing", nil)
	if err != nil || r.Status != http.StatusForbidden || r.Code() != int(codes.PermissionDenied) {
		t.Fatalf("HTTPS Lookup out of scope: %v, %v; want 403", r, err)
	}
	r, err = https(&strangerPair).Do(ctx, "GET", "/v1/groups/app.web", nil)
	if err != nil || r.Status != http.StatusUnauthorized || r.Code() != int(codes.Unauthenticated) {
		t.Fatalf("HTTPS with a certificate the policy does not name: %v, %v; want 401", r, err)
	}
	if r, err := https(nil).Do(ctx, "GET", "/v1/groups/app.web", nil); err == nil {
		t.Fatalf("HTTPS without a client certificate: %v; want the handshake refused", r)
	}
	if r, err := (httpc.Client{Base: "http://" + httpsAddr}).Do(ctx, "GET", "/v1/groups/app.web", nil); err == nil && r.Status == 200 {
		t.Fatalf("plain HTTP to the TLS port: %v", r)
	}
}

// TestServeOverZooKeeperTLS: serve reaches a ZooKeeper that takes clients
// only over TLS with a client certificate (secureClientPort,
// ssl.clientAuth=need), given --zk-tls-ca, --zk-tls-cert and --zk-tls-key.
func TestServeOverZooKeeperTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bin := build(t)
	ca := newPKI(t)
	zk := ca.Issue(t, "zookeeper", 400)
	keystore := ca.write("zk-keystore.pem", append(zk.KeyPEM, zk.CertPEM...))
	zks, err := zkserver.Start(ctx, zkserver.WithTLS(zkserver.TLS{KeyStore: keystore,
		TrustStore: filepath.Join(ca.dir, "ca.pem"), NeedClientAuth: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer zks.Stop()
	clientCert, clientKey, _ := ca.issue("zkcoord", 401)
	port, err := zkserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "serve", "--plaintext", "--no-auth", "--listen", addr, "--zk", zks.SecureAddr(),
		"--zk-tls-ca", filepath.Join(ca.dir, "ca.pem"), "--zk-tls-cert", clientCert, "--zk-tls-key", clientKey)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up, scanned := make(chan struct{}), make(chan struct{})
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-scanned // before Wait closes the pipe, and before the test ends
		_ = cmd.Wait()
	}()
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log(sc.Text())
			if strings.Contains(sc.Text(), "zkcoord serving") {
				close(up)
			}
		}
	}()
	select {
	case <-up:
	case <-ctx.Done():
		t.Fatal("not serving over ZooKeeper TLS")
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := pb.NewLeaseServiceClient(cc).Grant(ctx, &pb.GrantRequest{Ttl: durationpb.New(time.Minute)}); err != nil {
		t.Fatalf("Grant through a gateway on ZooKeeper's secure port: %v", err)
	}
}
