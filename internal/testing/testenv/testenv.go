// Package testenv runs a zkcoord gateway on a real ZooKeeper for tests:
// Main starts both once per test binary, Gateway returns the gateway's
// address, Conn a client connection to it.
package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/zkcoord/zkcoord/internal/dnsview"
	"github.com/zkcoord/zkcoord/internal/testing/zktest"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

// StreamTTL is the implicit stream lease TTL of the test gateway.
const StreamTTL = 2 * time.Second

var addr, httpURL string

// Main starts ZooKeeper and a gateway, runs the tests, stops both and checks
// for leaked goroutines. Use it as TestMain's body: testenv.Main(m).
func Main(m *testing.M) {
	zktest.MainWith(m, func(zkAddr string) (func(), error) {
		a, h, stop, err := startGateway(zkAddr, server.WithRoot(fmt.Sprintf("/testenv-%d", os.Getpid())))
		addr, httpURL = a, h
		return func() {
			if err := stop(); err != nil {
				fmt.Fprintln(os.Stderr, "testenv: serve:", err)
			}
		}, err
	})
}

// startGateway serves a gateway with its own ZooKeeper session on free
// loopback ports (gRPC, and HTTP at httpURL); stop drains it and closes the
// session.
func startGateway(zkAddr string, opt ...server.Option) (addr, httpURL string, stop func() error, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := zkx.Dial(ctx, zkAddr, zkx.WithSessionTimeout(4*time.Second))
	if err != nil {
		return "", "", nil, err
	}
	addr, httpURL, _, stopServe, err := serve(ctx, sess, nil, append([]server.Option{server.WithStreamTTL(StreamTTL)}, opt...)...)
	if err != nil {
		sess.Close()
		return "", "", nil, err
	}
	return addr, httpURL, func() error {
		err := stopServe()
		sess.Close()
		return err
	}, nil
}

// dnsConfig is where and how a test gateway serves DNS.
type dnsConfig struct {
	addr string // host:port, UDP and TCP
	opts []dnsview.Option
}

// serve serves a gateway on sess on free loopback ports, gRPC at addr and
// HTTP at httpURL, and DNS at dnsAddr when d is set; stop drains it and
// closes the gateway, not the session.
func serve(ctx context.Context, sess *zkx.Session, d *dnsConfig, opt ...server.Option) (addr, httpURL, dnsAddr string, stop func() error, err error) {
	var ls server.Listeners
	closeAll := func() {
		for _, c := range []io.Closer{ls.GRPC, ls.HTTP, ls.DNSPacket, ls.DNSStream} {
			if c != nil {
				c.Close()
			}
		}
	}
	if ls.GRPC, err = net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ls.HTTP, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err == nil && d != nil {
		ls.DNS = d.opts
		if ls.DNSPacket, ls.DNSStream, err = dnsview.Listen(d.addr); err == nil {
			dnsAddr = ls.DNSPacket.LocalAddr().String()
		}
	}
	if err != nil {
		closeAll()
		return "", "", "", nil, err
	}
	g, err := server.New(ctx, sess, append([]server.Option{server.WithAdvertise(ls.GRPC.Addr().String())}, opt...)...)
	if err != nil {
		closeAll()
		return "", "", "", nil, err
	}
	sctx, stopServe := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(sctx, g, ls, 5*time.Second) }()
	return ls.GRPC.Addr().String(), "http://" + ls.HTTP.Addr().String(), dnsAddr, func() error {
		stopServe()
		err := <-done
		g.Close()
		return err
	}, nil
}

