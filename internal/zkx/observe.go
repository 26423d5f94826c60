package zkx

import (
	"errors"
	"time"
)

// Op names a kind of ZooKeeper request, for an Observer: a small fixed set,
// so a metric labelled by it stays small.
type Op string

// The kinds of request a Session makes. A watching variant (GetW,
// ChildrenW, ExistsW) is its plain kind.
const (
	OpGet        Op = "get"
	OpChildren   Op = "children"
	OpExists     Op = "exists"
	OpCreate     Op = "create"
	OpSet        Op = "set"
	OpDelete     Op = "delete"
	OpMulti      Op = "multi"
	OpEnsurePath Op = "ensure_path"
	OpGetACL     Op = "get_acl"
)

// Ops lists every Op.
var Ops = []Op{OpGet, OpChildren, OpExists, OpCreate, OpSet, OpDelete, OpMulti, OpEnsurePath, OpGetACL}

// Observer is told of every request a Session's context-bounded methods
// make: its kind, how long ZooKeeper took to answer it (from go-zookeeper's
// call to its return, queueing while no server is reachable included), and
// its error. It runs on the request's goroutine: it must be quick and must
// not block.
type Observer func(op Op, took time.Duration, err error)

// WithObserver has obs told of every request the Session makes through
// its methods (Get, Create, Multi...), for metrics.
func WithObserver(obs Observer) Option {
	return func(o *options) error {
		if obs == nil {
			return errors.New("zkx: observer: nil")
		}
		o.observe = obs
		return nil
	}
}
