package bench

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// Sample is what a closed-loop load run measured.
type Sample struct {
	Ops       int
	warm      int // successful calls during the warm-up, not measured
	Errors    int
	FirstErr  error
	Elapsed   time.Duration
	Latencies []time.Duration // one per successful op, sorted
}

// Throughput is successful operations per second.
func (s Sample) Throughput() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Ops) / s.Elapsed.Seconds()
}

// Quantile returns the q-quantile (0..1) of the latencies, 0 with none.
func (s Sample) Quantile(q float64) time.Duration { return quantile(s.Latencies, q) }

// quantilesMs is the quantiles of sorted in milliseconds, NaN for every q
// when the side was not run (have false).
func quantilesMs(sorted []time.Duration, have bool) func(q float64) float64 {
	return func(q float64) float64 {
		if !have {
			return math.NaN()
		}
		return ms(quantile(sorted, q))
	}
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

// Closed runs op from workers goroutines back to back for d and measures
// every call. First each worker warms up (for d/5 and at least one
// successful call, unmeasured); the measured d starts once every worker
// has, so a slow first call (a connection, a cache fill) never eats the
// window. op gets the worker's index and the worker's count of calls so
// far.
func Closed(ctx context.Context, workers int, d time.Duration, op func(ctx context.Context, worker, i int) error) Sample {
	type local struct {
		ops, errs, warm int
		first           error
		lat             []time.Duration
	}
	locals := make([]local, workers)
	var wg, warmed sync.WaitGroup
	warmed.Add(workers)
	begin := make(chan struct{})
	var end time.Time // set before begin closes
	warmUntil := time.Now().Add(d / 5)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &locals[w]
			i := 0
			for ; ctx.Err() == nil && (time.Now().Before(warmUntil) || l.warm == 0) && i < maxWarmCalls; i++ {
				if err := op(ctx, w, i); err == nil {
					l.warm++
				} else if l.first == nil {
					l.first = err
				}
			}
			warmed.Done()
			<-begin
			for ; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				err := op(ctx, w, i)
				t1 := time.Now()
				if err != nil {
					l.errs++
					if l.first == nil {
						l.first = err
					}
					continue
				}
				l.ops++
				l.lat = append(l.lat, t1.Sub(t0))
			}
		}()
	}
	warmed.Wait()
	end = time.Now().Add(d)
	close(begin)
	wg.Wait()
	var s Sample
	s.Elapsed = d
	for _, l := range locals {
		s.Ops += l.ops
		s.warm += l.warm
		s.Errors += l.errs
		if s.FirstErr == nil {
			s.FirstErr = l.first
		}
		s.Latencies = append(s.Latencies, l.lat...)
	}
	slices.Sort(s.Latencies)
	return s
}

// maxWarmCalls bounds a warm-up whose calls keep failing.
const maxWarmCalls = 10000

// sortedDurations sorts ds in place and returns it.
func sortedDurations(ds []time.Duration) []time.Duration {
	slices.Sort(ds)
	return ds
}
