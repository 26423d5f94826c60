package client

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

// This file is an in-memory gateway for unit tests of the client's
// plumbing, over bufconn. Leases and members are kept in maps; the streams
// of watches, campaigns, observations and barriers are scripted by the
// test, which receives each stream as a script and says what it sends.

// testTimeout bounds every wait of a unit test.
const testTimeout = 10 * time.Second

// fake is the state of the in-memory gateway.
type fake struct {
	ttl      time.Duration // the TTL its keepalive answers report
	noStream bool          // KeepAliveStream is unimplemented

	mu        sync.Mutex
	changed   chan struct{}          // closed and replaced on every change
	leases    map[string]int         // lease ID -> keepalives received
	members   map[string]*fakeMember // "group/id" -> member
	nextLease int
	revoked   []string

	watches   chan *script[*zkcoordv1.WatchGroupRequest, *zkcoordv1.WatchGroupResponse]
	campaigns chan *script[*zkcoordv1.CampaignRequest, *zkcoordv1.CampaignResponse]
	observes  chan *script[*zkcoordv1.ObserveRequest, *zkcoordv1.ObserveResponse]
	barriers  chan *script[*zkcoordv1.AwaitBarrierRequest, *zkcoordv1.AwaitBarrierResponse]
	groups    chan *script[*zkcoordv1.AwaitGroupRequest, *zkcoordv1.AwaitGroupResponse]
	resigns   chan *zkcoordv1.ResignRequest
}

type fakeMember struct {
	value, lease string
}

// newFake starts an in-memory gateway and returns a Client connected to it;
// both stop when the test ends.
func newFake(t *testing.T) (*Client, *fake) {
	t.Helper()
	f := &fake{
		ttl:       60 * time.Millisecond,
		changed:   make(chan struct{}),
		leases:    make(map[string]int),
		members:   make(map[string]*fakeMember),
		watches:   make(chan *script[*zkcoordv1.WatchGroupRequest, *zkcoordv1.WatchGroupResponse]),
		campaigns: make(chan *script[*zkcoordv1.CampaignRequest, *zkcoordv1.CampaignResponse]),
		observes:  make(chan *script[*zkcoordv1.ObserveRequest, *zkcoordv1.ObserveResponse]),
		barriers:  make(chan *script[*zkcoordv1.AwaitBarrierRequest, *zkcoordv1.AwaitBarrierResponse]),
		groups:    make(chan *script[*zkcoordv1.AwaitGroupRequest, *zkcoordv1.AwaitGroupResponse]),
		resigns:   make(chan *zkcoordv1.ResignRequest, 10),
	}
	return f.start(t), f
}

func (f *fake) start(t *testing.T, opts ...Option) *Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	zkcoordv1.RegisterLeaseServiceServer(srv, fakeLeases{f: f})
	zkcoordv1.RegisterRegistryServiceServer(srv, fakeRegistry{f: f})
	zkcoordv1.RegisterElectionServiceServer(srv, fakeElection{f: f})
	zkcoordv1.RegisterBarrierServiceServer(srv, fakeBarrier{f: f})
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(lis)
	}()
	opts = append([]Option{
		WithBlock(),
		WithBackoff(time.Millisecond, 5*time.Millisecond),
		WithDialOptions(
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
		),
	}, opts...)
	c, err := New(t.Context(), "passthrough:///bufnet", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Stop()
		<-served
	})
	return c
}

// waitFor waits until cond, read under the fake's lock, holds.
func (f *fake) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(testTimeout)
	for {
		f.mu.Lock()
		ok, changed := cond(), f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// notify wakes waitFor; call it with the lock held.
func (f *fake) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// expire ends a lease and removes its members, as its TTL lapsing would,
// then runs each of also under the same lock.
func (f *fake) expire(lease string, also ...func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.leases, lease)
	for k, m := range f.members {
		if m.lease == lease {
			delete(f.members, k)
		}
	}
	for _, fn := range also {
		fn()
	}
	f.notify()
}

func (f *fake) member(group, id string) *fakeMember {
	return f.members[group+"/"+id]
}

