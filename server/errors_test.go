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
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("x: %w", zk.ErrConnectionClosed), codes.Unavailable},
		{status.Error(codes.InvalidArgument, "bad"), codes.InvalidArgument},
		{errors.New("something unforeseen"), codes.Internal},
	} {
		if got := status.Code(toStatus(c.err)); got != c.want {
			t.Errorf("toStatus(%q) = %v, want %v", c.err, got, c.want)
		}
	}
}
