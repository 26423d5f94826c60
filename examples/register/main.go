// Command register mirrors register.php, the first example of the
// "ZooKeeper for PHP" talk: it registers a node with a value, for DNS-like
// service discovery. The member is persistent: it stays until it is
// deregistered (-deregister), whoever registered it and whatever happens to
// that process.
//
// With `make run` serving in another terminal:
//
//	go run ./examples/register -addr localhost:7070 -group web -id w1 -value 10.0.0.1:80
//	go run ./examples/lookup -group web            # finds it
//	go run ./examples/register -group web -id w1 -deregister
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/examples/internal/example"
)

func main() {
	addr := example.AddrFlag()
	group := flag.String("group", "web", "group to register in")
	id := flag.String("id", "w1", "member ID")
	value := flag.String("value", "10.0.0.1:80", "member value, an address say")
	deregister := flag.Bool("deregister", false, "remove the member instead of registering it")
	flag.Parse()
	log.SetFlags(0)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(ctx, *addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if *deregister {
		if err := c.Deregister(ctx, *group, *id, ""); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("deregistered %s/%s\n", *group, *id)
		return
	}

	m, err := c.RegisterPersistent(ctx, *group, *id, *value)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("registered %s/%s = %s (persistent: %v) at revision %d\n",
		m.GetGroup(), m.GetId(), m.GetValue(), m.GetPersistent(), m.GetModRevision())

	// Registering the same thing again is idempotent: no write, same revision.
	again, err := c.RegisterPersistent(ctx, *group, *id, *value)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("registered again: revision %d (unchanged: %v)\n",
		again.GetModRevision(), again.GetModRevision() == m.GetModRevision())
	fmt.Println("the member stays until deregistered: run with -deregister to remove it")
}