// Serve serves a gateway on a session the test dialled (its own ZooKeeper,
// credentials, chroot) and returns a client connection to it; both are
// stopped at cleanup, the session is left to the test.
func Serve(tb testing.TB, sess *zkx.Session, opt ...server.Option) *grpc.ClientConn {
	tb.Helper()
	cc, err := grpc.NewClient(ServeAddr(tb, sess, opt...), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return cc
}

// ServeAddr is Serve returning the gateway's address, for tests that dial
// it with their own options.
func ServeAddr(tb testing.TB, sess *zkx.Session, opt ...server.Option) string {
	tb.Helper()
	addr, _ := ServeBoth(tb, sess, opt...)
	return addr
}

// ServeBoth is ServeAddr returning also the base URL of the gateway's HTTP
// face ("http://127.0.0.1:port").
func ServeBoth(tb testing.TB, sess *zkx.Session, opt ...server.Option) (addr, httpURL string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, httpURL, _, stop, err := serve(ctx, sess, nil, opt...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("testenv: serve: %v", err)
		}
	})
	return addr, httpURL
}

// DNSGateway is a gateway serving the DNS view of its registry too.
type DNSGateway struct {
	Addr string // gRPC
	HTTP string // base URL of the HTTP face
	DNS  string // host:port of the DNS view, over UDP and TCP
}

// ServeDNS serves a gateway on sess (as ServeBoth) with the DNS view on
// dnsAddr (host:port; port 0 for a free one), configured by dnsOpts;
// stopped at cleanup.
func ServeDNS(tb testing.TB, sess *zkx.Session, dnsAddr string, dnsOpts []dnsview.Option, opt ...server.Option) DNSGateway {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, httpURL, dnsAddr, stop, err := serve(ctx, sess, &dnsConfig{addr: dnsAddr, opts: dnsOpts}, opt...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("testenv: serve: %v", err)
		}
	})
	return DNSGateway{Addr: addr, HTTP: httpURL, DNS: dnsAddr}
}

// HTTP returns the base URL of the test gateway's HTTP face.
func HTTP(tb testing.TB) string {
	tb.Helper()
	if httpURL == "" {
		tb.Fatal("testenv: no gateway; call testenv.Main(m) from TestMain")
	}
	return httpURL
}

// Gateway returns the address of the test gateway.
func Gateway(tb testing.TB) string {
	tb.Helper()
	if addr == "" {
		tb.Fatal("testenv: no gateway; call testenv.Main(m) from TestMain")
	}
	return addr
}

// Conn returns a client connection to the test gateway, closed at cleanup.
func Conn(tb testing.TB) *grpc.ClientConn {
	tb.Helper()
	cc, err := grpc.NewClient(Gateway(tb), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return cc
}

// ZooKeeper returns the address of the test ZooKeeper.
func ZooKeeper(tb testing.TB) string { return zktest.Addr(tb) }

// Session dials a session of its own on the test ZooKeeper, closed at
// cleanup.
func Session(tb testing.TB, opt ...zkx.Option) *zkx.Session {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := zkx.Dial(ctx, ZooKeeper(tb), opt...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sess.Close)
	return sess
}

// Replica is an extra gateway replica on the test ZooKeeper, for tests of
// several replicas sharing a root.
type Replica struct {
	Addr string
	stop func()
}

// StartReplica starts a replica with its own ZooKeeper session serving root
// on a free port; it is drained and stopped at cleanup, or by Stop.
func StartReplica(tb testing.TB, root, id string) *Replica {
	tb.Helper()
	return StartReplicaVia(tb, zktest.Addr(tb), root, id)
}

// StartReplicaVia is StartReplica with the replica's ZooKeeper session
// dialled at zkAddr: a zktest.Proxy's address, for tests that stall or
// cut one replica's ZooKeeper (its session timeout is 4s).
func StartReplicaVia(tb testing.TB, zkAddr, root, id string) *Replica {
	tb.Helper()
	addr, _, stop, err := startGateway(zkAddr, server.WithRoot(root), server.WithReplicaID(id))
	if err != nil {
		tb.Fatal(err)
	}
	var once sync.Once
	r := &Replica{Addr: addr}
	r.stop = func() {
		once.Do(func() {
			if err := stop(); err != nil {
				tb.Errorf("replica %s: %v", id, err)
			}
		})
	}
	tb.Cleanup(r.stop)
	return r
}

// Stop drains and stops the replica, as SIGTERM does.
func (r *Replica) Stop() { r.stop() }
