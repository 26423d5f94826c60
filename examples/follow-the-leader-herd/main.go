// Command follow-the-leader-herd mirrors followtheleader2.php, the seventh
// example of the "ZooKeeper for PHP" talk: leader election with herd
// avoidance. Candidates queue as sequential znodes and each watches only
// its predecessor, so a leader stepping down wakes exactly one waiter. (A
// waiter hears only of its predecessor: the position it was told is an
// upper bound until that one moves.)
//
// Each leader gets a fencing token that strictly increases over successive
// leaders. The run starts -candidates candidates one after another (each in
// a session of its own), shows their places in the queue, and once the
// queue stands lets each lead for -lead and hand over by resigning, with every leader writing to a
// resource that fences by token; at the end a deposed leader's late write
// is refused.
//
// With `make run` serving in another terminal:
//
//	go run ./examples/follow-the-leader-herd -addr localhost:7070 -election jobs -candidates 3
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
	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// fenced is a resource that accepts a write only with a token at least as
// high as the highest it has seen.
type fenced struct {
	mu      sync.Mutex
	highest int64
}

func (f *fenced) write(token int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if token < f.highest {
		return fmt.Errorf("refused: token %d is below %d", token, f.highest)
	}
	f.highest = token
	return nil
}

func main() {
	addr := example.AddrFlag()
	election := flag.String("election", "jobs", "election to campaign in")
	id := flag.String("id", "worker", "prefix of the candidates' IDs")
	n := flag.Int("candidates", 3, "how many candidates queue")
	lead := flag.Duration("lead", 200*time.Millisecond, "how long each leader leads before handing over")
	flag.Parse()
	log.SetFlags(0)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(ctx, *addr)
	example.Check(err)
	defer c.Close()

	var (
		res    fenced
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens []int64               // in the order the terms began
		formed = make(chan struct{}) // closed once every candidate has its place
	)
	for i := 1; i <= *n; i++ {
		name := fmt.Sprintf("%s-%d", *id, i)
		s, err := c.NewSession(ctx, client.WithTTL(5*time.Second))
		example.Check(err)
		defer s.Close(context.Background())
		queued := make(chan struct{}) // closed once the candidate is in the queue
		var once sync.Once
		wg.Go(func() {
			l, err := s.Campaign(ctx, *election, name, client.WithOnQueued(func(ahead int, leader *zkcoordv1.LeaderInfo) {
				fmt.Printf("%s: queued, %d ahead, leader %s\n", name, ahead, leader.GetValue())
				once.Do(func() { close(queued) })
			}))
			example.Check(err)
			mu.Lock()
			tokens = append(tokens, l.Token())
			mu.Unlock()
			fmt.Printf("%s: elected, token %d\n", name, l.Token())
			once.Do(func() { close(queued) })
			example.Check(res.write(l.Token()))
			fmt.Printf("%s: wrote with token %d\n", name, l.Token())
			<-formed          // lead once the whole queue stands, so the run shows it
			time.Sleep(*lead) // the leader's work
			fmt.Printf("%s: resigning\n", name)
			example.Check(l.Resign(ctx))
		})
		<-queued // start the next candidate once this one has its place
	}
	close(formed)
	wg.Wait()

	fmt.Printf("tokens in order of election: %v\n", tokens)
	if len(tokens) > 1 {
		fmt.Printf("late write from %s-1 with token %d: %v\n", *id, tokens[0], res.write(tokens[0]))
	}
}
