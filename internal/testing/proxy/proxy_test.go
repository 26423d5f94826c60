package proxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/proxy"
)

// echo serves lines back to their sender until the test ends.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // ends when the proxy closes its side
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

type line struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *line {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &line{c, bufio.NewReader(c)}
}

func (l *line) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(l.c, s+"\n"); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// recv reads a line, or returns the read's error after d.
func (l *line) recv(d time.Duration) (string, error) {
	_ = l.c.SetReadDeadline(time.Now().Add(d))
	s, err := l.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return s[:len(s)-1], nil
}

func (l *line) roundTrip(t *testing.T, s string) {
	t.Helper()
	l.send(t, s)
	if got, err := l.recv(5 * time.Second); err != nil || got != s {
		t.Fatalf("echo of %q = %q, %v", s, got, err)
	}
}

// TestProxyStall: a stall holds bytes both ways on open connections, new
// connections included, and Restore delivers them in order.
func TestProxyStall(t *testing.T) {
	p, err := proxy.New(echo(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a := dial(t, p.Addr())
	a.roundTrip(t, "before")

	p.Stall()
	a.send(t, "held-1")
	a.send(t, "held-2")
	b := dial(t, p.Addr()) // accepted while stalled, stalled too
	b.send(t, "held-b")
	// Nothing comes back, and nothing is closed (a timeout, not EOF).
	for _, l := range []*line{a, b} {
		if got, err := l.recv(300 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read while stalled = %q, %v; want a timeout", got, err)
		}
	}

	p.Restore()
	for _, want := range []string{"held-1", "held-2"} {
		if got, err := a.recv(5 * time.Second); err != nil || got != want {
			t.Fatalf("after restore: %q, %v; want %q", got, err, want)
		}
	}
	if got, err := b.recv(5 * time.Second); err != nil || got != "held-b" {
		t.Fatalf("new connection after restore: %q, %v", got, err)
	}
	a.roundTrip(t, "after")
}

// TestProxyCut: a cut closes connections and refuses new ones until
// Restore; a cut during a stall drops what was held.
func TestProxyCut(t *testing.T) {
	p, err := proxy.New(echo(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a := dial(t, p.Addr())
	a.roundTrip(t, "before")
	p.Stall()
	a.send(t, "lost")
	p.Cut()
	if got, err := a.recv(5 * time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after cut = %q, %v; want the connection closed", got, err)
	}
	b := dial(t, p.Addr()) // the listener accepts, the proxy closes at once
	if got, err := b.recv(5 * time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection while cut: %q, %v; want it closed", got, err)
	}
	p.Restore()
	dial(t, p.Addr()).roundTrip(t, "after")
}
