// Command ready-or-not mirrors readyornot.php, the eighth example of the
// "ZooKeeper for PHP" talk: wait until there are sufficient resources to run
// a workflow, a barrier built on a watch of a node that does not exist yet.
//
// It shows both forms the gateway serves:
//
//   - AwaitGroup waits until a registry group has -min members; the run
//     registers them one by one while it waits;
//   - AwaitBarrier: -parties participants, each with a session of its own,
//     arrive one by one; the last arrival releases them all at once, and
//     they leave the barrier so its name can be used again.
//
// With `make run` serving in another terminal:
//
//	go run ./examples/ready-or-not -addr localhost:7070 -group workers -min 3 -barrier start -parties 3
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/examples/internal/example"
)

func main() {
	addr := example.AddrFlag()
	group := flag.String("group", "workers", "group that must have -min members")
	min := flag.Int("min", 3, "members the workflow needs")
	barrier := flag.String("barrier", "start", "barrier name")
	parties := flag.Int("parties", 3, "participants the barrier waits for")
	flag.Parse()
	log.SetFlags(0)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(ctx, *addr)
	example.Check(err)
	defer c.Close()

	// AwaitGroup: wait until the group has enough members.
	s, err := c.NewSession(ctx, client.WithTTL(5*time.Second))
	example.Check(err)
	defer s.Close(context.Background())
	counts := make(chan int)
	done := make(chan error, 1)
	go func() {
		done <- c.AwaitGroup(ctx, *group, *min, client.WithProgress(func(have, want int) {
			fmt.Printf("group %s: %d of %d members\n", *group, have, want)
			select {
			case counts <- have:
			case <-ctx.Done():
			}
		}))
	}()
	for waiting := true; waiting; {
		select {
		case have := <-counts:
			if have < *min {
				id := fmt.Sprintf("w-%d", have+1)
				fmt.Printf("registering %s\n", id)
				_, err := s.Register(ctx, *group, id, "10.0.1.1:9000")
				example.Check(err)
			}
		case err := <-done:
			example.Check(err)
			waiting = false
		}
	}
	fmt.Println("enough resources: the workflow starts")

	// AwaitBarrier: participants arrive one by one; the last releases all.
	var wg sync.WaitGroup
	for i := 1; i <= *parties; i++ {
		id := fmt.Sprintf("p-%d", i)
		ps, err := c.NewSession(ctx, client.WithTTL(5*time.Second))
		example.Check(err)
		defer ps.Close(context.Background())
		arrived := make(chan struct{})
		var once sync.Once
		wg.Go(func() {
			_, err := ps.AwaitBarrier(ctx, *barrier, *parties, client.WithParticipantID(id),
				client.WithProgress(func(have, want int) {
					fmt.Printf("%s: barrier %s has %d of %d\n", id, *barrier, have, want)
					once.Do(func() { close(arrived) })
				}))
			example.Check(err)
			fmt.Printf("%s: released\n", id)
			released, err := ps.LeaveBarrier(ctx, *barrier, id)
			example.Check(err)
			fmt.Printf("%s: left (barrier had released: %v)\n", id, released)
		})
		<-arrived // the next participant arrives after this one
	}
	wg.Wait()
}
