package server_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/testenv"
	"github.com/zkcoord/zkcoord/server"
)

// TestNewRefusesBadOptions: New returns the error of an option it cannot
// work with before it writes anything to ZooKeeper (before, a replica id
// with a "/" became part of znode paths, and a stream TTL outside a lease
// TTL's bounds reached every Campaign without a lease).
func TestNewRefusesBadOptions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess := testenv.Session(t)
	root := fmt.Sprintf("/options-%d", os.Getpid())
	for name, opt := range map[string]server.Option{
		"relative root":           server.WithRoot("zkcoord"),
		"root /":                  server.WithRoot("/"),
		"root ending in /":        server.WithRoot(root + "/"),
		"root with ..":            server.WithRoot(root + "/../x"),
		"replica id with /":       server.WithReplicaID("gw/a"),
		"replica id ..":           server.WithReplicaID(".."),
		"advertise without port":  server.WithAdvertise("gw-a"),
		"zero stream TTL":         server.WithStreamTTL(0),
		"stream TTL under 1s":     server.WithStreamTTL(500 * time.Millisecond),
		"nil logger":              server.WithLogger(nil),
		"negative stream workers": server.WithStreamWorkers(-1),
		"too many stream workers": server.WithStreamWorkers(server.MaxStreamWorkers + 1),
	} {
		t.Run(name, func(t *testing.T) {
			g, err := server.New(ctx, sess, server.WithRoot(root), opt)
			if err == nil {
				g.Close()
				t.Fatal("New accepted the option")
			}
			t.Log(err)
			if ok, _, err := sess.Conn().Exists(root); err != nil || ok {
				t.Fatalf("%s exists (%v) after a refused New", root, err)
			}
		})
	}
}
