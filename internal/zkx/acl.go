package zkx

import (
	"context"
	"fmt"
)

// CheckSecured refuses a root that a session with digest credentials
// cannot keep to itself: every entry of the root's ACL must be the
// session's digest identity. Without credentials there is nothing to check.
func (s *Session) CheckSecured(ctx context.Context, root string) error {
	if !s.Secured() {
		return nil
	}
	acl, _, err := s.GetACL(ctx, root)
	if err != nil {
		return fmt.Errorf("zkx: read the ACL of root %s (do the credentials match it?): %w", root, err)
	}
	want := s.ACL()[0]
	for _, a := range acl {
		if a.Scheme != want.Scheme || a.ID != want.ID {
			return fmt.Errorf("zkx: root %s is not secured: its ACL grants %s:%s; with ZooKeeper credentials, "+
				"choose a new --root (zkcoord creates it readable and writable by those credentials only) "+
				"or restrict its ACL to them (setAcl %s digest:%s:cdrwa)", root, a.Scheme, a.ID, root, want.ID)
		}
	}
	return nil
}
