// Package client is the Go client of zkcoord, the gRPC gateway that serves
// ZooKeeper recipes: leases, a service registry, leader election, barriers
// and semaphores.
//
// A Client is a connection to a gateway. A Session holds a lease and keeps it
// alive from a goroutine of its own; what is made through it (members,
// candidacies, barrier participations, semaphore permits) belongs to the lease and goes when the
// session is closed or its process dies. A session whose lease is lost (it
// expired while the client was cut off from the gateway, say) grants a new
// lease and registers its members again: see Session.Lost and WithOnRestore.
//
//	c, err := client.New(ctx, "localhost:7070")
//	...
//	defer c.Close()
//	s, err := c.NewSession(ctx, client.WithTTL(10*time.Second))
//	...
//	defer s.Close(context.Background())
//	_, err = s.Register(ctx, "api", "host-1", "10.0.0.7:8080")
//	for st := range c.WatchGroup(ctx, "api") {
//		fmt.Println(st.Revision, len(st.Members))
//	}
//
// Every call that blocks takes a context first; its doc comment says what
// cancelling it does. Long-lived streams (keepalives, watches, observations,
// a leader's campaign) reconnect with backoff on transient errors
// (IsTransient) and end for good on others. A caller that holds no stream
// reads with blocking queries instead: Lookup, Leader and GetBarrier with
// AfterRevision and Wait answer when what they read has changed after the
// revision of the last answer (see Client.Lookup's loop), and
// Session.JoinBarrier joins a barrier without waiting. Goroutines the
// package starts belong to the Client, Session, Leadership or Permit that
// started them; Close waits for them. Session.AcquirePermit waits for a permit of
// a semaphore (at most N holders at once); its Permit ends, like a
// Leadership, when the permit does.
//
// Errors wrap a sentinel (ErrLeaseLost, ErrLost, ErrNotFound, ...) and, when
// the gateway caused them, its gRPC status: check them with errors.Is, or
// read the code with Code.
package client
