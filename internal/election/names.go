package election

import (
	"context"
	"fmt"
)

// Names lists the elections that exist, sorted (for operators).
func (e *Elections) Names(ctx context.Context) ([]string, error) {
	names, err := e.sess.Names(ctx, e.lay.Elections())
	if err != nil {
		return nil, fmt.Errorf("election: list elections: %w", err)
	}
	return names, nil
}

// Candidates counts an election's candidates, the leader included.
func (e *Elections) Candidates(ctx context.Context, election string) (int, error) {
	kids, err := e.sess.Names(ctx, e.lay.Election(election))
	if err != nil {
		return 0, fmt.Errorf("election: list %s: %w", election, err)
	}
	return len(kids), nil
}
