package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// pollSet is one set of long-pollers on a group of its own.
type pollSet struct {
	group   string
	pollers int
	// answers gets the moment each poller has read an answer with a new
	// revision (at most one per poller per change).
	answers chan time.Time
	present bool // whether the changing member is in the group
	// waiting is the fewest long-polls GetStatus counted in the gateway
	// just before one of the set's changes (-1 before the first).
	waiting int64
	p50s    []float64
	p99s    []float64
}

// longPoll: blocking queries over HTTP as PHP workers hold them. For each
// count in Pollers, a set of pollers on a group of its own, each holding
// GET /v1/groups/{group}?afterRevision=R&wait=60s on a keep-alive
// connection and polling again at once from each answer's revision. In
// each of Interleave rounds every set in turn sees Wakes/Interleave
// changes: once every poller of every set waits in the gateway (GetStatus
// polls), a gRPC Register or Deregister of one member changes the set's
// group, and each answer is timed from that call's return to the poller
// having read it whole. Figures are the medians over rounds of each
// round's p50 and p99. Cancelling ctx ends the pollers.
func (r *Runner) longPoll(ctx context.Context) error {
	reg := pb.NewRegistryServiceClient(r.env.Conn())
	status := pb.NewStatusServiceClient(r.env.Conn())
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	failed := make(chan error, 1)
	sets := make([]*pollSet, len(r.cfg.Pollers))
	total := 0
	for i, n := range r.cfg.Pollers {
		s := &pollSet{group: fmt.Sprintf("poll-%d-%d", i, n), pollers: n, answers: make(chan time.Time, n), waiting: -1}
		sets[i] = s
		if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: s.group, MemberId: "seed", Value: "v", Persistent: true}); err != nil {
			return err
		}
		first, err := reg.Lookup(ctx, &pb.LookupRequest{Group: s.group})
		if err != nil {
			return err
		}
		hc := newHTTPClient(n)
		defer hc.CloseIdleConnections()
		base := r.env.HTTP + "/v1/groups/" + url.PathEscape(s.group)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.poll(pctx, hc, base, strconv.FormatInt(first.Revision, 10), failed)
			}()
		}
		total += n
	}
	// allWaiting returns once every poller of every set waits in the
	// gateway, each having read the answer to the last change, with the
	// count of long-polls waiting.
	allWaiting := func() (int64, error) {
		deadline := time.After(30 * time.Second)
		for {
			st, err := status.GetStatus(ctx, &pb.GetStatusRequest{})
			if err != nil {
				return 0, err
			}
			if st.Polls == int64(total) {
				return st.Polls, nil
			}
			select {
			case err := <-failed:
				return 0, fmt.Errorf("poller: %w", err)
			case <-deadline:
				return 0, fmt.Errorf("%d of %d pollers waiting after 30s", st.Polls, total)
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	per := max(r.cfg.Wakes/r.cfg.Interleave, 1)
	for range r.cfg.Interleave {
		for _, s := range sets {
			lat := make([]time.Duration, 0, per*s.pollers)
			for range per {
				waiting, err := allWaiting()
				if err != nil {
					return err
				}
				if s.waiting < 0 || waiting < s.waiting {
					s.waiting = waiting
				}
				changed, err := s.change(ctx, reg)
				if err != nil {
					return err
				}
				timeout := time.After(30 * time.Second)
				for range s.pollers {
					select {
					case at := <-s.answers:
						lat = append(lat, max(at.Sub(changed), 0))
					case err := <-failed:
						return fmt.Errorf("poller: %w", err)
					case <-timeout:
						return fmt.Errorf("%d pollers: a change went unanswered for 30s", s.pollers)
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			lat = sortedDurations(lat)
			s.p50s = append(s.p50s, ms(quantile(lat, 0.5)))
			s.p99s = append(s.p99s, ms(quantile(lat, 0.99)))
		}
	}
	for _, s := range sets {
		w := fmt.Sprintf("HTTP long-poll wake-up (%s, %d changes)", plural(s.pollers, "poller"), per*r.cfg.Interleave)
		p99 := absFigure(w, "change to answer p99", "ms", median(s.p99s), math.NaN(), Lower, 50)
		p99.Note = "from the gRPC Register/Deregister's return to each poller having read its answer (GET ?afterRevision=R&wait=60s); median of the rounds' p99; an answer read before the call returned counts as 0"
		wf := info(w, "long-polls waiting at each change (fewest)", "polls", float64(s.waiting), math.NaN(), Higher)
		wf.Note = fmt.Sprintf("GetStatus polls just before each change, every set's pollers counted: %d when all wait", total)
		r.add(info(w, "change to answer p50", "ms", median(s.p50s), math.NaN(), Lower), p99, wf)
		r.logf("  %-34s p50 %6.2f ms  p99 %6.2f ms  (rounds' p99 %v)", plural(s.pollers, "poller"), median(s.p50s), median(s.p99s), s.p99s)
	}
	return nil
}

// change registers or deregisters (in turn) one member of the set's group,
// so that the group stays at one or two members and its answers small, and
// returns when the call did.
func (s *pollSet) change(ctx context.Context, reg pb.RegistryServiceClient) (time.Time, error) {
	var err error
	if s.present {
		_, err = reg.Deregister(ctx, &pb.DeregisterRequest{Group: s.group, MemberId: "x"})
	} else {
		_, err = reg.Register(ctx, &pb.RegisterRequest{Group: s.group, MemberId: "x", Value: "v", Persistent: true})
	}
	s.present = !s.present
	return time.Now(), err
}

// poll long-polls base from revision rev until ctx ends: each answer with
// a new revision goes on s.answers, with the moment it was read whole, and
// the next poll starts from it. The first error (unless ctx ended) goes on
// failed when nobody's error is there yet.
func (s *pollSet) poll(ctx context.Context, hc *http.Client, base, rev string, failed chan<- error) {
	for ctx.Err() == nil {
		a, err := httpGetLookup(ctx, hc, base+"?afterRevision="+rev+"&wait=60s")
		if err != nil {
			if ctx.Err() == nil {
				select {
				case failed <- err:
				default:
				}
			}
			return
		}
		at := time.Now()
		if a.Revision == "" {
			a.Revision = "0"
		}
		if a.Revision != rev {
			select {
			case s.answers <- at:
			case <-ctx.Done():
				return
			}
		}
		rev = a.Revision
	}
}

// plural is "1 poller", "100 pollers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
