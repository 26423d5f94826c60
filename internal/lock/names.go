package lock

import (
	"context"
	"fmt"
)

// Names lists the locks that exist, sorted (for operators). A lock's
// directory stays when its queue empties.
func (l *Locks) Names(ctx context.Context) ([]string, error) {
	names, err := l.sess.Names(ctx, l.lay.Locks())
	if err != nil {
		return nil, fmt.Errorf("lock: list locks: %w", err)
	}
	return names, nil
}
