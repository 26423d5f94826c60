package bench

import (
	"context"
	"errors"
	"fmt"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// lookup: a one-member Lookup, from the cache and LINEARIZABLE, beside a
// direct Get (and Sync + Get) of the same znode, swept over concurrency.
func (r *Runner) lookup(ctx context.Context) error {
	const group, members = "lookup", 10
	reg := pb.NewRegistryServiceClient(r.env.Conn())
	for i := range members {
		if _, err := reg.Register(ctx, &pb.RegisterRequest{Group: group, MemberId: fmt.Sprint("m", i),
			Value: "10.0.0.1:8080", Persistent: true}); err != nil {
			return err
		}
	}
	direct, err := r.env.Direct(ctx)
	if err != nil {
		return err
	}
	defer direct.Close()
	ids := make([]string, members)
	paths := make([]string, members)
	for i := range members {
		ids[i] = fmt.Sprint("m", i)
		paths[i] = r.groups.Member(group, ids[i])
	}
	conns := make([]pb.RegistryServiceClient, 16)
	for i := range conns {
		conns[i] = pb.NewRegistryServiceClient(r.env.Conn())
	}
	gwLookup := func(cons pb.Consistency) func(ctx context.Context, w, i int) error {
		return func(ctx context.Context, w, i int) error {
			resp, err := conns[w%len(conns)].Lookup(ctx, &pb.LookupRequest{Group: group, MemberId: ids[(w+i)%members], Consistency: cons})
			if err == nil && len(resp.Members) != 1 {
				return errors.New("lookup: member missing")
			}
			return err
		}
	}
	directGet := func(ctx context.Context, w, i int) error {
		_, _, err := direct.Get(paths[(w+i)%members])
		return err
	}
	directSyncGet := func(ctx context.Context, w, i int) error {
		p := paths[(w+i)%members]
		if _, err := direct.Sync(p); err != nil {
			return err
		}
		_, _, err := direct.Get(p)
		return err
	}
	var at = map[string]Sample{}
	for _, c := range r.cfg.Concurrency {
		for _, s := range []struct {
			name string
			op   func(ctx context.Context, w, i int) error
		}{
			{"zkcoord Lookup cached", gwLookup(pb.Consistency_CONSISTENCY_CACHED)},
			{"direct Get", directGet},
			{"zkcoord Lookup linearizable", gwLookup(pb.Consistency_CONSISTENCY_LINEARIZABLE)},
			{"direct Sync+Get", directSyncGet},
		} {
			smp := Closed(ctx, c, r.cfg.Duration, s.op)
			if smp.Ops == 0 {
				return fmt.Errorf("%s at %d callers: no successful call: %v", s.name, c, smp.FirstErr)
			}
			r.point(s.name, c, smp)
			if c == r.cfg.Callers {
				at[s.name] = smp
			}
		}
	}
	cached, get := at["zkcoord Lookup cached"], at["direct Get"]
	lin, sync := at["zkcoord Lookup linearizable"], at["direct Sync+Get"]
	if cached.Ops == 0 {
		return fmt.Errorf("no load point at %d callers (-concurrency must include it)", r.cfg.Callers)
	}
	c := fmt.Sprintf(" (%d callers)", r.cfg.Callers)
	r.add(
		ratioFigure("Lookup cached", "throughput"+c, "ops/s", cached.Throughput(), get.Throughput(), Higher, 2),
		ratioFigure("Lookup cached", "p50 latency"+c, "ms", ms(cached.Quantile(0.5)), ms(get.Quantile(0.5)), Lower, 1),
		info("Lookup cached", "p99 latency"+c, "ms", ms(cached.Quantile(0.99)), ms(get.Quantile(0.99)), Lower),
		ratioFigure("Lookup linearizable", "throughput"+c, "ops/s", lin.Throughput(), sync.Throughput(), Higher, 0.8),
		info("Lookup linearizable", "p50 latency"+c, "ms", ms(lin.Quantile(0.5)), ms(sync.Quantile(0.5)), Lower),
	)
	return nil
}
