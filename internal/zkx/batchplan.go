package zkx

import "github.com/go-zookeeper/zk"

// batchPlan is the one multi a batch sends: the callers' operations in
// arrival order, with two kinds collapsed where no operation of the batch
// could tell the difference (DESIGN.md, "Group commit"):
//
//   - a version check of a path that nothing in the batch writes is sent
//     once per (path, version), first: its outcome is the same wherever it
//     runs in the transaction, and for every caller that has it (the lease
//     fence of every write for one lease);
//   - a touch (an unconditional setData of no data) of a path that nothing
//     else in the batch writes is sent once, last: the node ends with the
//     same data, and every caller's touch answers with the one Stat, whose
//     Mzxid is the transaction's zxid (the journal's touch of a group that
//     several callers change).
type batchPlan struct {
	ops []any
	pos [][]int // pos[i][j]: where call i's operation j is in ops
}

// planBatch lays out the multi for a batch of calls.
func planBatch(batch []*call) batchPlan {
	written := map[string]bool{}
	for _, cl := range batch {
		for _, op := range cl.ops {
			switch o := op.(type) {
			case *zk.CreateRequest:
				written[o.Path] = true
			case *zk.DeleteRequest:
				written[o.Path] = true
			case *zk.SetDataRequest:
				if !isTouch(o) {
					written[o.Path] = true
				}
			}
		}
	}
	const (
		inChecks = iota
		inBody
		inTouches
	)
	type slot struct{ part, at int }
	var checks, body, touches []any
	checkAt := map[zk.CheckVersionRequest]int{}
	touchAt := map[string]int{}
	slots := make([][]slot, len(batch))
	for i, cl := range batch {
		slots[i] = make([]slot, len(cl.ops))
		for j, op := range cl.ops {
			switch o := op.(type) {
			case *zk.CheckVersionRequest:
				if !written[o.Path] {
					at, ok := checkAt[*o]
					if !ok {
						at = len(checks)
						checkAt[*o] = at
						checks = append(checks, o)
					}
					slots[i][j] = slot{inChecks, at}
					continue
				}
			case *zk.SetDataRequest:
				if isTouch(o) && !written[o.Path] {
					at, ok := touchAt[o.Path]
					if !ok {
						at = len(touches)
						touchAt[o.Path] = at
						touches = append(touches, o)
					}
					slots[i][j] = slot{inTouches, at}
					continue
				}
			}
			slots[i][j] = slot{inBody, len(body)}
			body = append(body, op)
		}
	}
	p := batchPlan{ops: make([]any, 0, len(checks)+len(body)+len(touches)), pos: make([][]int, len(batch))}
	p.ops = append(append(append(p.ops, checks...), body...), touches...)
	base := [...]int{inChecks: 0, inBody: len(checks), inTouches: len(checks) + len(body)}
	for i, ss := range slots {
		p.pos[i] = make([]int, len(ss))
		for j, s := range ss {
			p.pos[i][j] = base[s.part] + s.at
		}
	}
	return p
}

// isTouch reports whether op is a touch: an unconditional setData of no
// data, whose only effect is the node's mzxid and version.
func isTouch(op *zk.SetDataRequest) bool { return op.Version == -1 && len(op.Data) == 0 }

// split returns call i's answers, in the order of its operations.
func (p batchPlan) split(res []zk.MultiResponse, i int) []zk.MultiResponse {
	out := make([]zk.MultiResponse, len(p.pos[i]))
	for j, at := range p.pos[i] {
		out[j] = res[at]
	}
	return out
}

// uses reports whether call i has the operation at index at.
func (p batchPlan) uses(i, at int) bool {
	for _, a := range p.pos[i] {
		if a == at {
			return true
		}
	}
	return false
}
