// Package tlsx builds the gateway's TLS configurations from PEM files: the
// server's certificate and key, reloaded when the files change, and an
// optional CA whose certificates clients must present (mutual TLS).
// Replicas reach each other with the same certificate as a client one.
package tlsx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Files names the PEM files of a TLS setup.
type Files struct {
	Cert, Key string // the server's certificate chain and private key
	// ClientCA, when set, is the CA bundle client certificates must chain
	// to: clients without a valid certificate are refused (mutual TLS).
	// Replicas also verify each other's server certificates against it.
	ClientCA string
}

// Enabled reports whether any file is named.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.ClientCA != "" }

// Check reports a configuration that cannot work, in words an operator can
// act on.
func (f Files) Check() error {
	switch {
	case f.Cert == "" && f.Key == "" && f.ClientCA != "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	case f.Cert == "" || f.Key == "":
		return errors.New("--tls-cert and --tls-key go together")
	}
	return nil
}

// keyPair holds the certificate, reloaded when its files change.
type keyPair struct {
	f Files

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time // of the newer of the two files when last loaded
	checked time.Time
}

// reloadEvery bounds how often the files are checked for changes.
const reloadEvery = time.Second

func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cert != nil && time.Since(k.checked) < reloadEvery {
		return k.cert, nil
	}
	k.checked = time.Now()
	mt, err := newest(k.f.Cert, k.f.Key)
	if err != nil {
		if k.cert != nil {
			return k.cert, nil // keep serving the last good pair
		}
		return nil, err
	}
	if k.cert != nil && !mt.After(k.modTime) {
		return k.cert, nil
	}
	c, err := tls.LoadX509KeyPair(k.f.Cert, k.f.Key)
	if err != nil {
		if k.cert != nil {
			return k.cert, nil // a half-written pair: keep the last good one
		}
		return nil, fmt.Errorf("tls: load %s and %s: %w", k.f.Cert, k.f.Key, err)
	}
	k.cert, k.modTime = &c, mt
	return k.cert, nil
}

func newest(paths ...string) (time.Time, error) {
	var t time.Time
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return time.Time{}, err
		}
		if st.ModTime().After(t) {
			t = st.ModTime()
		}
	}
	return t, nil
}

// Configs are the server's TLS configuration and the one replicas dial
// each other with.
type Configs struct {
	Server, Peer *tls.Config
}

// Load reads the files once (so that a bad setup fails at start) and
// returns configurations that reload the certificate when its files change.
func Load(f Files) (Configs, error) {
	if err := f.Check(); err != nil {
		return Configs{}, err
	}
	kp := &keyPair{f: f}
	if _, err := kp.get(); err != nil {
		return Configs{}, err
	}
	srv := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
	}
	peer := &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() },
	}
	if f.ClientCA != "" {
		pem, err := os.ReadFile(f.ClientCA)
		if err != nil {
			return Configs{}, fmt.Errorf("tls: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return Configs{}, fmt.Errorf("tls: client CA %s holds no PEM certificate", f.ClientCA)
		}
		srv.ClientCAs, srv.ClientAuth = pool, tls.RequireAndVerifyClientCert
		peer.RootCAs = pool
	}
	return Configs{Server: srv, Peer: peer}, nil
}
