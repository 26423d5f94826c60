package chaosrun_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/chaos"
)

// startCluster builds zkcoord and starts a three-node ensemble with three
// replicas (2 s ZooKeeper sessions), stopped at cleanup. The replicas' and
// ZooKeeper's logs are kept when the test fails, and the test says where.
func startCluster(ctx context.Context, t *testing.T) *chaos.Cluster {
	t.Helper()
	bin, err := chaos.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logs, err := os.MkdirTemp("", "zkcoord-"+t.Name()+"-logs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replica and ZooKeeper logs kept in %s", logs)
			return
		}
		_ = os.RemoveAll(logs)
	})
	c, err := chaos.StartCluster(ctx, chaos.Options{Replicas: 3, Bin: bin, SessionTimeout: 2 * time.Second, LogDir: logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}