// script is one server stream of the fake, driven by the test.
type script[Req, Resp any] struct {
	req  Req
	out  chan Resp     // what the stream sends next
	end  chan error    // ends the stream with this error (nil: OK)
	done chan struct{} // closed when the handler has returned
}

// serve hands a new stream to the test over scripts and plays it until the
// test ends it or the client goes.
func serve[Req, Resp any](ctx context.Context, scripts chan *script[Req, Resp], req Req, send func(Resp) error) error {
	s := &script[Req, Resp]{req: req, out: make(chan Resp), end: make(chan error), done: make(chan struct{})}
	defer close(s.done)
	select {
	case scripts <- s:
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		select {
		case m := <-s.out:
			if err := send(m); err != nil {
				return err
			}
		case err := <-s.end:
			return err
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// next receives the next value of ch: the next stream of a scripted
// method, say.
func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	v, ok := recv(t, ch)
	if !ok {
		t.Fatal("channel closed")
	}
	return v
}

// recv receives from ch, failing the test if nothing comes in time.
func recv[T any](t *testing.T, ch <-chan T) (T, bool) {
	t.Helper()
	select {
	case v, ok := <-ch:
		return v, ok
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting on a channel")
		panic("unreachable")
	}
}

// send makes the stream send m.
func (s *script[Req, Resp]) send(t *testing.T, m Resp) {
	t.Helper()
	select {
	case s.out <- m:
	case <-s.done:
		t.Fatal("stream ended before its message")
	case <-time.After(testTimeout):
		t.Fatal("timed out sending a message")
	}
}

// fail ends the stream with err.
func (s *script[Req, Resp]) fail(t *testing.T, err error) {
	t.Helper()
	select {
	case s.end <- err:
	case <-s.done:
	case <-time.After(testTimeout):
		t.Fatal("timed out ending a stream")
	}
	s.wait(t)
}

// wait waits until the stream's handler has returned: the client closed it,
// or the test ended it.
func (s *script[Req, Resp]) wait(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for the stream to end")
	}
}

type fakeLeases struct {
	zkcoordv1.UnimplementedLeaseServiceServer
	f *fake
}

func (s fakeLeases) Grant(_ context.Context, req *zkcoordv1.GrantRequest) (*zkcoordv1.GrantResponse, error) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextLease++
	id := fmt.Sprintf("lease-%d", f.nextLease)
	f.leases[id] = 0
	f.notify()
	return &zkcoordv1.GrantResponse{LeaseId: id, Ttl: req.GetTtl(), ExpiresAt: timestamppb.New(time.Now().Add(req.GetTtl().AsDuration()))}, nil
}

// renew counts a keepalive of lease.
func (f *fake) renew(lease string) (*zkcoordv1.KeepAliveResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.leases[lease]; !ok {
		return nil, status.Errorf(codes.NotFound, "lease %s not found", lease)
	}
	f.leases[lease]++
	f.notify()
	return &zkcoordv1.KeepAliveResponse{Ttl: durationpb.New(f.ttl), ExpiresAt: timestamppb.New(time.Now().Add(time.Second))}, nil
}

func (s fakeLeases) KeepAlive(_ context.Context, req *zkcoordv1.KeepAliveRequest) (*zkcoordv1.KeepAliveResponse, error) {
	return s.f.renew(req.GetLeaseId())
}

func (s fakeLeases) KeepAliveStream(stream grpc.BidiStreamingServer[zkcoordv1.KeepAliveStreamRequest, zkcoordv1.KeepAliveStreamResponse]) error {
	if s.f.noStream {
		return status.Error(codes.Unimplemented, "no KeepAliveStream")
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		resp, err := s.f.renew(req.GetLeaseId())
		if err != nil {
			return err
		}
		if err := stream.Send(&zkcoordv1.KeepAliveStreamResponse{LeaseId: req.GetLeaseId(), Ttl: resp.GetTtl(), ExpiresAt: resp.GetExpiresAt()}); err != nil {
			return err
		}
	}
}

