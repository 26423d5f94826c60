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
	"strings"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/examples/internal/example"
)

func main() {
	addr := example.AddrFlag()
	group := flag.String("group", "backend", "group to change")
	add := flag.String("members", "w1,w2,w3", "comma-separated member IDs to add")
	remove := flag.String("remove", "w2", "comma-separated member IDs to remove again")
	flag.Parse()
	log.SetFlags(0)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := client.New(ctx, *addr)
	example.Check(err)
	defer c.Close()
	s, err := c.NewSession(ctx, client.WithTTL(5*time.Second))
	example.Check(err)

	ids := strings.Split(*add, ",")
	for i, id := range ids {
		m, err := s.Register(ctx, *group, id, fmt.Sprintf("10.0.0.%d:80", i+1))
		example.Check(err)
		fmt.Printf("added %s = %s at revision %d\n", m.GetId(), m.GetValue(), m.GetModRevision())
	}
	list(ctx, c, *group)

	for _, id := range strings.Split(*remove, ",") {
		if id == "" {
			continue
		}
		example.Check(s.Deregister(ctx, *group, id))
		fmt.Printf("removed %s\n", id)
	}
	list(ctx, c, *group)

	// Another owner can neither take a member's ID nor remove the member.
	other, err := c.NewSession(ctx, client.WithTTL(5*time.Second))
	example.Check(err)
	_, err = other.Register(ctx, *group, ids[0], "10.9.9.9:80")
	fmt.Printf("another session registering %s: %s\n", ids[0], outcome(err))
	err = c.Deregister(ctx, *group, ids[0], other.Lease())
	fmt.Printf("another session removing %s: %s\n", ids[0], outcome(err))
	example.Check(other.Close(ctx))

	// Closing the session revokes its lease: its remaining members go at once.
	example.Check(s.Close(ctx))
	fmt.Println("session closed")
	list(ctx, c, *group)
}

// list prints the group's members as of now.
func list(ctx context.Context, c *client.Client, group string) {
	members, rev, err := c.Lookup(ctx, group, client.Linearizable())
	example.Check(err)
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
