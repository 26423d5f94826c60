package zkx

import (
	"reflect"
	"testing"

	"github.com/go-zookeeper/zk"
)

// TestPlanBatch: checks of paths nothing in the batch writes go first,
// once per (path, version); touches of paths nothing else writes go last,
// once per path; a check or a touch of a path the batch writes stays where
// its caller put it, uncollapsed, so that it sees the writes before it.
func TestPlanBatch(t *testing.T) {
	chk := func(p string, v int32) *zk.CheckVersionRequest { return &zk.CheckVersionRequest{Path: p, Version: v} }
	touch := func(p string) *zk.SetDataRequest { return &zk.SetDataRequest{Path: p, Version: -1} }
	fence, fence2 := chk("/lease", 3), chk("/lease", 3)
	other := chk("/lease", 4)
	written := chk("/a", 1)
	setA := &zk.SetDataRequest{Path: "/a", Data: []byte("d"), Version: 1}
	log1, log1b := touch("/log"), touch("/log")
	log2 := touch("/log2")
	del2 := &zk.DeleteRequest{Path: "/log2", Version: -1}
	x := &zk.CreateRequest{Path: "/x"}
	y := &zk.CreateRequest{Path: "/y"}
	batch := []*call{
		{ops: []any{fence, x, log1}},
		{ops: []any{written, setA}},
		{ops: []any{log2, del2}},
		{ops: []any{fence2, other, y, log1b}},
	}
	p := planBatch(batch)
	want := []any{fence, other, x, written, setA, log2, del2, y, log1}
	if !reflect.DeepEqual(p.ops, want) {
		t.Fatalf("ops %v\nwant %v", p.ops, want)
	}
	wantPos := [][]int{{0, 2, 8}, {3, 4}, {5, 6}, {0, 1, 7, 8}}
	if !reflect.DeepEqual(p.pos, wantPos) {
		t.Fatalf("pos %v, want %v", p.pos, wantPos)
	}
	if !p.uses(3, 0) || !p.uses(0, 0) || p.uses(1, 0) || !p.uses(0, 8) || p.uses(2, 8) {
		t.Error("uses does not follow pos")
	}
	res := make([]zk.MultiResponse, len(p.ops))
	res[8].Stat = &zk.Stat{Mzxid: 42}
	for i := range batch {
		got := p.split(res, i)
		if len(got) != len(batch[i].ops) {
			t.Fatalf("call %d: %d answers for %d operations", i, len(got), len(batch[i].ops))
		}
	}
	if got := p.split(res, 3)[3].Stat.Mzxid; got != 42 {
		t.Errorf("a collapsed touch answers with mzxid %d, want the one touch's 42", got)
	}
}
