package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/zkcoord/zkcoord/gen/zkcoord/v1" // registers the services
)

// TestEveryRPCHasACommand walks every method of every zkcoord.v1 service
// in the proto registry: each must be called by a command (commandRPCs),
// each command named there must exist, and each method named must exist.
func TestEveryRPCHasACommand(t *testing.T) {
	covered := map[string]bool{}
	root := newRoot(nil, io.Discard, io.Discard)
	for path, methods := range commandRPCs {
		cmd, rest, err := root.Find(strings.Fields(path))
		if err != nil || len(rest) != 0 || cmd.CommandPath() != "zkcoord "+path {
			t.Errorf("commandRPCs names %q, which is no command (found %q, args %q, %v)", path, cmd.CommandPath(), rest, err)
		}
		for _, m := range methods {
			covered["zkcoord.v1."+m] = true
		}
	}
	var all []string
	protoregistry.GlobalFiles.RangeFilesByPackage("zkcoord.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				all = append(all, string(sd.Methods().Get(j).FullName()))
			}
		}
		return true
	})
	if len(all) < 35 { // the 35 methods of 8 services when this test was written
		t.Fatalf("found %d zkcoord.v1 methods in the registry: %v", len(all), all)
	}
	for _, m := range all {
		if !covered[m] {
			t.Errorf("no command calls %s: add one, and name it in commandRPCs", m)
		}
	}
	for m := range covered {
		if !slices.Contains(all, m) {
			t.Errorf("commandRPCs names %s, which is no zkcoord.v1 method", m)
		}
	}
}
