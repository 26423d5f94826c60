package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/testing/proxy"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// backgroundAt is background against the gateway at endpoint.
func backgroundAt(t *testing.T, endpoint string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan int, 1)}
	go func() { r.done <- execute(ctx, nil, append(args, "--endpoints", endpoint), &r.out, &r.err) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// TestStreamsResume: watch, observe and lease keepalive --forever run
// through a proxy that is cut (every connection closed, new ones refused)
// and restored. Each says on stderr that its stream broke, opens it again
// once the proxy is back, and goes on: the watch prints the change made
// while it was cut and the one after, with no second snapshot; observe
// prints the new leader once; keepalive renews again. None exits.
func TestStreamsResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	px, err := proxy.New(testenv.Gateway(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	c, err := client.New(ctx, testenv.Gateway(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	if _, err := a.Register(ctx, "cli-resume", "m1", "v1"); err != nil {
		t.Fatal(err)
	}
	lead, err := a.Campaign(ctx, "cli-resume-el", "host-a")
	if err != nil {
		t.Fatal(err)
	}

	w := backgroundAt(t, px.Addr(), "watch", "cli-resume")
	o := backgroundAt(t, px.Addr(), "observe", "cli-resume-el")
	k := backgroundAt(t, px.Addr(), "lease", "keepalive", b.Lease(), "--forever")
	waitFor(t, 30*time.Second, "the three streams deliver", func() bool {
		return strings.Contains(w.out.String(), "m1") && strings.Contains(o.out.String(), "host-a") &&
			strings.Contains(k.out.String(), b.Lease())
	})
	renewals := strings.Count(k.out.String(), "\n")

	px.Cut()
	for _, r := range []*running{w, o, k} {
		waitFor(t, 30*time.Second, "stream broke, said on stderr", func() bool { return strings.Contains(r.err.String(), "stream broke") })
	}
	if _, err := a.Register(ctx, "cli-resume", "m2", "v2"); err != nil { // while the watch is cut off
		t.Fatal(err)
	}
	if err := lead.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	px.Restore()
	if _, err := b.Campaign(ctx, "cli-resume-el", "host-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register(ctx, "cli-resume", "m3", "v3"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("watch: %s\n%s\nobserve: %s\n%s\nkeepalive: %s\n%s", w.out.String(), w.err.String(), o.out.String(), o.err.String(), k.out.String(), k.err.String())
		}
	}()
	waitFor(t, 30*time.Second, "watch prints m2 and m3 after the cut", func() bool {
		return strings.Contains(w.out.String(), "joined  m2") && strings.Contains(w.out.String(), "joined  m3")
	})
	waitFor(t, 30*time.Second, "observe prints host-b", func() bool { return strings.Contains(o.out.String(), "host-b") })
	waitFor(t, 30*time.Second, "keepalive renews after the cut", func() bool { return strings.Count(k.out.String(), "\n") > renewals })

	if n := strings.Count(w.out.String(), "snapshot"); n != 1 {
		t.Errorf("watch printed %d snapshots; want 1 (resumed from its revision):\n%s", n, w.out.String())
	}
	if n := strings.Count(o.out.String(), "host-a"); n != 1 {
		t.Errorf("observe printed host-a %d times; want once:\n%s", n, o.out.String())
	}
	for name, r := range map[string]*running{"watch": w, "observe": o, "keepalive": k} {
		select {
		case code := <-r.done:
			r.done <- code
			t.Errorf("%s exited %d; stderr %q", name, code, r.err.String())
		default:
		}
	}
}
