// The architecture checks: what docs/ARCHITECTURE.md says of the package
// tree, kept true by tests that fail when the code stops matching it.
package zkcoord_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var updateArch = flag.Bool("update", false, "rewrite docs/ARCHITECTURE.md's package graph from the code")

const module = "github.com/zkcoord/zkcoord"

// harness are the path prefixes of test and tooling packages: product
// code never imports them.
var harness = []string{"internal/testing/", "internal/bench", "cmd/zkcoord-bench", "cmd/zkwriteprobe", "examples", "scripts/"}

func isHarness(p string) bool {
	for _, h := range harness {
		if strings.HasPrefix(p, h) {
			return true
		}
	}
	return false
}

// goList runs go list -json with args and decodes each package.
func goList(t *testing.T, args ...string) []listed {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	var pkgs []listed
	for dec := json.NewDecoder(bytes.NewReader(out)); dec.More(); {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// listed is what go list says of one package.
type listed struct {
	ImportPath string
	Dir        string
	Export     string
	GoFiles    []string
	Imports    []string
}

// packages maps the module's packages (not gen/, by path relative to the
// module) to their imports inside the module; the imports of their
// non-test files, which is what ships.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	for _, p := range goList(t, "./...") {
		name, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok || strings.HasPrefix(name, "gen/") {
			continue
		}
		var deps []string
		for _, i := range p.Imports {
			if d, ok := strings.CutPrefix(i, module+"/"); ok && !strings.HasPrefix(d, "gen/") {
				deps = append(deps, d)
			}
		}
		slices.Sort(deps)
		pkgs[name] = deps
	}
	return pkgs
}

// harnessImports lists each import of a harness package by a product one.
func harnessImports(pkgs map[string][]string) []string {
	var bad []string
	for p, deps := range pkgs {
		if isHarness(p) {
			continue
		}
		for _, d := range deps {
			if isHarness(d) {
				bad = append(bad, p+" imports "+d)
			}
		}
	}
	slices.Sort(bad)
	return bad
}

// TestProductImportsNoHarness: no product package imports a test or
// tooling package (tests may use the harness; what ships may not).
func TestProductImportsNoHarness(t *testing.T) {
	pkgs := packages(t)
	for _, must := range []string{"server", "internal/lease", "internal/testing/zktest", "internal/bench"} {
		if _, ok := pkgs[must]; !ok {
			t.Fatalf("go list did not list %s: the check would see nothing", must)
		}
	}
	for _, v := range harnessImports(pkgs) {
		t.Errorf("product package %s", v)
	}
}

// TestHarnessImportsCheckFails feeds the check a tree that breaks the rule.
func TestHarnessImportsCheckFails(t *testing.T) {
	got := harnessImports(map[string][]string{
		"server":                  {"internal/lease", "internal/testing/zktest"},
		"internal/lease":          {"internal/zkx"},
		"internal/testing/zktest": {"internal/zkx", "internal/testing/proxy"},
		"cmd/zkcoord":             {"internal/bench"},
	})
	want := []string{"cmd/zkcoord imports internal/bench", "server imports internal/testing/zktest"}
	if !slices.Equal(got, want) {
		t.Fatalf("harnessImports = %q, want %q", got, want)
	}
}

