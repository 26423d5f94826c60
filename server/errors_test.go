package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-zookeeper/zk"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zkcoord/zkcoord/internal/barrier"
	"github.com/zkcoord/zkcoord/internal/election"
	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/lease/peer"
	"github.com/zkcoord/zkcoord/internal/registry"
)

// TestToStatus: errors that recipes return wrapped (as handlers see them)
// become their code from the table; ZooKeeper's transient errors become
// UNAVAILABLE; statuses pass through; anything else is INTERNAL.
func TestToStatus(t *testing.T) {
	for _, c := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("%w: b", barrier.ErrConflict), codes.Aborted},
		{fmt.Errorf("%w: b/p", barrier.ErrNotParticipant), codes.NotFound},
		{fmt.Errorf("election: campaign e: %w", election.ErrConflict), codes.Aborted},
		{fmt.Errorf("%w: adopting k", lease.ErrContended), codes.Aborted},
		{fmt.Errorf("%w: \"x\" may not use it", lease.ErrNotHolder), codes.PermissionDenied},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("x: %w", zk.ErrConnectionClosed), codes.Unavailable},
		{fmt.Errorf("%w: replica r1: read its address: zk: not authenticated", peer.ErrUnreachable), codes.Unavailable},
		{status.Error(codes.InvalidArgument, "bad"), codes.InvalidArgument},
		{errors.New("something unforeseen"), codes.Internal},
	} {
		if got := status.Code(toStatus(c.err)); got != c.want {
			t.Errorf("toStatus(%q) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestRegistryErrorCodes: every error of the registry that can reach a
// client has its code, wrapped as the registry wraps it; none comes out as
// INTERNAL or UNKNOWN. (registry.ErrWatchClosed is reported only to the
// handler that closed its own watch.)
func TestRegistryErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{registry.ErrMemberExists, codes.AlreadyExists},
		{registry.ErrMemberNotFound, codes.NotFound},
		{registry.ErrNotOwner, codes.PermissionDenied},
		{registry.ErrConflict, codes.Aborted},
		{registry.ErrSlowWatcher, codes.ResourceExhausted},
		{registry.ErrCacheStopped, codes.Unavailable},
		{registry.ErrClosed, codes.Unavailable},
	} {
		err := fmt.Errorf("watch g: registry: group g: %w", tc.err)
		if got := status.Code(toStatus(err)); got != tc.code {
			t.Errorf("%v: %v, want %v", tc.err, got, tc.code)
		}
	}
}
