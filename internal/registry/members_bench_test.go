package registry

import (
	"fmt"
	"testing"
)

// The member tree at 10 to 1,000,000 members, in memory (no ZooKeeper):
// what a first page, a one-member read and a write after a snapshot cost
// as a group grows. docs/BENCHMARKS.md, "Large groups".
//
//	go test -run '^$' -bench 'Members' ./internal/registry/

func memberTree(n int) *members {
	t := newMembers()
	for i := range n {
		t.ReplaceOrInsert(&Member{Group: "g", ID: fmt.Sprintf("m%07d", i), Value: "10.0.0.1:8080", CreateRev: int64(i), ModRev: int64(i)})
	}
	return t
}

var memberSizes = []int{10, 100000, 1000000}

// BenchmarkMembersFirstPage takes a snapshot (a clone) and reads its first
// page of 10,000, as a paged WatchGroup or Lookup does.
func BenchmarkMembersFirstPage(b *testing.B) {
	for _, n := range memberSizes {
		t := memberTree(n)
		b.Run(fmt.Sprint("members=", n), func(b *testing.B) {
			for range b.N {
				s := &Snapshot{tree: t.Clone()}
				if ms, _ := s.Page("", 10000, 2<<20); len(ms) != min(n, 10000) {
					b.Fatalf("page of %d", len(ms))
				}
			}
		})
	}
}

// BenchmarkMembersWriteAfterSnapshot: a write into the cache right after
// a reader took a snapshot, which makes it copy the nodes on its path.
func BenchmarkMembersWriteAfterSnapshot(b *testing.B) {
	for _, n := range memberSizes {
		t := memberTree(n)
		b.Run(fmt.Sprint("members=", n), func(b *testing.B) {
			for i := range b.N {
				_ = t.Clone()
				t.ReplaceOrInsert(&Member{Group: "g", ID: fmt.Sprintf("m%07d", i%n), Value: "10.0.0.2:8080"})
			}
		})
	}
}

// BenchmarkMembersGet reads one member, as a one-member Lookup and a
// Register's cache check do.
func BenchmarkMembersGet(b *testing.B) {
	for _, n := range memberSizes {
		t := memberTree(n)
		b.Run(fmt.Sprint("members=", n), func(b *testing.B) {
			for i := range b.N {
				if _, ok := getMember(t, fmt.Sprintf("m%07d", i%n)); !ok {
					b.Fatal("missing")
				}
			}
		})
	}
}
