package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestModulePaths(t *testing.T) {
	for _, p := range []string{
		"example.com/my-kv", "my-kv", "github.com/Org/kv_store.v2", "example.com/a~b/c+d", "example.com/kv/v2",
	} {
		if err := checkModulePath(p); err != nil {
			t.Errorf("%q: %v, want valid", p, err)
		}
	}
	for p, want := range map[string]string{
		"":                     "empty module path",
		"/example.com/kv":      "leading slash",
		"example.com/kv/":      "trailing slash",
		"-kv":                  "leading dash",
		"example.com//kv":      "empty path element",
		"example.com/./kv":     `invalid path element "."`,
		"example.com/../kv":    `invalid path element ".."`,
		"example.com/.kv":      "begins or ends with a dot",
		"example.com/kv.":      "begins or ends with a dot",
		"example.com/my kv":    `invalid character ' '`,
		`example.com\kv`:       `invalid character '\\'`,
		"example.com/kv@v1":    `invalid character '@'`,
		"example.com/ké":       `invalid character 'é'`,
		"example.com/aux":      "Windows reserves",
		"example.com/com1.txt": "Windows reserves",
		"example.com/kv~1":     "tilde and digits",
		"example.com/\xff":     "invalid UTF-8",
	} {
		err := checkModulePath(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", p, err, want)
		}
	}
}

