package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// Stat is one system's figures at one load point, each the median of its
// rounds.
type Stat struct {
	Throughput float64 // successful operations per second
	P50, P99   float64 // milliseconds
	// Calls is every successful call of every round, warm-ups included
	// (what a counter read around the rounds saw).
	Calls int
}

// noStat is the Stat of a system the run does not drive (no etcd).
var noStat = Stat{Throughput: math.NaN(), P50: math.NaN(), P99: math.NaN()}

// system is one side of an interleaved load point.
type system struct {
	name string
	op   func(ctx context.Context, w, i int) error
	// before and after, when set, run around each of the system's rounds
	// (to read counters such as ZooKeeper's zxid or a process's CPU).
	before func() error
	after  func() error
}

// interleave runs every system at c callers in Interleave rounds, the
// systems alternating (A B C A B C ...), each round Duration/Interleave
// long with its own warm-up, and returns each system's medians over the
// rounds, in the order given; a noisy moment on a shared machine then
// falls on one round of one system, not on a whole comparison. It plots
// each system's medians. op's call index goes on across rounds (round k
// starts at k*10,000,000), so names made from it stay fresh. A round with
// no successful call fails the load point.
func (r *Runner) interleave(ctx context.Context, c int, systems []system) ([]Stat, error) {
	n := r.cfg.Interleave
	d := r.cfg.Duration / time.Duration(n)
	samples := make([][]Sample, len(systems))
	for k := range n {
		for si, s := range systems {
			if s.before != nil {
				if err := s.before(); err != nil {
					return nil, err
				}
			}
			base := k * 10_000_000
			smp := Closed(ctx, c, d, func(ctx context.Context, w, i int) error { return s.op(ctx, w, base+i) })
			if s.after != nil {
				if err := s.after(); err != nil {
					return nil, err
				}
			}
			if smp.Ops == 0 {
				return nil, fmt.Errorf("%s at %d callers, round %d: no successful call: %v", s.name, c, k+1, smp.FirstErr)
			}
			if smp.Errors > 0 {
				r.logf("  %s c=%d round %d: %d errors %v", s.name, c, k+1, smp.Errors, errText(smp.FirstErr))
			}
			samples[si] = append(samples[si], smp)
		}
	}
	out := make([]Stat, len(systems))
	for si, s := range systems {
		out[si] = medians(samples[si])
		r.pointStat(s.name, c, out[si])
	}
	return out, nil
}

// medians is the median over rounds of each figure.
func medians(rounds []Sample) Stat {
	var st Stat
	var thr, p50, p99 []float64
	for _, s := range rounds {
		thr = append(thr, s.Throughput())
		p50 = append(p50, ms(s.Quantile(0.5)))
		p99 = append(p99, ms(s.Quantile(0.99)))
		st.Calls += s.Ops + s.warm
	}
	st.Throughput, st.P50, st.P99 = median(thr), median(p50), median(p99)
	return st
}

// median of vs (the mean of the middle two for an even count); NaN for
// none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *Runner) pointStat(series string, c int, s Stat) {
	r.res.Points = append(r.res.Points, Point{Series: series, Concurrency: c, Throughput: s.Throughput, P50: s.P50, P99: s.P99})
	r.logf("  %-34s c=%-3d %8.0f ops/s  p50 %6.2f ms  p99 %6.2f ms  (median of %d rounds)", series, c, s.Throughput, s.P50, s.P99, r.cfg.Interleave)
}
