package auth

import (
	"context"
	"crypto/x509"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	peerpb "github.com/zkcoord/zkcoord/gen/zkcoord/peer/v1"
	pb "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// Services that can be left open (reachable without credentials).
const (
	HealthService     = "grpc.health.v1.Health"
	ReflectionService = "grpc.reflection.v1.ServerReflection"
	// reflectionAlpha is what older grpcurl versions ask for.
	reflectionAlpha = "grpc.reflection.v1alpha.ServerReflection"
)

// Config is how a server authenticates and authorizes calls.
type Config struct {
	Source *Source
	// Open lists services served without credentials (HealthService,
	// ReflectionService). Their calls carry no principal.
	Open []string
	// Limiter counts streams, watched groups and request rates; nil makes
	// a fresh one.
	Limiter *Limiter
}

// Authenticate is the go-grpc-middleware auth function: it finds the
// call's principal from its bearer token (an opaque token of the policy
// file, or a JWT when the policy has a jwt section) or, without a token,
// from its verified client certificate. It fails with Unauthenticated.
func (c Config) Authenticate(ctx context.Context) (context.Context, error) {
	pol := c.Source.Policy()
	if token, ok := bearer(ctx); ok {
		if pr, ok := pol.byTokenLookup(token); ok {
			return WithPrincipal(ctx, pr), nil
		}
		if pol.jwt != nil && strings.Count(token, ".") == 2 {
			pr, err := pol.jwt.verify(token)
			if err != nil {
				return nil, status.Error(codes.Unauthenticated, err.Error())
			}
			return WithPrincipal(ctx, pr), nil
		}
		return nil, status.Error(codes.Unauthenticated, "unknown bearer token")
	}
	if cert := clientCert(ctx); cert != nil {
		for _, n := range certNames(cert) {
			if pr, ok := pol.byName[n]; ok {
				return WithPrincipal(ctx, pr), nil
			}
		}
		return nil, status.Errorf(codes.Unauthenticated, "client certificate %q maps to no principal", cert.Subject.CommonName)
	}
	return nil, status.Error(codes.Unauthenticated, "no credentials: send \"authorization: Bearer <token>\" or a client certificate")
}

// bearer returns the call's bearer token, if it sent an authorization
// header.
func bearer(ctx context.Context) (string, bool) {
	if len(metadata.ValueFromIncomingContext(ctx, "authorization")) == 0 {
		return "", false
	}
	tok, err := grpcauth.AuthFromMD(ctx, "bearer")
	return tok, err == nil && tok != ""
}

// clientCert is the verified leaf certificate of a mutual-TLS call.
func clientCert(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return ti.State.VerifiedChains[0][0]
}

// certNames are the names a certificate is known by: its subject common
// name, DNS names, URIs (SPIFFE IDs) and email addresses.
func certNames(c *x509.Certificate) []string {
	var out []string
	if c.Subject.CommonName != "" {
		out = append(out, c.Subject.CommonName)
	}
	out = append(out, c.DNSNames...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return append(out, c.EmailAddresses...)
}

// rule is what a method needs: a right over the name its request carries
// (name nil: a right over the empty name, that is, everywhere), or, with
// lease set, any right that uses leases.
type rule struct {
	right  Rights
	name   func(req any) string
	lease  bool // a lease call: possession of the lease ID is ownership
	stream bool // counts against the open-stream limit
	watch  bool // counts the group against the watched-groups limit
	// poll: a blocking query; a request with a wait counts as a stream
	// (and, with watch, its group as watched) while it waits.
	poll bool
	// perWatch: a multiplexed watch stream; its messages are checked one
	// watch at a time by the handler (AuthorizeWatch), not here.
	perWatch bool
}

func group(req any) string      { return req.(interface{ GetGroup() string }).GetGroup() }
func electionOf(req any) string { return req.(interface{ GetElection() string }).GetElection() }
func barrierOf(req any) string  { return req.(interface{ GetBarrier() string }).GetBarrier() }
func lockOf(req any) string     { return req.(interface{ GetLock() string }).GetLock() }

// sequencerOf is the lock or the election a CheckSequencerRequest names.
func sequencerOf(req any) string {
	if l := lockOf(req); l != "" {
		return l
	}
	return electionOf(req)
}

func prefixOf(req any) string { return req.(interface{ GetPrefix() string }).GetPrefix() }

func semaphoreOf(req any) string {
	return req.(interface{ GetSemaphore() string }).GetSemaphore()
}

// rules maps every zkcoord method to what it needs. A method missing here
// is refused (fail closed); auth_test checks that every registered method
// has a rule.
var rules = map[string]rule{
	pb.RegistryService_Register_FullMethodName:   {right: Register, name: group},
	pb.RegistryService_Deregister_FullMethodName: {right: Register, name: group},
	pb.RegistryService_Lookup_FullMethodName:     {right: Read, name: group, poll: true, watch: true},
	pb.RegistryService_WatchGroup_FullMethodName: {right: Read, name: group, stream: true, watch: true},
	// Each create is checked, and its group counted, by AuthorizeWatch.
	pb.RegistryService_Watch_FullMethodName: {right: Read, stream: true, perWatch: true},

	pb.ElectionService_Campaign_FullMethodName: {right: Campaign, name: electionOf, stream: true},
	pb.ElectionService_Resign_FullMethodName:   {right: Campaign, name: electionOf},
	pb.ElectionService_Leader_FullMethodName:   {right: Read, name: electionOf, poll: true},
	pb.ElectionService_Observe_FullMethodName:  {right: Read, name: electionOf, stream: true},

	pb.BarrierService_AwaitBarrier_FullMethodName: {right: Barrier, name: barrierOf, stream: true},
	pb.BarrierService_JoinBarrier_FullMethodName:  {right: Barrier, name: barrierOf},
	pb.BarrierService_GetBarrier_FullMethodName:   {right: Read, name: barrierOf, poll: true},
	pb.BarrierService_LeaveBarrier_FullMethodName: {right: Barrier, name: barrierOf},
	pb.BarrierService_AwaitGroup_FullMethodName:   {right: Read, name: group, stream: true, watch: true},

	pb.LockService_AcquireLock_FullMethodName:    {right: Lock, name: lockOf, stream: true},
	pb.LockService_TryAcquireLock_FullMethodName: {right: Lock, name: lockOf},
	pb.LockService_ReleaseLock_FullMethodName:    {right: Lock, name: lockOf},
	pb.LockService_GetLock_FullMethodName:        {right: Read, name: lockOf},
	pb.LockService_CheckSequencer_FullMethodName: {right: Read, name: sequencerOf},

	pb.SemaphoreService_AcquireSemaphore_FullMethodName:    {right: Lock, name: semaphoreOf, stream: true},
	pb.SemaphoreService_TryAcquireSemaphore_FullMethodName: {right: Lock, name: semaphoreOf},
	pb.SemaphoreService_ReleaseSemaphore_FullMethodName:    {right: Lock, name: semaphoreOf},
	pb.SemaphoreService_GetSemaphore_FullMethodName:        {right: Read, name: semaphoreOf},

	pb.LeaseService_Grant_FullMethodName:           {lease: true},
	pb.LeaseService_KeepAlive_FullMethodName:       {lease: true},
	pb.LeaseService_KeepAliveStream_FullMethodName: {lease: true, stream: true},
	pb.LeaseService_Revoke_FullMethodName:          {lease: true},
	pb.LeaseService_GetLease_FullMethodName:        {lease: true},

	pb.StatusService_GetStatus_FullMethodName: {right: Admin},

	// Lists need read over their prefix: every name they list starts
	// with it. Leases and replicas name things in every scope: admin.
	pb.InspectService_ListGroups_FullMethodName:     {right: Read, name: prefixOf},
	pb.InspectService_ListElections_FullMethodName:  {right: Read, name: prefixOf},
	pb.InspectService_ListBarriers_FullMethodName:   {right: Read, name: prefixOf},
	pb.InspectService_ListLocks_FullMethodName:      {right: Read, name: prefixOf},
	pb.InspectService_ListSemaphores_FullMethodName: {right: Read, name: prefixOf},
	pb.InspectService_ListLeases_FullMethodName:     {right: Admin},
	pb.InspectService_ListReplicas_FullMethodName:   {right: Admin},

	peerpb.PeerService_KeepAlive_FullMethodName: {right: Admin},
	peerpb.PeerService_Handoff_FullMethodName:   {right: Admin},
	peerpb.PeerService_GetLease_FullMethodName:  {right: Admin},
}

// HasRule reports whether method has an authorization rule.
func HasRule(method string) bool {
	_, ok := rules[method]
	return ok
}

// check authorizes one request of method for p.
func check(p *Principal, method string, r rule, req any) error {
	if r.lease {
		if !p.MayHoldLeases() {
			return status.Errorf(codes.PermissionDenied, "principal %q may not hold leases (it has no register, campaign, barrier, lock or admin right)", p.Name)
		}
		return nil
	}
	name := ""
	if r.name != nil {
		name = r.name(req)
	}
	if !p.Allows(r.right, name) {
		if name == "" {
			return status.Errorf(codes.PermissionDenied, "principal %q lacks the %s right over every name, which %s needs", p.Name, r.right, method)
		}
		return status.Errorf(codes.PermissionDenied, "principal %q lacks the %s right over %q", p.Name, r.right, name)
	}
	return nil
}

// open reports whether a call's service is open.
func (c Config) open(method string) bool {
	svc := strings.TrimPrefix(method, "/")
	if i := strings.IndexByte(svc, '/'); i >= 0 {
		svc = svc[:i]
	}
	for _, o := range c.Open {
		if svc == o || (o == ReflectionService && svc == reflectionAlpha) {
			return true
		}
	}
	return false
}

// ServerOptions returns the interceptors that authenticate (through
// go-grpc-middleware's auth interceptor, skipped for open services) and
// then authorize and limit each call. They go after recovery and logging
// and before validation.
func (c Config) ServerOptions() (grpc.UnaryServerInterceptor, grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor, grpc.StreamServerInterceptor) {
	if c.Limiter == nil {
		c.Limiter = NewLimiter()
	}
	closed := selector.MatchFunc(func(_ context.Context, m interceptors.CallMeta) bool { return !c.open(m.FullMethod()) })
	return selector.UnaryServerInterceptor(grpcauth.UnaryServerInterceptor(c.Authenticate), closed),
		c.unaryAuthorize,
		selector.StreamServerInterceptor(grpcauth.StreamServerInterceptor(c.Authenticate), closed),
		c.streamAuthorize
}

func (c Config) unaryAuthorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	p := PrincipalFrom(ctx)
	if p == nil {
		if c.open(info.FullMethod) {
			return handler(ctx, req)
		}
		return nil, status.Error(codes.Unauthenticated, "no principal")
	}
	r, ok := rules[info.FullMethod]
	if !ok && !isInfra(info.FullMethod) {
		return nil, status.Errorf(codes.PermissionDenied, "%s has no authorization rule", info.FullMethod)
	}
	if err := c.Limiter.Allow(p); err != nil {
		return nil, err
	}
	if ok {
		if err := check(p, info.FullMethod, r, req); err != nil {
			return nil, err
		}
		if r.poll && waits(req) {
			// A blocking query holds what a stream holds while it waits.
			done, err := c.Limiter.OpenStream(p)
			if err != nil {
				return nil, err
			}
			defer done()
			if r.watch {
				unwatch, err := c.Limiter.WatchGroup(p, group(req))
				if err != nil {
					return nil, err
				}
				defer unwatch()
			}
		}
	}
	return handler(ctx, req)
}

// waits reports whether req is a blocking query: it has a wait.
func waits(req any) bool {
	w, ok := req.(interface{ GetWait() *durationpb.Duration })
	return ok && w.GetWait().AsDuration() > 0
}

// isInfra: health and reflection, served to any authenticated caller when
// not open.
func isInfra(method string) bool {
	return strings.HasPrefix(method, "/"+HealthService+"/") || strings.HasPrefix(method, "/"+ReflectionService+"/") ||
		strings.HasPrefix(method, "/"+reflectionAlpha+"/")
}

func (c Config) streamAuthorize(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	p := PrincipalFrom(ss.Context())
	if p == nil {
		if c.open(info.FullMethod) {
			return handler(srv, ss)
		}
		return status.Error(codes.Unauthenticated, "no principal")
	}
	r, ok := rules[info.FullMethod]
	if !ok && !isInfra(info.FullMethod) {
		return status.Errorf(codes.PermissionDenied, "%s has no authorization rule", info.FullMethod)
	}
	if err := c.Limiter.Allow(p); err != nil {
		return err
	}
	if !ok {
		return handler(srv, ss)
	}
	if r.stream {
		done, err := c.Limiter.OpenStream(p)
		if err != nil {
			return err
		}
		defer done()
	}
	as := &authorizedStream{ServerStream: ss, c: c, p: p, method: info.FullMethod, r: r}
	defer as.release()
	if r.perWatch {
		ctx := context.WithValue(ss.Context(), watchAuthorizerKey{}, &watchAuthorizer{c: c, p: p})
		return handler(srv, &perWatchStream{authorizedStream: as, ctx: ctx})
	}
	return handler(srv, as)
}

// authorizedStream checks every message a handler receives; a watching
// stream's group is counted from its request on.
type authorizedStream struct {
	grpc.ServerStream
	c       Config
	p       *Principal
	method  string
	r       rule
	unwatch func()
}

func (s *authorizedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := check(s.p, s.method, s.r, m); err != nil {
		return err
	}
	if s.r.watch && s.unwatch == nil {
		done, err := s.c.Limiter.WatchGroup(s.p, group(m))
		if err != nil {
			return err
		}
		s.unwatch = done
	}
	return nil
}

func (s *authorizedStream) release() {
	if s.unwatch != nil {
		s.unwatch()
	}
}
