package zkserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// TestForceSync: WithForceSync(false) starts a ZooKeeper that does not
// flush its log on a write, and WithForceSync(true) one that does, as its
// own fsync counter (mntr's zk_cnt_fsynctime, counted only when it
// flushes) shows after a write. ZooKeeper reads the setting as
// "forceSync=no" or anything else (on): "false" had left it on.
func TestForceSync(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("forceSync=", on), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := Start(ctx, WithForceSync(on))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Stop()
			c, _, err := zk.Connect([]string{s.Addr()}, 10*time.Second, zk.WithLogInfo(false))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i := range 3 {
				if _, err := c.Create(fmt.Sprint("/w", i), nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
					t.Fatal(err)
				}
			}
			m, err := Mntr(ctx, s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			n, ok := m["zk_cnt_fsynctime"]
			if !ok {
				t.Fatalf("no zk_cnt_fsynctime in mntr: %v", m)
			}
			switch {
			case on && n == 0:
				t.Fatalf("forceSync on: no fsync after 3 writes")
			case !on && n != 0:
				t.Fatalf("forceSync off: %d fsyncs after 3 writes", n)
			}
			t.Logf("fsyncs after 3 writes: %d", n)
		})
	}
}
