package client

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	zkcoordv1 "github.com/zkcoord/zkcoord/gen/zkcoord/v1"
)

func TestAwaitBarrierRejoinsAsTheSameParticipant(t *testing.T) {
	s, f := newSession(t)
	type result struct {
		id  string
		err error
	}
	res := make(chan result, 1)
	var progress [][2]int
	go func() {
		id, err := s.AwaitBarrier(t.Context(), "b", 3, WithProgress(func(have, want int) { progress = append(progress, [2]int{have, want}) }))
		res <- result{id, err}
	}()
	b := next(t, f.barriers)
	if b.req.GetBarrier() != "b" || b.req.GetThreshold() != 3 || b.req.GetLeaseId() != s.Lease() || b.req.GetParticipantId() != "" {
		t.Fatalf("request %v", b.req)
	}
	b.send(t, &zkcoordv1.AwaitBarrierResponse{Arrived: 1, Threshold: 3, ParticipantId: "p-9"})
	b.fail(t, status.Error(codes.Unavailable, "gateway restarting"))
	b = next(t, f.barriers)
	if b.req.GetParticipantId() != "p-9" {
		t.Fatalf("rejoined as %q, want p-9", b.req.GetParticipantId())
	}
	b.send(t, &zkcoordv1.AwaitBarrierResponse{Arrived: 2, Threshold: 3, ParticipantId: "p-9"})
	b.send(t, &zkcoordv1.AwaitBarrierResponse{Arrived: 3, Threshold: 3, Released: true, ParticipantId: "p-9"})
	r := next(t, res)
	if r.err != nil || r.id != "p-9" {
		t.Fatalf("AwaitBarrier = %q, %v", r.id, r.err)
	}
	if want := [][2]int{{1, 3}, {2, 3}, {3, 3}}; !slices.Equal(progress, want) {
		t.Fatalf("progress %v, want %v", progress, want)
	}
}

func TestAwaitBarrierCancel(t *testing.T) {
	s, f := newSession(t)
	ctx, cancel := context.WithCancel(t.Context())
	res := make(chan error, 1)
	go func() {
		_, err := s.AwaitBarrier(ctx, "b", 2)
		res <- err
	}()
	b := next(t, f.barriers)
	b.send(t, &zkcoordv1.AwaitBarrierResponse{Arrived: 1, Threshold: 2, ParticipantId: "p-1"})
	cancel()
	b.wait(t) // the gateway sees the participant give up
	if err := next(t, res); !errors.Is(err, context.Canceled) {
		t.Fatalf("AwaitBarrier = %v, want context.Canceled", err)
	}
}

func TestAwaitGroup(t *testing.T) {
	c, f := newFake(t)
	res := make(chan error, 1)
	go func() { res <- c.AwaitGroup(t.Context(), "g", 2) }()
	g := next(t, f.groups)
	if g.req.GetGroup() != "g" || g.req.GetMinMembers() != 2 {
		t.Fatalf("request %v", g.req)
	}
	g.send(t, &zkcoordv1.AwaitGroupResponse{Members: 1, MinMembers: 2})
	g.send(t, &zkcoordv1.AwaitGroupResponse{Members: 2, MinMembers: 2, Ready: true})
	if err := next(t, res); err != nil {
		t.Fatal(err)
	}

	go func() { res <- c.AwaitGroup(t.Context(), ".bad", 2) }()
	next(t, f.groups).fail(t, status.Error(codes.InvalidArgument, "bad group name"))
	if err := next(t, res); Code(err) != codes.InvalidArgument {
		t.Fatalf("AwaitGroup = %v, want InvalidArgument", err)
	}
}
