package etcdserver

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestStartWriteRead starts a private etcd, writes a key under a lease and
// reads it back (linearizable and serializable), checks that fsync was
// not turned off, and that Stop ends the process and removes its data.
func TestStartWriteRead(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	if err := CheckInstalled(); err != nil {
		t.Skipf("%v (scripts/deps.sh test installs it)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs bytes.Buffer
	s, err := Start(ctx, WithLogs(&logs))
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = s.Stop()
		}
	}()
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(s.Pid()) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(cmdline, []byte("unsafe-no-fsync")) {
		t.Errorf("etcd runs without fsync: %q", cmdline)
	}
	if !bytes.Contains(cmdline, []byte(s.Dir())) {
		t.Errorf("etcd's command line %q does not name its own directory %s", cmdline, s.Dir())
	}

	c, err := clientv3.New(clientv3.Config{Endpoints: []string{s.URL()}, DialTimeout: 5 * time.Second, Context: ctx})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, err := c.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	put, err := c.Put(ctx, "/svc/a", "10.0.0.1:80", clientv3.WithLease(l.ID))
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]clientv3.OpOption{nil, {clientv3.WithSerializable()}} {
		g, err := c.Get(ctx, "/svc/", append(opts, clientv3.WithPrefix())...)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "10.0.0.1:80" || g.Kvs[0].Lease != int64(l.ID) ||
			g.Kvs[0].ModRevision != put.Header.Revision {
			t.Errorf("get %v: %v, want the put at revision %d under lease %x", opts, g.Kvs, put.Header.Revision, l.ID)
		}
	}
	if _, err := c.Revoke(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if g, err := c.Get(ctx, "/svc/a"); err != nil || len(g.Kvs) != 0 {
		t.Errorf("after revoking its lease: %v, %v; want no key", g, err)
	}
	if _, err := os.Stat(s.Dir() + "/data/member/wal"); err != nil {
		t.Errorf("no write-ahead log in its data directory: %v", err)
	}

	c.Close()
	stopped = true
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	if _, err := os.Stat(s.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory %s left after Stop: %v", s.Dir(), err)
	}
}

func TestNotInstalled(t *testing.T) {
	_, err := Start(context.Background(), WithBinary("/nonexistent/etcd"))
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install -y etcd-server") {
		t.Fatalf("Start with no binary: %v, want ErrNotInstalled naming the package", err)
	}
}

// TestStartHonoursContext: a cancelled context ends the start with its
// error and no server.
func TestStartHonoursContext(t *testing.T) {
	if err := CheckInstalled(); err != nil {
		t.Skipf("%v (scripts/deps.sh test installs it)", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := Start(ctx)
	if !errors.Is(err, context.Canceled) || s != nil {
		t.Fatalf("Start with a cancelled context: %v, %v; want context.Canceled", s, err)
	}
}
