package semaphore

import (
	"context"
	"fmt"
)

// Names lists the semaphores that exist, sorted (for operators).
func (s *Semaphores) Names(ctx context.Context) ([]string, error) {
	names, err := s.sess.Names(ctx, s.lay.Semaphores())
	if err != nil {
		return nil, fmt.Errorf("semaphore: list semaphores: %w", err)
	}
	return names, nil
}
