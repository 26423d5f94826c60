package checker

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// The registry model: each member id of each group is a register holding
// absent or (value, owner), where owner is the lease ("" for persistent).
// Linearizability is compositional, so the history is partitioned by
// group/member (porcupine's Partition) and each partition checked alone. A
// group Lookup is split into one read per member id the history mentions in
// that group: each read is checked, not the atomicity of the whole answer.
//
// Operations whose outcome is unknown (Unavailable, DeadlineExceeded, ...:
// any Err but the definite codes) may have taken effect at any time after
// their call, even after the client gave up. They are given a return time
// after every other operation of the history, so porcupine may linearize
// them anywhere after their call, including at the very end, which is the
// same as never: "applied" and "not applied" are both explored with a
// deterministic model. Lookups that failed tell nothing and are dropped.
//
// A lease's end removes its members without a call. Each lease end is an
// expire operation on the lease's members: LeaseLost ends it between its
// last renewal and the NOT_FOUND; LeaseAbandoned at any time after (the
// deadline is CheckLeases' business). A lease that lapses unrecorded makes
// its members vanish unexplained: the run must record one of the two, and
// use groups that start empty.

type regOpKind int

const (
	opRegister regOpKind = iota
	opDeregister
	opLookup
	opExpire
)

type regStatus int

const (
	stOK regStatus = iota
	stExists
	stNotFound
	stDenied
	stNoEffect // another definite failure
	stUnknown
)

type regState struct {
	present      bool
	value, owner string
}

type regInput struct {
	op           regOpKind
	key          string // group/member
	value, owner string
}

type regOutput struct {
	status  regStatus
	present bool
	value   string
}

// registryModel is the porcupine model of one member id, partitioned by key.
var registryModel = porcupine.Model{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range ops {
			k := op.Input.(regInput).key
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(byKey))
		for _, k := range sortedKeys(byKey) {
			out = append(out, byKey[k])
		}
		return out
	},
	Init:                      func() any { return regState{} },
	Step:                      regStep,
	DescribeOperation:         describeOp,
	DescribeState:             describeState,
	DescribeOperationMetadata: func(info any) string { s, _ := info.(string); return s },
}

// regStep says whether output is possible for input in state, and the
// state after.
func regStep(state, input, output any) (bool, any) {
	s, in, out := state.(regState), input.(regInput), output.(regOutput)
	switch in.op {
	case opRegister:
		can := !s.present || s.owner == in.owner
		switch out.status {
		case stOK:
			return can, regState{true, in.value, in.owner}
		case stExists:
			return !can, s
		case stUnknown:
			if can {
				return true, regState{true, in.value, in.owner}
			}
			return true, s
		default: // NotFound (lease ended) or another refusal: no effect
			return true, s
		}
	case opDeregister:
		can := s.present && s.owner == in.owner
		switch out.status {
		case stOK:
			return can, regState{}
		case stNotFound:
			return !s.present, s
		case stDenied:
			return s.present && !can, s
		case stUnknown:
			if can {
				return true, regState{}
			}
			return true, s
		default:
			return true, s
		}
	case opLookup:
		return out.present == s.present && (!s.present || out.value == s.value), s
	case opExpire:
		if s.present && s.owner == in.owner {
			return true, regState{}
		}
		return true, s
	}
	return false, s
}

func describeOp(input, output any) string {
	in, out := input.(regInput), output.(regOutput)
	var res string
	switch out.status {
	case stOK:
		res = "ok"
	case stExists:
		res = "AlreadyExists"
	case stNotFound:
		res = "NotFound"
	case stDenied:
		res = "PermissionDenied"
	case stNoEffect:
		res = "refused"
	case stUnknown:
		res = "?"
	}
	switch in.op {
	case opRegister:
		return fmt.Sprintf("register(%s, %q, lease %s) → %s", in.key, in.value, short(in.owner), res)
	case opDeregister:
		return fmt.Sprintf("deregister(%s, lease %s) → %s", in.key, short(in.owner), res)
	case opLookup:
		if !out.present {
			return fmt.Sprintf("lookup(%s) → absent", in.key)
		}
		return fmt.Sprintf("lookup(%s) → %q", in.key, out.value)
	default:
		return fmt.Sprintf("expire(%s, lease %s)", in.key, short(in.owner))
	}
}

func describeState(state any) string {
	s := state.(regState)
	if !s.present {
		return "absent"
	}
	return fmt.Sprintf("%q (lease %s)", s.value, short(s.owner))
}

// status maps an Err to the model's outcome.
func status(e Event) regStatus {
	switch {
	case e.ok():
		return stOK
	case e.Err == ErrAlreadyExists:
		return stExists
	case e.Err == ErrNotFound:
		return stNotFound
	case e.Err == ErrPermissionDenied:
		return stDenied
	case e.definiteFailure():
		return stNoEffect
	}
	return stUnknown
}

// CheckLinearizable checks the registry operations (Register, Deregister,
// LINEARIZABLE Lookup, lease ends) against the registry model with
// porcupine, one partition per group/member. timeout bounds the whole check
// (0: none); partitions left undecided count as unchecked. One check per
// partition decided. With WithVisualization, the partitions that are not
// linearizable are drawn to an HTML file.
func CheckLinearizable(h *History, timeout time.Duration, opts ...Option) Result {
	o := newOptions(opts)
	r := Result{Name: "linearizable"}
	ops := registryOps(h.Events())
	start := time.Now()
	var bad []porcupine.Operation
	for _, part := range registryModel.Partition(ops) {
		budget := timeout
		if timeout > 0 {
			if budget = timeout - time.Since(start); budget <= 0 {
				r.Unchecked++
				continue
			}
		}
		switch porcupine.CheckOperationsTimeout(registryModel, part, budget) {
		case porcupine.Ok:
			r.check()
		case porcupine.Illegal:
			r.check()
			r.fail("%s", describePartition(part))
			bad = append(bad, part...)
		default:
			r.Unchecked++
		}
	}
	if len(bad) > 0 && o.vizPath != "" {
		_, info := porcupine.CheckOperationsVerbose(registryModel, bad, timeout)
		if err := porcupine.VisualizePath(registryModel, info, o.vizPath); err != nil {
			r.note("visualization: %v", err)
		} else {
			r.note("visualization: %s", o.vizPath)
		}
	}
	return r
}

