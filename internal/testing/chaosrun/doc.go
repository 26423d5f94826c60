// Package chaosrun runs zkcoord under random faults and checks invariants
// over what its clients saw: a cluster of ZooKeeper servers and gateway
// replicas (internal/chaos), workloads of electors, registrants, watchers
// and barrier participants going through the Go client or the generated
// stubs, a seeded fault schedule (replica drain, kill, pause; ZooKeeper
// leader kill; cut or stalled replica-ZooKeeper links), a recorder that
// follows the group's journal with a ZooKeeper session of its own (the
// ground truth: every change with its revision and commit time), and the
// checkers of internal/checker over the recorded history and that truth.
//
// The short run is part of the test suite; longer runs and soaks are
// started with flags (see chaosrun_test.go) or `make chaos`.
package chaosrun
