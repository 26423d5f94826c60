package chaosrun

import (
	"bufio"
	"encoding/json"
	"os"
	"time"

	"github.com/zkcoord/zkcoord/internal/testing/checker"
)

// writeTruth writes t's changes to path, one JSON change per line, after a
// first line that says how far it is complete.
func writeTruth(path string, t *checker.Truth) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	head := struct {
		Group   string    `json:"group"`
		Known   int64     `json:"known"`
		KnownAt time.Time `json:"known_at"`
		Gap     string    `json:"gap,omitempty"`
	}{t.Group, t.Known, t.KnownAt, t.Gap}
	if err := enc.Encode(head); err != nil {
		f.Close()
		return err
	}
	for _, c := range t.Changes {
		if err := enc.Encode(c); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeHistory writes h to path, one JSON event per line.
func writeHistory(path string, h *checker.History) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, ev := range h.Events() {
		if err := enc.Encode(ev); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
