// Package bench measures zkcoord beside direct ZooKeeper. Every workload
// drives the gateway (a separate zkcoord process, reached over gRPC) and a
// direct go-zookeeper client through the same work against the same
// ZooKeeper, and reports each figure with its direct counterpart, their
// ratio and the target it must meet (docs/BENCHMARKS.md).
//
// cmd/zkcoord-bench runs it; the package's test runs every workload at a
// tiny scale so that the tool keeps working.
package bench
