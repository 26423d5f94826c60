// Command talk-to-ensemble mirrors talktoensemble.php, the ninth example of
// the "ZooKeeper for PHP" talk: connect to an ensemble. Here the gateway is
// the one that connects: it is started with the ensemble's full connect
// string, several hosts and an optional chroot,
//
//	zkcoord serve --listen :7070 --zk zk1:2181,zk2:2181,zk3:2181/myapp --plaintext --no-auth
//
// and moves to another server when one fails, keeping its session. This
// program asks the gateway which ZooKeeper server it is connected to
// (StatusService.GetStatus) and whether it is healthy (grpc.health.v1).
// -follow then watches the health until Ctrl-C: stop a ZooKeeper server to
// see the gateway move on.
//
// With `make run` serving in another terminal:
//
//	go run ./examples/talk-to-ensemble -addr localhost:7070
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zkcoord/zkcoord/examples/internal/example"
	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

func main() {
	addr := example.AddrFlag()
	follow := flag.Bool("follow", false, "watch the gateway's health until interrupted")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	example.Check(err)
	defer conn.Close()

	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := zkcoordv1.NewStatusServiceClient(conn).GetStatus(rctx, &zkcoordv1.GetStatusRequest{})
	example.Check(err)
	fmt.Printf("gateway %s, version %s\n", st.GetReplicaId(), st.GetVersion())
	fmt.Printf("ZooKeeper: %s to %s since %s\n", strings.TrimPrefix(st.GetState().String(), "CONNECTION_STATE_"),
		or(st.GetServer(), "no server"), st.GetStateSince().AsTime().Format(time.RFC3339))
	fmt.Printf("ensemble: %s, chroot %s, root %s\n", strings.Join(st.GetServers(), ","), or(st.GetChroot(), "(none)"), st.GetRoot())
	fmt.Printf("session %s, timeout %v, expirations %d\n", st.GetSessionId(), st.GetSessionTimeout().AsDuration(), st.GetSessionExpirations())
	fmt.Printf("holding %d lease(s), watching %d group(s)\n", st.GetLeases(), st.GetWatchedGroups())

	health := healthpb.NewHealthClient(conn)
	for _, service := range []string{"", "zkcoord.v1.RegistryService"} {
		h, err := health.Check(rctx, &healthpb.HealthCheckRequest{Service: service})
		example.Check(err)
		fmt.Printf("health %s: %v\n", or(service, "(server)"), h.GetStatus())
	}
	if !*follow {
		return
	}

	w, err := health.Watch(ctx, &healthpb.HealthCheckRequest{})
	example.Check(err)
	for {
		h, err := w.Recv()
		if ctx.Err() != nil {
			return
		}
		example.Check(err)
		fmt.Printf("%s health: %v\n", time.Now().Format(time.TimeOnly), h.GetStatus())
	}
}

// or returns s, or def when s is empty.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
