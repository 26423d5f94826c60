package zkx_test

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkserver"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// TestTLSToZooKeeper: a session over ZooKeeper's secure client port works
// with the server's CA and a client certificate; without the certificate,
// with another CA, or in plaintext on that port, no session is made.
func TestTLSToZooKeeper(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own ZooKeeper")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	ca := zktest.NewCA(t, "zk CA")
	server, client := ca.Issue(t, "zookeeper", 2), ca.Issue(t, "zkcoord", 3)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	zks, err := zkserver.Start(ctx, zkserver.WithTLS(zkserver.TLS{
		KeyStore: write("keystore.pem", append(server.KeyPEM, server.CertPEM...)), TrustStore: write("ca.pem", ca.PEM), NeedClientAuth: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer zks.Stop()
	roots, clientPair := ca.Pool, client.Pair

	sess, err := zkx.Dial(ctx, zks.SecureAddr(), zkx.WithTLS(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientPair},
		MinVersion: tls.VersionTLS12}), zkx.WithLogger(zktest.Logger(t)))
	if err != nil {
		t.Fatalf("session over TLS: %v", err)
	}
	defer sess.Close()
	if _, err := sess.Conn().Create("/over-tls", []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if b, _, err := sess.Conn().Get("/over-tls"); err != nil || string(b) != "x" {
		t.Fatalf("read back over TLS: %q, %v", b, err)
	}

	other := zktest.NewCA(t, "other CA").Pool
	for name, opt := range map[string][]zkx.Option{
		"no client certificate": {zkx.WithTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})},
		"another CA":            {zkx.WithTLS(&tls.Config{RootCAs: other, Certificates: []tls.Certificate{clientPair}, MinVersion: tls.VersionTLS12})},
		"plaintext":             nil,
	} {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := zkx.Dial(dctx, zks.SecureAddr(), opt...)
		cancel()
		if err == nil {
			s.Close()
			t.Errorf("%s: a session was established on the secure port", name)
		}
	}
}
