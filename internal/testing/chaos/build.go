package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Build compiles ./cmd/zkcoord into dir and returns the binary's path. It
// builds from this module's root, found by `go env GOMOD` run next to this
// source file (or in the working directory when the source is not on disk,
// under -trimpath). Cancelling ctx kills the compiler.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin, err := filepath.Abs(filepath.Join(dir, "zkcoord"))
	if err != nil {
		return "", fmt.Errorf("chaos: build: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/zkcoord")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: go build ./cmd/zkcoord in %s: %w\n%s", root, err, out)
	}
	return bin, nil
}

// moduleRoot returns the directory of the go.mod this package belongs to.
func moduleRoot(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOMOD")
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if _, err := os.Stat(file); err == nil {
			cmd.Dir = filepath.Dir(file)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("chaos: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("chaos: not in a Go module (directory %q); run from the zkcoord module", cmd.Dir)
	}
	return filepath.Dir(gomod), nil
}
