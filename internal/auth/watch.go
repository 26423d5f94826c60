package auth

import (
	"context"

	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// A multiplexed watch stream (RegistryService.Watch) names its groups in
// its messages, one create at a time, and one refused create must refuse
// only that watch: the stream interceptor cannot check them as it checks
// other streams' requests (a refusal there ends the stream). It counts the
// stream and leaves in the stream's context a watchAuthorizer, which the
// handler calls through AuthorizeWatch for each create.

type watchAuthorizerKey struct{}

// watchAuthorizer checks one watch of a multiplexed stream for p.
type watchAuthorizer struct {
	c Config
	p *Principal
}

// AuthorizeWatch checks a new watch of group on a multiplexed watch
// stream whose context is ctx: the principal's rate, its read right over
// group, and its watched-groups limit, which the watch counts against
// until the returned release is called. Its errors are statuses
// (PermissionDenied, ResourceExhausted) for that watch alone. Without
// authentication (no authorizer in ctx) every watch is allowed.
func AuthorizeWatch(ctx context.Context, group string) (release func(), err error) {
	a, ok := ctx.Value(watchAuthorizerKey{}).(*watchAuthorizer)
	if !ok {
		return func() {}, nil
	}
	if err := a.c.Limiter.Allow(a.p); err != nil {
		return nil, err
	}
	req := &pb.WatchCreateRequest{Group: group}
	if err := check(a.p, pb.RegistryService_Watch_FullMethodName, rule{right: Read, name: createGroup}, req); err != nil {
		return nil, err
	}
	return a.c.Limiter.WatchGroup(a.p, group)
}

func createGroup(req any) string { return req.(*pb.WatchCreateRequest).GetGroup() }

// perWatchStream is a stream whose context carries a watchAuthorizer.
type perWatchStream struct {
	*authorizedStream
	ctx context.Context
}

func (s *perWatchStream) Context() context.Context { return s.ctx }

// RecvMsg receives without a per-message check: the handler checks each
// create with AuthorizeWatch.
func (s *perWatchStream) RecvMsg(m any) error { return s.ServerStream.RecvMsg(m) }
