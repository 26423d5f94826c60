// Command watch-group mirrors lookup2.php, the fourth example of the
// "ZooKeeper for PHP" talk: watch a group, rather than one node, for
// changes. ZooKeeper's watches fire once and must be re-armed, so a plain
// client can miss changes; the gateway re-arms them from a change journal
// and streams every change with its revision.
//
// The default run plays both roles: it starts the watch, then registers,
// updates and deregisters members itself, prints each event it sees, and
// exits. -follow only watches, until Ctrl-C; change the group meanwhile
// from other terminals.
//
// With `make run` serving in another terminal:
//
//	go run ./examples/watch-group -addr localhost:7070 -group web
//	go run ./examples/watch-group -addr localhost:7070 -group web -follow
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

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/examples/internal/example"
)

func main() {
	addr := example.AddrFlag()
	group := flag.String("group", "web", "group to watch")
	follow := flag.Bool("follow", false, "only watch, until interrupted")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if !*follow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
	}
	c, err := client.New(ctx, *addr)
	example.Check(err)
	defer c.Close()

	states := c.WatchGroup(ctx, *group)
	if *follow {
		for st := range states {
			show(st)
		}
		return
	}

	show(next(ctx, states)) // the snapshot comes first
	s, err := c.NewSession(ctx, client.WithTTL(5*time.Second))
	example.Check(err)
	changes := []func() error{
		func() error { _, err := s.Register(ctx, *group, "w-a", "10.0.0.1:80"); return err },
		func() error { _, err := s.Register(ctx, *group, "w-b", "10.0.0.2:80"); return err },
		func() error { _, err := s.Register(ctx, *group, "w-a", "10.0.0.1:8080"); return err },
		func() error { return s.Deregister(ctx, *group, "w-a") },
		func() error { return s.Close(ctx) }, // revokes the lease: w-b leaves
	}
	for _, change := range changes {
		example.Check(change())
		show(next(ctx, states)) // each change is one event
	}
}

// next returns the next state of the watch.
func next(ctx context.Context, states <-chan client.GroupState) client.GroupState {
	st, ok := <-states
	if !ok {
		log.Fatal("watch ended: ", context.Cause(ctx))
	}
	return st
}

// show prints a state of the group: the events that made it (several when
// one transaction changed several members, as a lease's end does), and the
// members.
func show(st client.GroupState) {
	example.Check(st.Err)
	ids := []string{}
	for _, m := range st.List() {
		ids = append(ids, m.GetId()+"="+m.GetValue())
	}
	var events []string
	for _, ev := range st.Events {
		e := strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "TYPE_"))
		if m := ev.GetMember(); m != nil {
			e += " " + m.GetId()
		}
		events = append(events, e)
	}
	what := strings.Join(events, ", ")
	if st.Resync {
		what += " (resync)"
	}
	fmt.Printf("revision %d: %s; members %v\n", st.Revision, what, ids)
}
