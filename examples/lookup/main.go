// Command lookup mirrors lookup.php, the second example of the "ZooKeeper
// for PHP" talk: it looks up a group's members, or one member (-id), with
// the revision the answer reflects.
//
// By default the answer comes from the gateway's watch-maintained cache.
// -linearizable makes the gateway sync with the ZooKeeper leader first: the
// talk's warning about stale reads from a slow follower does not apply then.
//
// With `make run` serving in another terminal:
//
//	go run ./examples/register -addr localhost:7070 -group web -id w1
//	go run ./examples/lookup -addr localhost:7070 -group web
//	go run ./examples/lookup -addr localhost:7070 -group web -id w1 -linearizable
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/examples/internal/example"
)

func main() {
	addr := example.AddrFlag()
	group := flag.String("group", "web", "group to look up")
	id := flag.String("id", "", "one member to look up (empty: the whole group)")
	linearizable := flag.Bool("linearizable", false, "sync with the ZooKeeper leader first")
	flag.Parse()
	log.SetFlags(0)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(ctx, *addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	var opts []client.LookupOption
	if *id != "" {
		opts = append(opts, client.Member(*id))
	}
	consistency := "cached"
	if *linearizable {
		opts = append(opts, client.Linearizable())
		consistency = "linearizable"
	}
	members, rev, err := c.Lookup(ctx, *group, opts...)
	if errors.Is(err, client.ErrNotFound) {
		fmt.Printf("%s/%s: not found\n", *group, *id)
		os.Exit(1)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("group %s at revision %d (%s): %d member(s)\n", *group, rev, consistency, len(members))
	for _, m := range members {
		owner := "lease"
		if m.GetPersistent() {
			owner = "persistent"
		}
		fmt.Printf("  %s = %s (%s, created at revision %d)\n", m.GetId(), m.GetValue(), owner, m.GetCreateRevision())
	}
}
