package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/registry"
	"github.com/zkcoord/zkcoord/internal/testenv"
	"github.com/zkcoord/zkcoord/internal/zkx"
	"github.com/zkcoord/zkcoord/server"
)

// TestBadRegistryOptions: a gateway given registry options it cannot work
// with is refused at construction, not left to panic later.
func TestBadRegistryOptions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := zkx.Dial(ctx, testenv.ZooKeeper(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	g, err := server.New(ctx, sess, server.WithRoot(fmt.Sprintf("/%s-%d", name(t), time.Now().UnixNano())),
		server.WithRegistryOptions(registry.WithHistory(0)))
	if err == nil {
		g.Close()
		t.Fatal("New accepted a history of no event")
	}
	t.Log(err)
}
