package election

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// Names lists the elections that exist, sorted (for operators).
func (e *Elections) Names(ctx context.Context) ([]string, error) {
	names, err := e.sess.Names(ctx, e.lay.Elections())
	if err != nil {
		return nil, fmt.Errorf("election: list elections: %w", err)
	}
	return names, nil
}

// Queue lists an election's candidates' znode names in campaign order:
// the leader first, then each one's successor. An election never entered
// has none.
func (e *Elections) Queue(ctx context.Context, election string) ([]string, error) {
	cands, _, err := e.list(ctx, election)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("election: list %s: %w", election, err)
	}
	out := make([]string, len(cands))
	for i, c := range cands {
		out[i] = c.name
	}
	return out, nil
}
