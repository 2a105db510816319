package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/obolus/obolus"

// core packages hold the attribution logic and the canonical records. They
// know neither Kafka nor SQL nor the configuration: sources, stores and the
// CLI convert at the edge and import them, never the other way round.
// internal/stream/worker is the streaming adapter, not core.
var core = []string{
	module + "/enrich",
	module + "/schemas",
	module + "/internal/stream",
	// internal/budget evaluates budgets for the report and, later, the stream.
	module + "/internal/budget",
}

// forbiddenForCore lists what a core package must not import, directly or
// transitively. An entry covers its subpackages too, except database/sql,
// which is matched exactly.
var forbiddenForCore = []string{
	module + "/ingest",
	module + "/sink",
	module + "/internal/config",
	module + "/cmd",
	"github.com/segmentio/kafka-go",
	"github.com/databricks/databricks-sql-go",
	"github.com/duckdb/duckdb-go/v2",
}

// configImporters are the packages that import internal/config (non-test
// files): the CLI, the composition root, and two fixture packages that turn
// a generated workload into a local warehouse and its databricks section
// (for tests and obolus warehouse serve). Every other package takes its own
// option struct. The list only shrinks: the test fails when a package not
// listed imports internal/config, and when a listed one no longer does.
var configImporters = []string{
	module + "/cmd/obolus",
	module + "/internal/app",
	module + "/internal/dbsql/dbsqltest",
	module + "/internal/dbsql/workload",
}

// listed is one package of `go list -deps -json`.
type listed struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	DepOnly      bool
}

// TestImportDirection checks the import rules on the packages' non-test
// files (tests may wire real adapters; only the cmd rule covers them too).
// Each violation is reported as "A imports B: rule".
func TestImportDirection(t *testing.T) {
	pkgs := goList(t)
	own := func(p string) bool { return under(p, module) }

	for _, c := range core {
		if pkgs[c] == nil {
			t.Fatalf("core package %s not found by go list: update this test", c)
		}
	}

	for _, c := range core {
		for _, v := range reachable(pkgs, c) {
			if forbiddenFor(v.pkg) {
				t.Errorf("%s imports %s: core packages know no source, store, configuration, CLI, Kafka or SQL (via %s)",
					short(c), short(v.pkg), strings.Join(mapSlice(v.path, short), " → "))
			}
		}
	}

	for _, imp := range pkgs[module+"/schemas"].Imports {
		if own(imp) {
			t.Errorf("%s imports %s: schemas imports no other obolus package", short(module+"/schemas"), short(imp))
		}
	}

	allowed := map[string]bool{}
	for _, p := range configImporters {
		allowed[p] = true
	}
	importsConfig := map[string]bool{}
	for _, p := range sortedKeys(pkgs) {
		l := pkgs[p]
		if l.DepOnly || !own(p) {
			continue
		}
		for _, imp := range slices.Concat(l.Imports, l.TestImports, l.XTestImports) {
			if under(imp, module+"/cmd") && imp != p {
				t.Errorf("%s imports %s: no package imports cmd/...", short(p), short(imp))
			}
		}
		if slices.Contains(l.Imports, module+"/internal/config") {
			importsConfig[p] = true
			if !allowed[p] {
				t.Errorf("%s imports internal/config: only the packages in configImporters may, and that list only shrinks (pass the values as parameters instead)", short(p))
			}
		}
	}
	for _, p := range configImporters {
		if !importsConfig[p] {
			t.Errorf("%s no longer imports internal/config: delete it from configImporters (the list only shrinks)", short(p))
		}
	}
}

func forbiddenFor(p string) bool {
	if p == "database/sql" {
		return true
	}
	for _, f := range forbiddenForCore {
		if under(p, f) {
			return true
		}
	}
	return false
}

// under reports whether p is root or a package below it.
func under(p, root string) bool { return p == root || strings.HasPrefix(p, root+"/") }

func short(p string) string { return strings.TrimPrefix(p, module+"/") }

type dep struct {
	pkg  string
	path []string // from the start package to pkg, both included
}

// reachable returns every package from imports, in breadth-first order, each
// with one shortest import path.
func reachable(pkgs map[string]*listed, from string) []dep {
	prev := map[string]string{from: ""}
	queue := []string{from}
	var out []dep
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != from {
			var path []string
			for q := p; q != ""; q = prev[q] {
				path = append(path, q)
			}
			slices.Reverse(path)
			out = append(out, dep{pkg: p, path: path})
		}
		l := pkgs[p]
		if l == nil {
			continue
		}
		for _, imp := range l.Imports {
			if _, seen := prev[imp]; !seen {
				prev[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return out
}

// goList runs `go list -deps -json ./...` in the module root.
func goList(t *testing.T) map[string]*listed {
	t.Helper()
	root := moduleRoot(t)
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,TestImports,XTestImports,DepOnly", "./...")
	cmd.Dir = root
	// The module is built with cgo (DuckDB); list the graph that build sees.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	pkgs := map[string]*listed{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var l listed
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[l.ImportPath] = &l
	}
	return pkgs
}

// moduleRoot walks up from the working directory to the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func mapSlice(s []string, f func(string) string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}
