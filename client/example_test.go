package client_test

import (
	"context"
	"fmt"
	"log"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/client"
	"github.com/zkcoord/zkcoord/internal/testing/testenv"
)

// gateway returns the address of the test gateway for an example, which has
// no testing.TB of its own.
func gateway() string { return testenv.Gateway(exampleTB{}) }

// exampleTB is the testing.TB of an example: enough for testenv.Gateway.
type exampleTB struct{ testing.TB }

func (exampleTB) Helper()           {}
func (exampleTB) Fatal(args ...any) { log.Fatal(args...) }

var exampleSeq atomic.Int64

// unique returns a name no other example run uses.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), exampleSeq.Add(1))
}

func ExampleSession_Register() {
	ctx := context.Background()
	c, err := client.New(ctx, gateway())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// The session's lease owns the member: it goes when the session is
	// closed, or when the process dies and the lease expires.
	s, err := c.NewSession(ctx, client.WithTTL(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)

	group := unique("api")
	if _, err := s.Register(ctx, group, "host-1", "10.0.0.7:8080", client.WithMetadata(map[string]string{"zone": "eu-1"})); err != nil {
		log.Fatal(err)
	}
	members, _, err := c.Lookup(ctx, group, client.Linearizable())
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range members {
		fmt.Println(m.GetId(), m.GetValue(), m.GetMetadata()["zone"])
	}
	// Output:
	// host-1 10.0.0.7:8080 eu-1
}

func ExampleClient_WatchGroup() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(ctx, gateway())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)

	group := unique("workers")
	states := c.WatchGroup(ctx, group)
	fmt.Println("members:", len((<-states).Members)) // the first state is a snapshot

	if _, err := s.Register(ctx, group, "w-1", "10.0.0.1:9000"); err != nil {
		log.Fatal(err)
	}
	st := <-states
	fmt.Println(st.Event.GetType(), st.Event.GetMember().GetId(), "members:", len(st.Members))

	if err := s.Deregister(ctx, group, "w-1"); err != nil {
		log.Fatal(err)
	}
	st = <-states
	fmt.Println(st.Event.GetType(), st.Event.GetMember().GetId(), "members:", len(st.Members))
	// Output:
	// members: 0
	// TYPE_JOINED w-1 members: 1
	// TYPE_LEFT w-1 members: 0
}

func ExampleSession_Campaign() {
	ctx := context.Background()
	c, err := client.New(ctx, gateway())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)

	election := unique("scheduler")
	l, err := s.Campaign(ctx, election, "10.0.0.7:8080")
	if err != nil {
		log.Fatal(err)
	}
	// Lead while l.Context() lasts, presenting l.Token() to fenced resources.
	leader, _, err := c.Leader(ctx, election)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("leader:", leader.GetValue(), "fenced:", leader.GetFencingToken() == l.Token())

	if err := l.Resign(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("term ended:", context.Cause(l.Context()))
	// Output:
	// leader: 10.0.0.7:8080 fenced: true
	// term ended: election: resigned
}

func ExampleSession_AwaitBarrier() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(ctx, gateway())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)

	// With a threshold of 1 the barrier releases on the first arrival.
	id, err := s.AwaitBarrier(ctx, unique("start"), 1, client.WithParticipantID("p-1"),
		client.WithProgress(func(have, want int) { fmt.Printf("arrived %d of %d\n", have, want) }))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("released:", id)
	// Output:
	// arrived 1 of 1
	// released: p-1
}

func ExampleClient_Lookup_blockingQuery() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(ctx, gateway())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	group := unique("web")

	s, err := c.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)
	// Someone registers in a moment.
	go func() {
		if _, err := s.Register(ctx, group, "w1", "10.0.0.1:80"); err != nil {
			log.Fatal(err)
		}
	}()

	// A loop that follows the group without a stream: each Lookup waits
	// (up to a minute) for a change after the revision of the last answer.
	var rev int64
	for {
		members, next, err := c.Lookup(ctx, group, client.AfterRevision(rev), client.Wait(time.Minute))
		if err != nil {
			log.Fatal(err)
		}
		if next < rev {
			next = 0 // another history (a new ensemble): start again
		}
		rev = next
		if len(members) > 0 {
			fmt.Println("members:", members[0].GetId(), members[0].GetValue())
			return
		}
	}
	// Output:
	// members: w1 10.0.0.1:80
}
