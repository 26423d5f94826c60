package checker

import (
	"fmt"
	"strings"
	"time"
)

// maxExamples is how many violations a Result describes.
const maxExamples = 10

// Result is the outcome of checking one invariant over a history.
type Result struct {
	Name string
	// Checks counts the instances of the invariant that were checked.
	Checks int
	// Violations counts the instances found broken.
	Violations int
	// Unchecked counts instances the history could not decide (a probe
	// missing after a deadline, a linearizability check that timed out).
	// They are neither passes nor violations.
	Unchecked int
	// Examples describes the first violations (at most 10), then notes.
	Examples []string
}

// OK reports whether no violation was found.
func (r Result) OK() bool { return r.Violations == 0 }

// String is one line: name, checks, violations, unchecked, verdict.
func (r Result) String() string {
	verdict := "ok"
	if !r.OK() {
		verdict = "FAIL"
	}
	return fmt.Sprintf("%-17s checks=%-6d violations=%-4d unchecked=%-4d %s",
		r.Name, r.Checks, r.Violations, r.Unchecked, verdict)
}

// check counts one checked instance.
func (r *Result) check() { r.Checks++ }

// fail counts a violation and describes it if fewer than maxExamples are.
func (r *Result) fail(format string, args ...any) {
	r.Violations++
	if len(r.Examples) < maxExamples {
		r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
	}
}

// note adds a line to Examples that is not a violation.
func (r *Result) note(format string, args ...any) {
	r.Examples = append(r.Examples, fmt.Sprintf(format, args...))
}

// Report is the results of a run, one per invariant.
type Report []Result

// OK reports whether every result is OK.
func (rep Report) OK() bool {
	for _, r := range rep {
		if !r.OK() {
			return false
		}
	}
	return true
}

// String prints one line per invariant.
func (rep Report) String() string {
	var b strings.Builder
	for _, r := range rep {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Details prints each result's line followed by its examples, indented.
func (rep Report) Details() string {
	var b strings.Builder
	for _, r := range rep {
		b.WriteString(r.String())
		b.WriteByte('\n')
		for _, ex := range r.Examples {
			b.WriteString("    ")
			b.WriteString(ex)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// CheckAll runs every checker that reads only the history and the truth
// of the run's group: leadership, no-left, watch delivery, snapshot
// atomicity, lease lifetime (three results), barriers and linearizability
// (with timeout). CheckTruth (the recorder's self-check) and
// CheckConvergence need what was read at the end of the run; append their
// results.
func CheckAll(h *History, t *Truth, timeout time.Duration, opts ...Option) Report {
	rep := Report{
		CheckLeadership(h, opts...),
		CheckNoLeft(h),
		CheckWatchDelivery(h, t, opts...),
		CheckSnapshots(h, t),
	}
	rep = append(rep, CheckLeaseLifetime(h, t, opts...)...)
	return append(rep,
		CheckBarriers(h, opts...),
		CheckLocks(h, opts...),
		CheckSemaphores(h, opts...),
		CheckLinearizable(h, timeout, opts...))
}

// ts formats a time for examples: clock time with milliseconds.
func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("15:04:05.000")
}