func (s fakeLeases) Revoke(_ context.Context, req *zkcoordv1.RevokeRequest) (*zkcoordv1.RevokeResponse, error) {
	s.f.mu.Lock()
	_, ok := s.f.leases[req.GetLeaseId()]
	s.f.revoked = append(s.f.revoked, req.GetLeaseId())
	s.f.mu.Unlock()
	if !ok {
		return nil, status.Error(codes.NotFound, "no such lease")
	}
	s.f.expire(req.GetLeaseId())
	return &zkcoordv1.RevokeResponse{}, nil
}

type fakeRegistry struct {
	zkcoordv1.UnimplementedRegistryServiceServer
	f *fake
}

func (s fakeRegistry) Register(_ context.Context, req *zkcoordv1.RegisterRequest) (*zkcoordv1.RegisterResponse, error) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.leases[req.GetLeaseId()]; !ok && !req.GetPersistent() {
		return nil, status.Error(codes.NotFound, "no such lease")
	}
	id := req.GetMemberId()
	if id == "" {
		id = fmt.Sprintf("m-%d", len(f.members))
	}
	k := req.GetGroup() + "/" + id
	if m, ok := f.members[k]; ok && m.lease != req.GetLeaseId() {
		return nil, status.Error(codes.AlreadyExists, "member held by another owner")
	}
	f.members[k] = &fakeMember{value: req.GetValue(), lease: req.GetLeaseId()}
	f.notify()
	return &zkcoordv1.RegisterResponse{
		Member:  &zkcoordv1.Member{Group: req.GetGroup(), Id: id, Value: req.GetValue(), Persistent: req.GetPersistent()},
		LeaseId: req.GetLeaseId(),
	}, nil
}

func (s fakeRegistry) Deregister(_ context.Context, req *zkcoordv1.DeregisterRequest) (*zkcoordv1.DeregisterResponse, error) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	k := req.GetGroup() + "/" + req.GetMemberId()
	if m, ok := f.members[k]; !ok || m.lease != req.GetLeaseId() {
		return nil, status.Error(codes.NotFound, "no such member")
	}
	delete(f.members, k)
	f.notify()
	return &zkcoordv1.DeregisterResponse{}, nil
}

func (s fakeRegistry) WatchGroup(req *zkcoordv1.WatchGroupRequest, stream grpc.ServerStreamingServer[zkcoordv1.WatchGroupResponse]) error {
	return serve(stream.Context(), s.f.watches, req, stream.Send)
}

type fakeElection struct {
	zkcoordv1.UnimplementedElectionServiceServer
	f *fake
}

func (s fakeElection) Campaign(req *zkcoordv1.CampaignRequest, stream grpc.ServerStreamingServer[zkcoordv1.CampaignResponse]) error {
	return serve(stream.Context(), s.f.campaigns, req, stream.Send)
}

func (s fakeElection) Resign(_ context.Context, req *zkcoordv1.ResignRequest) (*zkcoordv1.ResignResponse, error) {
	s.f.resigns <- req
	return &zkcoordv1.ResignResponse{WasLeader: true}, nil
}

func (s fakeElection) Observe(req *zkcoordv1.ObserveRequest, stream grpc.ServerStreamingServer[zkcoordv1.ObserveResponse]) error {
	return serve(stream.Context(), s.f.observes, req, stream.Send)
}

type fakeBarrier struct {
	zkcoordv1.UnimplementedBarrierServiceServer
	f *fake
}

func (s fakeBarrier) AwaitBarrier(req *zkcoordv1.AwaitBarrierRequest, stream grpc.ServerStreamingServer[zkcoordv1.AwaitBarrierResponse]) error {
	return serve(stream.Context(), s.f.barriers, req, stream.Send)
}

func (s fakeBarrier) AwaitGroup(req *zkcoordv1.AwaitGroupRequest, stream grpc.ServerStreamingServer[zkcoordv1.AwaitGroupResponse]) error {
	return serve(stream.Context(), s.f.groups, req, stream.Send)
}

// timeAfter is the deadline of one wait in a test.
func timeAfter() <-chan time.Time { return time.After(testTimeout) }
