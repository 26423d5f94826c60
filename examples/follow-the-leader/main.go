// Command follow-the-leader mirrors followtheleader.php, the sixth example
// of the "ZooKeeper for PHP" talk: group leader election. Candidates
// campaign; one leads at a time, and everyone can follow who leads.
//
// The default run starts an observer and -candidates candidates, each with
// a session of its own; each leads for -lead, then resigns, and the next is
// elected. It exits when the last has resigned. -follow runs one candidate
// that, once elected, leads until Ctrl-C: start it in several terminals and
// stop the leader to see another take over.
//
// With `make run` serving in another terminal:
//
//	go run ./examples/follow-the-leader -addr localhost:7070 -election cron
//	go run ./examples/follow-the-leader -addr localhost:7070 -election cron -follow -id node-7
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/examples/internal/example"
	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

func main() {
	addr := example.AddrFlag()
	election := flag.String("election", "cron", "election to campaign in")
	id := flag.String("id", "node", "candidate ID (with -follow), else the prefix of the candidates' IDs")
	n := flag.Int("candidates", 2, "how many candidates to run")
	lead := flag.Duration("lead", 300*time.Millisecond, "how long each leader leads before resigning")
	follow := flag.Bool("follow", false, "run one candidate that leads until interrupted")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := client.New(ctx, *addr)
	example.Check(err)
	defer c.Close()

	if *follow {
		candidate(ctx, c, *election, *id, 0)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	events := c.Observe(ctx, *election)
	var wg sync.WaitGroup
	for i := 1; i <= *n; i++ {
		wg.Go(func() { candidate(ctx, c, *election, fmt.Sprintf("%s-%d", *id, i), *lead) })
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	// Follow the leader until every candidate has resigned and the observer
	// has seen that no one leads. Quick changes may coalesce into one event.
	var leader *zkcoordv1.LeaderInfo
	for done := false; !done || leader != nil; {
		select {
		case ev, ok := <-events:
			if !ok {
				log.Fatal("observation ended: ", context.Cause(ctx))
			}
			example.Check(ev.Err)
			if leader = ev.Leader; leader == nil {
				fmt.Println("observer: no leader")
			} else {
				fmt.Printf("observer: leader is %s (token %d)\n", leader.GetValue(), leader.GetFencingToken())
			}
		case <-finished:
			done, finished = true, nil
		}
	}
	fmt.Println("every candidate led and resigned; no one leads")
}

// candidate campaigns as id in a session of its own, leads for lead (until
// ctx ends when lead is 0), then resigns.
func candidate(ctx context.Context, c *client.Client, election, id string, lead time.Duration) {
	s, err := c.NewSession(ctx, client.WithTTL(5*time.Second))
	example.Check(err)
	defer s.Close(context.Background())
	l, err := s.Campaign(ctx, election, id, client.WithOnQueued(func(ahead int, leader *zkcoordv1.LeaderInfo) {
		fmt.Printf("%s: waiting, %d candidate(s) ahead, leader %s\n", id, ahead, leader.GetValue())
	}))
	if ctx.Err() != nil {
		fmt.Printf("%s: stopped before being elected; candidacy withdrawn\n", id)
		return
	}
	example.Check(err)
	fmt.Printf("%s: elected leader of %s (token %d)\n", id, election, l.Token())
	var done <-chan time.Time
	if lead > 0 {
		done = time.After(lead)
	}
	select {
	case <-done:
	case <-ctx.Done():
	case <-l.Context().Done():
		fmt.Printf("%s: term ended: %v\n", id, context.Cause(l.Context()))
		return
	}
	example.Check(l.Resign(context.Background()))
	fmt.Printf("%s: resigned\n", id)
}
