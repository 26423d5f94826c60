package server

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zkcoord/zkcoord/internal/lease"
	"github.com/zkcoord/zkcoord/internal/lease/peer"
)

// TestPeerStatus: the PeerService answers lease.ErrNotHolder with
// PERMISSION_DENIED and the ErrorInfo that tells the forwarding replica it
// is the caller's (peer.NotHolderDetail), and other errors plainly; a
// peer's refusal of this replica's credentials reaches the client as
// UNAVAILABLE.
func TestPeerStatus(t *testing.T) {
	st := status.Convert(peerStatus(fmt.Errorf("%w: %q may not use it", lease.ErrNotHolder, "web")))
	want := peer.NotHolderDetail()
	found := false
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetDomain() == want.GetDomain() && ei.GetReason() == want.GetReason() {
			found = true
		}
	}
	if st.Code() != codes.PermissionDenied || !found {
		t.Errorf("the PeerService's ErrNotHolder: %v %v, want PERMISSION_DENIED with %v", st.Code(), st.Details(), want)
	}
	if st := status.Convert(peerStatus(lease.ErrNotFound)); st.Code() != codes.NotFound || len(st.Details()) != 0 {
		t.Errorf("the PeerService's ErrNotFound: %v", st)
	}
	if c := status.Code(toStatus(fmt.Errorf("%w by replica r7", peer.ErrRefused))); c != codes.Unavailable || !errors.Is(peer.ErrRefused, peer.ErrRefused) {
		t.Errorf("a refused peer: %v, want UNAVAILABLE", c)
	}
}
