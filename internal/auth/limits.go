package auth

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Limiter counts what each principal uses on this replica: its request
// rate (a token bucket), its open streams and the groups its streams
// watch. Leases are counted by the lease manager (see LeaseQuota). Limits
// are per replica: behind a load balancer over n replicas a principal may
// use up to n times its limits.
type Limiter struct {
	now func() time.Time

	mu sync.Mutex
	by map[string]*usage // by principal name

	refusedRate, refusedStreams, refusedGroups atomic.Int64 // for Refusals
}

// Refusals counts the calls a Limiter refused, by limit.
type Refusals struct {
	// Requests: over the request rate; Streams: at the open-stream limit;
	// WatchedGroups: at the watched-groups limit.
	Requests, Streams, WatchedGroups int64
}

// Refusals returns how many calls l refused so far, by limit.
func (l *Limiter) Refusals() Refusals {
	return Refusals{Requests: l.refusedRate.Load(), Streams: l.refusedStreams.Load(), WatchedGroups: l.refusedGroups.Load()}
}

type usage struct {
	tokens  float64
	last    time.Time
	streams int
	groups  map[string]int // watched group -> streams watching it
}

// NewLimiter returns an empty Limiter.
func NewLimiter() *Limiter {
	return &Limiter{now: time.Now, by: map[string]*usage{}}
}

// retryBusy is the retry delay suggested when a principal holds too many
// streams, groups or leases: until one of its own ends, which we cannot
// foresee.
const retryBusy = time.Second

// Exhausted is the status of a call refused by a limit: ResourceExhausted
// with a QuotaFailure naming the limit and a RetryInfo saying when trying
// again may succeed.
func Exhausted(principal, limit string, max int, retry time.Duration) error {
	st := status.Newf(codes.ResourceExhausted, "principal %q is at its limit of %d %s on this replica; retry in %v",
		principal, max, limit, retry.Round(time.Millisecond))
	if d, err := st.WithDetails(
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
			Subject: "principal:" + principal, Description: fmt.Sprintf("%s limit %d", limit, max)}}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(retry)},
	); err == nil {
		st = d
	}
	return st.Err()
}

func (l *Limiter) get(name string) *usage {
	u := l.by[name]
	if u == nil {
		u = &usage{last: l.now(), tokens: -1, groups: map[string]int{}}
		l.by[name] = u
	}
	return u
}

// drop forgets a principal at rest (no stream, full bucket), so that the
// map holds only principals in use.
func (l *Limiter) drop(name string, u *usage, lim Limits) {
	refilled := u.tokens < 0 || u.tokens+l.now().Sub(u.last).Seconds()*lim.Rate >= float64(lim.Burst)
	if u.streams == 0 && len(u.groups) == 0 && (lim.Rate < 0 || refilled) {
		delete(l.by, name)
	}
}

// Allow takes one request from p's bucket, or refuses with the time until
// the next token.
func (l *Limiter) Allow(p *Principal) error {
	lim := p.Limits
	if lim.Rate < 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.get(p.Name)
	now := l.now()
	burst := float64(max(lim.Burst, 1))
	if u.tokens < 0 { // new: a full bucket
		u.tokens = burst
	} else {
		u.tokens = min(burst, u.tokens+now.Sub(u.last).Seconds()*lim.Rate)
	}
	u.last = now
	if u.tokens < 1 {
		wait := time.Duration((1 - u.tokens) / lim.Rate * float64(time.Second))
		l.refusedRate.Add(1)
		return Exhausted(p.Name, "requests per second", int(lim.Rate), wait)
	}
	u.tokens--
	return nil
}

// OpenStream counts a stream of p's, or refuses when p has its limit open;
// the returned func ends it.
func (l *Limiter) OpenStream(p *Principal) (func(), error) {
	if p.Limits.Streams < 0 {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.get(p.Name)
	if u.streams >= p.Limits.Streams {
		l.refusedStreams.Add(1)
		return nil, Exhausted(p.Name, "open streams", p.Limits.Streams, retryBusy)
	}
	u.streams++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			u.streams--
			l.drop(p.Name, u, p.Limits)
		})
	}, nil
}

// WatchGroup counts group among the groups p's streams watch, or refuses
// when p watches its limit of other groups; the returned func ends it.
func (l *Limiter) WatchGroup(p *Principal, group string) (func(), error) {
	if p.Limits.WatchedGroups < 0 {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.get(p.Name)
	if u.groups[group] == 0 && len(u.groups) >= p.Limits.WatchedGroups {
		l.refusedGroups.Add(1)
		return nil, Exhausted(p.Name, "watched groups", p.Limits.WatchedGroups, retryBusy)
	}
	u.groups[group]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if u.groups[group]--; u.groups[group] <= 0 {
				delete(u.groups, group)
			}
			l.drop(p.Name, u, p.Limits)
		})
	}, nil
}

// LeaseQuota returns whom the leases of ctx's principal are counted under
// and how many that holder may hold on this replica (-1: no limit; "" and
// -1 without a principal, as without auth).
func LeaseQuota(ctx context.Context) (holder string, limit int) {
	p := PrincipalFrom(ctx)
	switch {
	case p == nil:
		return "", -1
	case p.Limits.Leases < 0:
		return p.Name, -1
	}
	return p.Name, p.Limits.Leases
}