// describePartition lists a non-linearizable partition's operations.
func describePartition(ops []porcupine.Operation) string {
	const most = 8
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d operations not linearizable:", ops[0].Input.(regInput).key, len(ops))
	sorted := append([]porcupine.Operation(nil), ops...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
	for i, op := range sorted {
		if i == most {
			fmt.Fprintf(&b, " ...")
			break
		}
		fmt.Fprintf(&b, " [%s %s..%s %s]", op.Metadata, ts(time.Unix(0, op.Call)), ts(time.Unix(0, op.Return)), describeOp(op.Input, op.Output))
	}
	return b.String()
}

// registryOps turns the history's registry events into porcupine operations.
func registryOps(evs []Event) []porcupine.Operation {
	// Every member id each group mentions, for splitting group lookups.
	universe := map[string]map[string]bool{}
	mention := func(group, member string) {
		if universe[group] == nil {
			universe[group] = map[string]bool{}
		}
		universe[group][member] = true
	}
	leaseKeys := map[string][]string{} // lease to group/member keys
	renewals := map[string][]time.Time{}
	clients := map[string]bool{}
	var start, end time.Time
	for _, e := range evs {
		switch e.Kind {
		case KindRegister, KindDeregister:
			mention(e.Group, e.Member)
			if e.Kind == KindRegister && e.Lease != "" && !e.definiteFailure() {
				leaseKeys[e.Lease] = append(leaseKeys[e.Lease], e.Group+"/"+e.Member)
				if e.ok() {
					renewals[e.Lease] = append(renewals[e.Lease], e.Return)
				}
			}
		case KindLookup:
			if e.Member != "" {
				mention(e.Group, e.Member)
			}
			for m := range e.Members {
				mention(e.Group, m)
			}
		case KindKeepAliveOK:
			renewals[e.Lease] = append(renewals[e.Lease], e.Time)
		case KindLeaseAbandoned, KindLeaseLost:
			clients["lease "+short(e.Lease)] = true
		}
		clients[e.Client] = true
		for _, t := range []time.Time{e.Time, e.Call, e.Return} {
			if t.After(end) {
				end = t
			}
			if !t.IsZero() && (start.IsZero() || t.Before(start)) {
				start = t
			}
		}
	}
	ids := map[string]int{}
	for i, c := range sortedKeys(clients) {
		ids[c] = i
	}
	inf := end.UnixNano() + 1
	var ops []porcupine.Operation
	add := func(client string, in regInput, out regOutput, call, ret int64, meta string) {
		ops = append(ops, porcupine.Operation{ClientId: ids[client], Input: in, Output: out, Call: call, Return: ret, Metadata: meta})
	}
	for _, e := range evs {
		call, ret := e.Call, e.Return
		if call.IsZero() {
			call = e.Time
		}
		if ret.IsZero() {
			ret = e.Time
		}
		meta := strings.TrimSpace(e.Client + " " + e.OpID)
		st := status(e)
		r := ret.UnixNano()
		if st == stUnknown {
			r = inf
			meta += " (outcome unknown)"
		}
		switch e.Kind {
		case KindRegister:
			add(e.Client, regInput{opRegister, e.Group + "/" + e.Member, e.Value, e.Lease}, regOutput{status: st}, call.UnixNano(), r, meta)
		case KindDeregister:
			add(e.Client, regInput{opDeregister, e.Group + "/" + e.Member, "", e.Lease}, regOutput{status: st}, call.UnixNano(), r, meta)
		case KindLookup:
			if st != stOK {
				continue
			}
			members := sortedKeys(universe[e.Group])
			if e.Member != "" {
				members = []string{e.Member}
			}
			for _, m := range members {
				v, ok := e.Members[m]
				add(e.Client, regInput{op: opLookup, key: e.Group + "/" + m}, regOutput{stOK, ok, v}, call.UnixNano(), r, meta)
			}
		case KindLeaseAbandoned, KindLeaseLost:
			from, to := e.Time.UnixNano(), inf
			if e.Kind == KindLeaseLost {
				to = e.Time.UnixNano()
				from = start.UnixNano() // no renewal seen: any time before
				if last := lastRenewal(renewals[e.Lease], e.Time); !last.IsZero() {
					from = last.UnixNano()
				}
			}
			lane := "lease " + short(e.Lease)
			for _, k := range dedupe(leaseKeys[e.Lease]) {
				add(lane, regInput{op: opExpire, key: k, owner: e.Lease}, regOutput{status: stOK}, from, to, lane+" ended")
			}
		}
	}
	return ops
}

// lastRenewal returns the latest renewal not after t, or zero.
func lastRenewal(rs []time.Time, t time.Time) time.Time {
	var last time.Time
	for _, r := range rs {
		if !r.After(t) && r.After(last) {
			last = r
		}
	}
	return last
}

// dedupe returns the distinct strings of ss, sorted.
func dedupe(ss []string) []string {
	set := map[string]bool{}
	for _, s := range ss {
		set[s] = true
	}
	return sortedKeys(set)
}
