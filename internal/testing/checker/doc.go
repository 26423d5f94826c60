/*
Package checker records what a fault-injection run did and checks zkcoord's
invariants over it, as pure logic with no ZooKeeper or gRPC.

The run records client operations, observations and fault actions as Events
in a History (safe for concurrent use; each event gets a sequence number,
and Events returns them in time order). One flat Event struct serves every
kind; the comment of each Kind constant lists the fields it uses. Call
outcomes are gRPC code names in Err: "" or "OK" is success; AlreadyExists,
NotFound, PermissionDenied, InvalidArgument, FailedPrecondition and
Unauthenticated are failures without effect; any other code (Unavailable,
DeadlineExceeded, ...) is an unknown outcome, which the checkers treat as
possibly applied, at any time after the call.

The run also records the ground truth of its group: a Truth, the group's
journal as read by a ZooKeeper session of the run's own (every change, with
its revision and commit time), complete up to a revision it can prove.

After the run, each checker returns a Result (checks, violations, unchecked,
and the first violations in words):

	CheckLeadership     fencing tokens rise; accepted writes never go back to
	                    an older token; no new term while an older one is live
	CheckNoLeft         no LEFT for a member whose lease was kept alive
	CheckWatchDelivery  replaying each watcher's messages gives the truth at
	                    every revision it reports; every change is delivered,
	                    at its revision, or covered by a resync snapshot
	CheckSnapshots      every Lookup (CACHED or LINEARIZABLE) and snapshot
	                    equals the truth at its revision
	CheckLeaseLifetime  no lease ends before TTL after its last acknowledged
	                    renewal, nor later than TTL + grace after it
	                    (lease-early, expiry, expiry-failover)
	CheckBarriers       no release before N arrived; all released once N were
	                    there together
	CheckLocks          a lock is never held by two leases at once outside
	                    their jeopardy windows (readers together aside);
	                    tokens rise; the fenced resource never admits a
	                    stale token
	CheckSemaphores     no more than N permits of a semaphore live at once,
	                    counted from the holders' HELD and their ends
	                    (released, LOST, ended, a JEOPARDY deadline passed)
	CheckLinearizable   Register/Deregister/LINEARIZABLE Lookup against a
	                    map model with porcupine, partitioned by member
	CheckTruth          the truth's replay equals the members directory read
	                    at the end (the recorder's self-check)
	CheckConvergence    every watcher matches ZooKeeper once churn has
	                    stopped for a while

A check that the history or the truth cannot decide (a revision past the
end of the truth, a deadline after it) counts as unchecked, never as a
pass. CheckAll runs all but CheckTruth and CheckConvergence (which need what
is read at the end of the run); Report prints one line per invariant:

	h := checker.NewHistory()
	// ... the run calls h.Record(checker.Event{...}) from every client,
	// and follows the journal into truth ...
	rep := checker.CheckAll(h, truth, time.Minute, checker.WithSlack(50*time.Millisecond),
		checker.WithVisualization("linearizability.html"))
	rep = append(rep, checker.CheckTruth(truth, members),
		checker.CheckConvergence(final, stoppedAt, observations, 2*time.Second))
	fmt.Print(rep)
	if !rep.OK() { ... }

Times are the recording process's clock: the run records every event in one
process, so client observations are comparable. The truth's times are
ZooKeeper's commit times, on the same machine's clock in the runs here. Record the time a client
acted on, not a later one: the call time of Resign, the call start of
AwaitBarrier.
*/
package checker
