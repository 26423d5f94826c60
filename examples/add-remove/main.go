// Command add-remove mirrors register3.php, the fifth example of the
// "ZooKeeper for PHP" talk: add members to a group and remove them. Members
// added through a session belong to its lease: only that lease can remove
// them, another owner cannot take their IDs, and closing the session
// removes whatever is left in one transaction.
//
// With `make run` serving in another terminal:
//
//	go run ./examples/add-remove -addr localhost:7070 -group backend -members w1,w2,w3 -remove w2
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/zkcoord/zkcoord/client"
)

func main() {
	addr := flag.String("addr", envOr("ZKCOORD_ADDR", "localhost:7070"), "gateway address (env ZKCOORD_ADDR)")
	group := flag.String("group", "backend", "group to change")
	add := flag.String("members", "w1,w2,w3", "comma-separated member IDs to add")
	remove := flag.String("remove", "w2", "comma-separated member IDs to remove again")
	flag.Parse()
	log.SetFlags(0)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.New(ctx, *addr)
	check(err)
	defer c.Close()
	s, err := c.NewSession(ctx, client.WithTTL(5*time.Second))
	check(err)

	ids := strings.Split(*add, ",")
	for i, id := range ids {
		m, err := s.Register(ctx, *group, id, fmt.Sprintf("10.0.0.%d:80", i+1))
		check(err)
		fmt.Printf("added %s = %s at revision %d\n", m.GetId(), m.GetValue(), m.GetModRevision())
	}
	list(ctx, c, *group)

	for _, id := range strings.Split(*remove, ",") {
		if id == "" {
			continue
		}
		check(s.Deregister(ctx, *group, id))
		fmt.Printf("removed %s\n", id)
	}
	list(ctx, c, *group)

	// Another owner can neither take a member's ID nor remove the member.
	other, err := c.NewSession(ctx, client.WithTTL(5*time.Second))
	check(err)
	_, err = other.Register(ctx, *group, ids[0], "10.9.9.9:80")
	fmt.Printf("another session registering %s: %s\n", ids[0], outcome(err))
	err = c.Deregister(ctx, *group, ids[0], other.Lease())
	fmt.Printf("another session removing %s: %s\n", ids[0], outcome(err))
	check(other.Close(ctx))

	// Closing the session revokes its lease: its remaining members go at once.
	check(s.Close(ctx))
	fmt.Println("session closed")
	list(ctx, c, *group)
}

// list prints the group's members as of now.
func list(ctx context.Context, c *client.Client, group string) {
	members, rev, err := c.Lookup(ctx, group, client.Linearizable())
	check(err)
	ids := []string{}
	for _, m := range members {
		ids = append(ids, m.GetId())
	}
	fmt.Printf("group %s at revision %d: %v\n", group, rev, ids)
}

// outcome says whether a call was refused, and with which code.
func outcome(err error) string {
	if err == nil {
		return "accepted"
	}
	return fmt.Sprintf("refused with %v", client.Code(err))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// envOr returns the environment variable key, or def when it is empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
