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

After the run, each checker returns a Result (checks, violations, unchecked,
and the first violations in words):

	CheckLeadership     fencing tokens rise; accepted writes never go back to
	                    an older token; no new term while an older one is live
	CheckConvergence    every watcher and lookup matches ZooKeeper once churn
	                    has stopped for a while
	CheckNoLeft         no LEFT for a member whose lease was kept alive
	CheckLeases         kept leases are not lost and keep their members;
	                    abandoned leases' members are gone by TTL + 1 s
	CheckBarriers       no release before N arrived; all released once N were
	                    there together
	CheckLinearizable   Register/Deregister/LINEARIZABLE Lookup against a
	                    map model with porcupine, partitioned by member

CheckAll runs all but CheckConvergence (which needs ground truth read at the
end of the run); Report prints one line per invariant:

	h := checker.NewHistory()
	// ... the run calls h.Record(checker.Event{...}) from every client ...
	rep := checker.CheckAll(h, time.Minute, checker.WithSlack(50*time.Millisecond),
		checker.WithVisualization("linearizability.html"))
	rep = append(rep, checker.CheckConvergence(truth, stoppedAt, observations, 2*time.Second))
	fmt.Print(rep)
	if !rep.OK() { ... }

Times are the recording process's clock: the run records every event in one
process, so client observations are comparable. Record the time a client
acted on, not a later one: the call time of Resign, the call start of
AwaitBarrier.
*/
package checker
