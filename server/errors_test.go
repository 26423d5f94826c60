package server

import (
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zkcoord/zkcoord/internal/registry"
)

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