func TestTextMentions(t *testing.T) {
	r := rewriter{from: "clusterkit.dev/services/kv-sync", to: "example.com/my-kv"}
	for in, want := range map[string]string{
		"clusterkit.dev/services/kv-sync":                                   "example.com/my-kv",
		"import clusterkit.dev/services/kv-sync/client.":                    "import example.com/my-kv/client.",
		"(`clusterkit.dev/services/kv-sync/client`) is":                     "(`example.com/my-kv/client`) is",
		"the module clusterkit.dev/services/kv-sync.\nnext":                 "the module example.com/my-kv.\nnext",
		`records.Record[clusterkit.dev/services/kv-sync/x.V]{}`:             `records.Record[example.com/my-kv/x.V]{}`,
		"clusterkit.dev/services/kv-sync-extra/client":                      "clusterkit.dev/services/kv-sync-extra/client",
		"clusterkit.dev/services/kv-syncer":                                 "clusterkit.dev/services/kv-syncer",
		"clusterkit.dev/services/kv-sync.v2":                                "clusterkit.dev/services/kv-sync.v2",
		"github.com/x/clusterkit.dev/services/kv-sync":                      "github.com/x/clusterkit.dev/services/kv-sync",
		"aclusterkit.dev/services/kv-sync":                                  "aclusterkit.dev/services/kv-sync",
		"clusterkit.dev/services/kv-sync clusterkit.dev/services/kv-sync/a": "example.com/my-kv example.com/my-kv/a",
		"nothing here": "nothing here",
	} {
		if got := string(r.text([]byte(in))); got != want {
			t.Errorf("text(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGoFileRewrite(t *testing.T) {
	r := rewriter{from: "clusterkit.dev/services/kv-sync", to: "zz.example/my-kv"}
	src := `// Package server is clusterkit.dev/services/kv-sync/server.
package server

import (
	"fmt"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/services/kv-sync/client"
	store ` + "`clusterkit.dev/services/kv-sync/internal/store`" + `
	"github.com/labstack/echo/v4"
)

// pkg is built by a test.
const pkg = "clusterkit.dev/services/kv-sync/cmd" /* in clusterkit.dev/services/kv-sync */

var other = "see clusterkit.dev/services/kv-sync/client" // data: kept

var _ = fmt.Sprint(clusterkit.Node{}, client.Client{}, store.Store{}, echo.New(), pkg, other)
`
	want := `// Package server is zz.example/my-kv/server.
package server

import (
	"fmt"

	"clusterkit.dev/clusterkit"
	"github.com/labstack/echo/v4"
	"zz.example/my-kv/client"
	store "zz.example/my-kv/internal/store"
)

// pkg is built by a test.
const pkg = "zz.example/my-kv/cmd" /* in zz.example/my-kv */

var other = "see clusterkit.dev/services/kv-sync/client" // data: kept

var _ = fmt.Sprint(clusterkit.Node{}, client.Client{}, store.Store{}, echo.New(), pkg, other)
`
	got, err := r.goFile("server.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if _, err := r.goFile("bad.go", []byte("package x\nfunc {")); err == nil || !strings.Contains(err.Error(), "bad.go") {
		t.Errorf("a file that does not parse: %v, want an error naming it", err)
	}
	// A file with nothing to rename is returned as it is, even unformatted.
	plain := []byte("package x\nvar  a = 1\n")
	if got, err := r.goFile("plain.go", plain); err != nil || string(got) != string(plain) {
		t.Errorf("goFile(plain) = %q, %v", got, err)
	}
}

func TestRewriteFileKinds(t *testing.T) {
	r := rewriter{from: "a.example/kv", to: "b.example/kv2"}
	for _, c := range []struct {
		name, in, want string
	}{
		{"go.mod", "module a.example/kv\n", "module a.example/kv\n"},
		{"go.sum", "a.example/kv v1 h1:x\n", "a.example/kv v1 h1:x\n"},
		{"README.md", "go get a.example/kv/client\n", "go get b.example/kv2/client\n"},
		{"server/testdata/x.go", "not go: a.example/kv/x {", "not go: b.example/kv2/x {"},
		{"bin.dat", "a.example/kv\x00", "a.example/kv\x00"},
		{"main.go", "package main\n\nimport _ \"a.example/kv/x\"\n", "package main\n\nimport _ \"b.example/kv2/x\"\n"},
	} {
		got, err := rewriteFile(c.name, []byte(c.in), r)
		if err != nil || string(got) != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

// TestRefusals checks that a starter is refused, with an exit status of 1
// and a message naming the problem, for each bad input, and that nothing
// is written: DEST and its parent are as they were.
func TestRefusals(t *testing.T) {
	repo := repoRoot(t)
	parent := t.TempDir()
	full := filepath.Join(parent, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(parent, "fresh")
	before := listDir(t, parent)

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown strategy", []string{"-strategy", "quorum", "-dest", fresh, "-module", "example.com/kv"},
			`unknown STRATEGY "quorum": want one of async, server-side, sync`},
		{"no strategy", []string{"-dest", fresh, "-module", "example.com/kv"}, "no STRATEGY given"},
		{"no module", []string{"-strategy", "sync", "-dest", fresh}, "no MODULE given"},
		{"bad module", []string{"-strategy", "sync", "-dest", fresh, "-module", "example.com/my kv"},
			`MODULE: module path "example.com/my kv": invalid character ' '`},
		{"module the copy requires", []string{"-strategy", "sync", "-dest", fresh, "-module", "clusterkit.dev/services/kit"},
			"MODULE clusterkit.dev/services/kit is a module the copy requires"},
		{"no dest", []string{"-strategy", "sync", "-module", "example.com/kv"}, "no DEST given"},
		{"dest not empty", []string{"-strategy", "sync", "-dest", full, "-module", "example.com/kv"},
			"DEST " + full + " exists and is not empty"},
		{"dest a file", []string{"-strategy", "sync", "-dest", file, "-module", "example.com/kv"},
			"DEST " + file + " exists and is not a directory"},
		{"dest inside the service", []string{"-strategy", "async", "-dest", filepath.Join(repo, "services", "kv-async", "x"), "-module", "example.com/kv"},
			"is inside the service it copies"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), append([]string{"-repo", repo}, c.args...), &stdout, &stderr)
			if code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), c.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if after := listDir(t, parent); !slices.Equal(after, before) {
				t.Errorf("%s holds %q, was %q", parent, after, before)
			}
			if data, err := os.ReadFile(filepath.Join(full, "keep.txt")); err != nil || string(data) != "mine" {
				t.Errorf("keep.txt: %q, %v", data, err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(repo, "services", "kv-async", "x")); !os.IsNotExist(err) {
		t.Errorf("a refused DEST inside the service was created: %v", err)
	}

	var stderr strings.Builder
	if code := run(context.Background(), []string{"-strategy", "sync", "extra"}, &strings.Builder{}, &stderr); code != 2 {
		t.Errorf("an extra argument: exit status %d, want 2 (%s)", code, stderr.String())
	}
}

// TestFailedCopyLeavesNothing makes the go command fail after the files
// are copied and checks that neither DEST nor the temporary copy remains.
func TestFailedCopyLeavesNothing(t *testing.T) {
	repo := repoRoot(t)
	parent := t.TempDir()
	dest := filepath.Join(parent, "my-kv")
	// A go command that reads go.mod but fails to edit it.
	fake := filepath.Join(t.TempDir(), "go")
	script := "#!/bin/sh\nif [ \"$3\" = -json ]; then exec go \"$@\"; fi\necho 'edit refused' >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := makeStarter(context.Background(), config{Repo: repo, Strategy: "sync", Dest: dest, Module: "example.com/kv", Go: fake})
	if err == nil || !strings.Contains(err.Error(), "edit refused") {
		t.Fatalf("makeStarter: %v, want the go command's failure", err)
	}
	if got := listDir(t, parent); len(got) != 0 {
		t.Errorf("%s holds %q after a failed copy, want nothing", parent, got)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestSourceFiles checks which files a copy takes: in a git work tree the
// tracked ones still present and the untracked ones git does not ignore;
// elsewhere every file.
func TestSourceFiles(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		".gitignore":        "/kv\n",
		"main.go":           "package main\n",
		"kv":                "a built binary",
		"server/new.go":     "package server\n",
		"server/gone.go":    "package server\n",
		"server/testdata/x": "data",
	} {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	all := []string{".gitignore", "kv", "main.go", "server/gone.go", "server/new.go", "server/testdata/x"}
	if got, err := sourceFiles(ctx, dir); err != nil || !slices.Equal(got, all) {
		t.Errorf("outside git: %q, %v; want %q", got, err, all)
	}

	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git("init", "-q")
	git("add", ".gitignore", "main.go", "server/gone.go", "server/testdata/x")
	git("commit", "-q", "-m", "files")
	if err := os.Remove(filepath.Join(dir, "server", "gone.go")); err != nil {
		t.Fatal(err)
	}
	want := []string{".gitignore", "main.go", "server/new.go", "server/testdata/x"}
	if got, err := sourceFiles(ctx, filepath.Join(dir)); err != nil || !slices.Equal(got, want) {
		t.Errorf("in git: %q, %v; want %q", got, err, want)
	}
}
