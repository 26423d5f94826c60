package barrier

import (
	"context"
	"fmt"
)

// Names lists the barriers that exist, sorted (for operators).
func (b *Barriers) Names(ctx context.Context) ([]string, error) {
	names, err := b.sess.Names(ctx, b.lay.Barrier(""))
	if err != nil {
		return nil, fmt.Errorf("barrier: list barriers: %w", err)
	}
	return names, nil
}
