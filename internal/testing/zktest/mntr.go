package zktest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zkcoord/zkcoord/internal/zkserver"
)

// Mntr reads one integer counter of the test ZooKeeper's mntr
// (zk_watch_count, zk_sum_node_deleted_watch_count, ...).
func Mntr(tb testing.TB, name string) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := zkserver.Mntr(ctx, Addr(tb))
	if err != nil {
		tb.Fatal(err)
	}
	n, ok := m[name]
	if !ok {
		tb.Fatalf("zktest: no %s in mntr (%d counters)", name, len(m))
	}
	return n
}

// ChildWatches counts the child watches on the test ZooKeeper. 3.8's wchp,
// wchc and wchs list data and exists watches only, and mntr's zk_watch_count
// counts both kinds, so it is the count less wchs's total. The two are read
// one after the other: call it when no watch is being set or fired.
func ChildWatches(tb testing.TB) int {
	tb.Helper()
	total := Mntr(tb, "zk_watch_count")
	data := int64(-1)
	for _, line := range strings.Split(FourLetter(tb, "wchs"), "\n") {
		if n, ok := strings.CutPrefix(line, "Total watches:"); ok {
			data, _ = strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		}
	}
	if data < 0 {
		tb.Fatal("zktest: no total in wchs")
	}
	return int(total - data)
}