// TestArchitectureDoc keeps docs/ARCHITECTURE.md's package graph the one
// go list gives: the page's block between the markers is compared with
// the one rendered from the code (-update rewrites it).
func TestArchitectureDoc(t *testing.T) {
	const page = "docs/ARCHITECTURE.md"
	raw, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- package graph: begin -->\n", "<!-- package graph: end -->\n"
	doc := string(raw)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the package graph markers", page)
	}
	want := graph(packages(t))
	if got := doc[i+len(begin) : j]; got != want {
		if *updateArch {
			if err := os.WriteFile(page, []byte(doc[:i+len(begin)]+want+doc[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("%s's package graph differs from the code's; run go test -run TestArchitectureDoc . -update\nthe code's:\n%s", page, want)
	}
}

// graph renders the product packages as a mermaid flowchart, an edge per
// import that is not implied by others (the transitive reduction: a -> c is
// drawn only when no other import of a leads to c), then lists the harness.
func graph(pkgs map[string][]string) string {
	var product, tools []string
	for p := range pkgs {
		example := p == "examples" || strings.HasPrefix(p, "examples/")
		switch {
		case example && p != "examples/internal/example": // one per example: listed as one line
		case isHarness(p):
			tools = append(tools, p)
		default:
			product = append(product, p)
		}
	}
	slices.Sort(product)
	slices.Sort(tools)
	reach := func(from, to string) bool { // through at least one package between
		seen := map[string]bool{}
		var walk func(p string) bool
		walk = func(p string) bool {
			for _, d := range pkgs[p] {
				if d == to {
					return true
				}
				if !seen[d] {
					seen[d] = true
					if walk(d) {
						return true
					}
				}
			}
			return false
		}
		for _, d := range pkgs[from] {
			if d != to && walk(d) {
				return true
			}
		}
		return false
	}
	id := strings.NewReplacer("/", "_", "-", "_").Replace
	var b strings.Builder
	b.WriteString("```mermaid\nflowchart TD\n")
	for _, p := range product {
		fmt.Fprintf(&b, "  %s[%s]\n", id(p), p)
	}
	for _, p := range product {
		for _, d := range pkgs[p] {
			if !isHarness(d) && !reach(p, d) {
				fmt.Fprintf(&b, "  %s --> %s\n", id(p), id(d))
			}
		}
	}
	b.WriteString("```\n\nThe harness, which no product package imports (TestProductImportsNoHarness):\n\n")
	for _, p := range tools {
		fmt.Fprintf(&b, "- `%s`\n", p)
	}
	b.WriteString("- `examples/...`: one package per example\n")
	return b.String()
}

// sessionReads are the zkx.Session methods that read the session's own
// state, not ZooKeeper: the only ones package server may call.
var sessionReads = []string{"Status", "Watch", "Servers", "Chroot", "Timeout", "Secured"}

// zooKeeperCalls type-checks files (package server, with its imports read
// from export data) and lists each call that reaches ZooKeeper: a method of
// zkx.Session other than sessionReads, or anything of go-zookeeper.
func zooKeeperCalls(t *testing.T, fset *token.FileSet, files []*ast.File, exports map[string]string) []string {
	t.Helper()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}, Uses: map[*ast.Ident]types.Object{}}
	if _, err := (&types.Config{Importer: imp}).Check(module+"/server", fset, files, info); err != nil {
		t.Fatalf("type-check server: %v", err)
	}
	var bad []string
	for sel, s := range info.Selections {
		fn, ok := s.Obj().(*types.Func)
		if !ok {
			continue
		}
		recv := types.TypeString(fn.Type().(*types.Signature).Recv().Type(), nil)
		if strings.HasSuffix(recv, "internal/zkx.Session") && !slices.Contains(sessionReads, fn.Name()) {
			bad = append(bad, fmt.Sprintf("%s: %s.%s", fset.Position(sel.Pos()), recv, fn.Name()))
		}
	}
	for id, obj := range info.Uses {
		if obj.Pkg() != nil && strings.HasPrefix(obj.Pkg().Path(), "github.com/go-zookeeper/") {
			bad = append(bad, fmt.Sprintf("%s: %s.%s", fset.Position(id.Pos()), obj.Pkg().Path(), obj.Name()))
		}
	}
	slices.Sort(bad)
	return bad
}

// serverFiles parses package server's non-test files, and finds the export
// data of everything it imports.
func serverFiles(t *testing.T) (*token.FileSet, []*ast.File, map[string]string) {
	t.Helper()
	exports := map[string]string{}
	var srv listed
	for _, p := range goList(t, "-export", "-deps", "./server") {
		exports[p.ImportPath] = p.Export
		if p.ImportPath == module+"/server" {
			srv = p
		}
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range srv.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(srv.Dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatal("no files in package server")
	}
	return fset, files, exports
}

// TestServerCallsNoZooKeeper: package server translates requests into
// recipe calls; only the recipes talk to ZooKeeper. It may read the
// session's state (health, status), nothing more.
func TestServerCallsNoZooKeeper(t *testing.T) {
	fset, files, exports := serverFiles(t)
	for _, c := range zooKeeperCalls(t, fset, files, exports) {
		t.Errorf("server calls ZooKeeper: %s", c)
	}
}

// TestServerCallsCheckFails adds to package server a file that reads a
// znode through the session, and one that uses go-zookeeper, and sees the
// check find both.
func TestServerCallsCheckFails(t *testing.T) {
	fset, files, exports := serverFiles(t)
	bad, err := parser.ParseFile(fset, "mutant.go", `package server

import (
	"context"

	"github.com/go-zookeeper/zk"
)

func (g *Gateway) mutant(ctx context.Context) {
	g.replica.Session.Get(ctx, "/zkcoord")
	_ = zk.ErrNoNode
}
`, 0)
	if err != nil {
		t.Fatal(err)
	}
	if exports["github.com/go-zookeeper/zk"] == "" {
		t.Fatal("no export data for go-zookeeper")
	}
	got := zooKeeperCalls(t, fset, append(files, bad), exports)
	if len(got) != 2 || !strings.Contains(got[0]+got[1], "zkx.Session.Get") || !strings.Contains(got[0]+got[1], "go-zookeeper/zk.ErrNoNode") {
		t.Fatalf("zooKeeperCalls on the mutant = %q, want its Session.Get and zk.ErrNoNode", got)
	}
}
