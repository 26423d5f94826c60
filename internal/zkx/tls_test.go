package zkx_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkcoord/zkcoord/internal/zkserver"
	"github.com/zkcoord/zkcoord/internal/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
)

// testCA issues certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate for 127.0.0.1 (server and client use) as a
// tls.Certificate and as PEM: the PKCS#8 key, then the certificate.
func (ca *testCA) issue(t *testing.T, cn string) (tls.Certificate, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, append(keyPEM, certPEM...)
}

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
	ca := newTestCA(t, "zk CA")
	_, serverPEM := ca.issue(t, "zookeeper")
	clientPair, _ := ca.issue(t, "zkcoord")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	zks, err := zkserver.Start(ctx, zkserver.WithTLS(zkserver.TLS{
		KeyStore: write("keystore.pem", serverPEM), TrustStore: write("ca.pem", ca.pem), NeedClientAuth: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer zks.Stop()
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)

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

	other := x509.NewCertPool()
	other.AddCert(newTestCA(t, "other CA").cert)
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
