// Command register-ephemeral mirrors register2.php, the third example of the
// "ZooKeeper for PHP" talk: an EPHEMERAL registration, gone with its owner.
// A PHP request's ZooKeeper session would die with the request, so here the
// owner is a lease with a TTL. A one-shot client (a PHP request) registers
// with a TTL in one call and exits: the member lives until the TTL lapses,
// unless later calls renew the lease with KeepAlive. A long-lived client
// keeps a Session, whose goroutine renews the lease: its member stays until
// the session is closed or the process dies.
//
// The default run shows both and exits: the one-shot member expires, the
// session's stays until the session closes. With `make run` serving in
// another terminal:
//
//	go run ./examples/register-ephemeral -addr localhost:7070
//	go run ./examples/register-ephemeral -mode oneshot -ttl 30s   # then run lookup
//	go run ./examples/register-ephemeral -mode session            # until Ctrl-C
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/examples/internal/example"
	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

func main() {
	addr := example.AddrFlag()
	group := flag.String("group", "web", "group to register in")
	id := flag.String("id", "php-1", "member ID of the one-shot client")
	sessionID := flag.String("session-id", "daemon-1", "member ID of the long-lived client")
	value := flag.String("value", "10.0.0.2:80", "member value")
	ttl := flag.Duration("ttl", 2*time.Second, "lease TTL")
	mode := flag.String("mode", "both", "oneshot (register and exit), session (until interrupted), or both (demo, exits)")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := client.New(ctx, *addr)
	example.Check(err)
	defer c.Close()

	switch *mode {
	case "oneshot":
		m, lease, err := c.RegisterTTL(ctx, *group, *id, *value, *ttl)
		example.Check(err)
		fmt.Printf("one-shot: registered %s/%s = %s with a %v lease %s; exiting\n", *group, m.GetId(), m.GetValue(), *ttl, lease)
	case "session":
		s, err := c.NewSession(ctx, client.WithTTL(*ttl))
		example.Check(err)
		_, err = s.Register(ctx, *group, *sessionID, *value)
		example.Check(err)
		fmt.Printf("session: registered %s/%s, kept alive until Ctrl-C\n", *group, *sessionID)
		<-ctx.Done()
		example.Check(s.Close(context.Background()))
		fmt.Println("session: closed, lease revoked")
	case "both":
		ctx, cancel := context.WithTimeout(ctx, *ttl+15*time.Second)
		defer cancel()
		both(ctx, c, *group, *id, *sessionID, *value, *ttl)
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
}

// both registers a one-shot member and a session's member, sees the first
// expire, then closes the session.
func both(ctx context.Context, c *client.Client, group, id, sessionID, value string, ttl time.Duration) {
	states := c.WatchGroup(ctx, group) // to see the one-shot member go
	<-states                           // the snapshot comes first

	_, _, err := c.RegisterTTL(ctx, group, id, value, ttl)
	example.Check(err)
	registered := time.Now()
	fmt.Printf("one-shot: registered %s/%s with a %v lease, then exited\n", group, id, ttl)

	s, err := c.NewSession(ctx, client.WithTTL(ttl))
	example.Check(err)
	_, err = s.Register(ctx, group, sessionID, value)
	example.Check(err)
	fmt.Printf("session: registered %s/%s, its lease renewed every %v\n", group, sessionID, (ttl / 3).Round(time.Millisecond))

	for st := range states {
		example.Check(st.Err)
		if left(st, id) {
			fmt.Printf("one-shot: %s expired %.1fs after registering (ttl %v)\n", id, time.Since(registered).Seconds(), ttl)
			break
		}
	}
	example.Check(ctx.Err())
	printMembers(ctx, c, group, "after the one-shot lease lapsed")

	example.Check(s.Close(ctx))
	fmt.Println("session: closed, its lease revoked")
	printMembers(ctx, c, group, "after the session closed")
}

// left reports whether member id left the group in the revision of st.
func left(st client.GroupState, id string) bool {
	for _, ev := range st.Events {
		if ev.GetType() == zkcoordv1.WatchGroupResponse_TYPE_LEFT && ev.GetMember().GetId() == id {
			return true
		}
	}
	return false
}

// printMembers prints the IDs of the group's members as of now.
func printMembers(ctx context.Context, c *client.Client, group, when string) {
	members, rev, err := c.Lookup(ctx, group, client.Linearizable())
	example.Check(err)
	ids := []string{}
	for _, m := range members {
		ids = append(ids, m.GetId())
	}
	fmt.Printf("members %s: %v (revision %d)\n", when, ids, rev)
}
