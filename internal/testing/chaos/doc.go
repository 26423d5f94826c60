// Package chaos injects faults into a real zkcoord deployment on one
// machine, for tests and by hand: a ZooKeeper ensemble and several
// `zkcoord serve` replicas, each a child process, each replica reaching
// every ZooKeeper server through a TCP proxy of its own.
//
//	c, err := chaos.StartCluster(ctx, chaos.Options{ZooKeepers: 3, Replicas: 2, Logger: log})
//	if err != nil { ... }
//	defer c.Stop()
//	cc, _ := client.New(ctx, c.Target())
//
// The faults, each logged through Options.Logger at the moment it is
// injected (the record's time is the fault's time, so a run's history can
// be read back from the log; replica logs are in Cluster.LogDir):
//
//   - ZooKeeper: KillZKLeader, KillZK, RestartZK, PauseZK and ResumeZK
//     (SIGSTOP: a server that is alive to TCP but answers nothing).
//   - Replica processes: Kill (SIGKILL), Pause and Resume (SIGSTOP of the
//     process group), Drain (SIGTERM, expecting a clean exit), Restart (the
//     same ID and address), and Cluster.AddReplica.
//   - A replica's link to ZooKeeper: CutZK (connections closed, new ones
//     refused), StallZK (nothing moves, nothing closes: the partition only
//     timeouts reveal) and RestoreZK.
//
// Proxy is usable alone, between any client and server.
//
// Replicas are started with --log-level debug; ZooKeeper servers are
// numbered from 0 here (ZooKeeper's own ids start at 1).
package chaos
