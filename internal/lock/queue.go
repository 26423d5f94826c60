package lock

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
)

// Mode is how a lock is held. The values match zkcoord.v1.LockMode.
type Mode int

// The modes.
const (
	// Exclusive: the only holder (the write lock of a read/write lock).
	Exclusive Mode = iota + 1
	// Shared: with the other shared holders (the read lock).
	Shared
)

func (m Mode) String() string {
	switch m {
	case Exclusive:
		return "exclusive"
	case Shared:
		return "shared"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// prefix is the first letter of a node's name in mode m.
func (m Mode) prefix() string {
	if m == Shared {
		return "s"
	}
	return "x"
}

// node is one acquirer in a lock's queue: the znode <m>_<lease key>_<seq>.
type node struct {
	name string
	mode Mode
	key  string // the owning lease's key
	seq  int64
}

// parseNode parses a queue node's name; ok is false for anything else.
func parseNode(name string) (node, bool) {
	if len(name) < 14 || name[1] != '_' || name[len(name)-11] != '_' {
		return node{}, false
	}
	var m Mode
	switch name[0] {
	case 'x':
		m = Exclusive
	case 's':
		m = Shared
	default:
		return node{}, false
	}
	seq, err := strconv.ParseInt(name[len(name)-10:], 10, 64)
	if err != nil {
		return node{}, false
	}
	return node{name: name, mode: m, key: name[2 : len(name)-11], seq: seq}, true
}

// queue is a lock's acquirers in queue order (by sequence, not by name:
// names start with the mode and the lease key).
type queue []node

func newQueue(kids []string) queue {
	q := make(queue, 0, len(kids))
	for _, k := range kids {
		if n, ok := parseNode(k); ok {
			q = append(q, n)
		}
	}
	slices.SortFunc(q, func(a, b node) int { return cmp.Compare(a.seq, b.seq) })
	return q
}

// blocker returns the index of the node that q[i] waits for, or -1 when
// q[i] holds the lock: an exclusive node waits for its predecessor, a
// shared one for the nearest exclusive node ahead of it. That node is the
// only one q[i] watches (herd avoidance); everything ahead of it is ahead
// of that node too.
func (q queue) blocker(i int) int {
	if q[i].mode == Exclusive {
		return i - 1
	}
	for j := i - 1; j >= 0; j-- {
		if q[j].mode == Exclusive {
			return j
		}
	}
	return -1
}

// free reports whether a node of mode m added at the end of q would hold
// the lock at once.
func (q queue) free(m Mode) bool {
	if m == Exclusive {
		return len(q) == 0
	}
	return !slices.ContainsFunc(q, func(n node) bool { return n.mode == Exclusive })
}

// holders returns how many nodes at the head of q hold the lock.
func (q queue) holders() int {
	n := 0
	for n < len(q) && q.blocker(n) < 0 {
		n++
	}
	return n
}

// find returns the index of the node of the lease with key, or -1.
func (q queue) find(key string) int {
	return slices.IndexFunc(q, func(n node) bool { return n.key == key })
}

// index returns the index of the node named name, or -1.
func (q queue) index(name string) int {
	return slices.IndexFunc(q, func(n node) bool { return n.name == name })
}

// ownedBy reports whether a child of a lock's directory belongs to the
// lease with key.
func ownedBy(name, key string) bool {
	n, ok := parseNode(name)
	return ok && n.key == key
}

// record is a queue node's data: the lease's holds on the lock, oldest
// first. A reentrant acquire adds one; each release removes one, and the
// last one's release deletes the node.
type record struct {
	Holds []string `json:"holds"`
}

func decode(data []byte) record {
	var r record
	_ = json.Unmarshal(data, &r) // a corrupt record holds nothing
	return r
}

func (r record) encode() []byte {
	b, _ := json.Marshal(r)
	return b
}

func (r record) has(hold string) bool { return slices.Contains(r.Holds, hold) }

// without returns r less hold.
func (r record) without(hold string) record {
	return record{Holds: slices.DeleteFunc(slices.Clone(r.Holds), func(h string) bool { return h == hold })}
}
