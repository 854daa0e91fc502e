package main

import (
	"bytes"
	"context"
	"flag"
	"go/format"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// full makes TestCopiesBuildAndPass run each copy's whole test suite with
// -race instead of one cluster test (make test-starter).
var full = flag.Bool("full", false, "run the copies' whole test suites")

// fastTests names, per strategy, one test of the service that starts a real
// 3-node cluster and writes and reads through it: the test run in each copy
// unless -full.
var fastTests = map[string]string{
	"sync":        "./server/:TestEveryOwnerHoldsEveryAcknowledgedWrite",
	"async":       "./server/:TestWriteThenReadFromEveryOwner",
	"server-side": "./server/:TestEveryOwnerHoldsEveryAcknowledgedWrite",
}

// repoRoot is the repository holding this module.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("no go.work two levels up: %v", err)
	}
	return root
}

// TestCopiesBuildAndPass makes a starter of each service in a temporary
// directory outside the repository, as a user would, and checks that the
// copy is a module of its own: renamed everywhere, pointed at this
// repository's library and kit, and that it builds, vets (which
// type-checks every test file too) and passes a cluster test (or, with
// -full, its whole suite) with no workspace and its go.sum as copied.
func TestCopiesBuildAndPass(t *testing.T) {
	repo := repoRoot(t)
	known, err := strategies(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range known {
		if _, ok := fastTests[s]; !ok {
			t.Errorf("services/kv-%s has no fast test named here: add one to fastTests", s)
		}
	}
	for i, s := range known {
		t.Run(s, func(t *testing.T) {
			// An existing empty directory is a valid DEST, as is a new one.
			dest := t.TempDir()
			if i%2 == 1 {
				dest = filepath.Join(dest, "my-kv")
			}
			const module = "example.com/my-kv"
			res, err := makeStarter(context.Background(), config{Repo: repo, Strategy: s, Dest: dest, Module: module})
			if err != nil {
				t.Fatal(err)
			}
			checkCopy(t, repo, res)

			run := func(args ...string) string {
				t.Helper()
				start := time.Now()
				cmd := exec.Command("go", args...)
				cmd.Dir = dest
				cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("go %s in the copy: %v\n%s", strings.Join(args, " "), err, out)
				}
				t.Logf("go %s: %.1fs", strings.Join(args, " "), time.Since(start).Seconds())
				return string(out)
			}
			run("build", "./...")
			run("vet", "./...")
			if *full {
				out := run("test", "-race", "-count=1", "-timeout", "20m", "./...")
				for line := range strings.Lines(out) {
					if strings.HasPrefix(line, "ok ") {
						t.Log(strings.TrimSpace(line))
					}
				}
				return
			}
			pkg, name, _ := strings.Cut(fastTests[s], ":")
			// With -race, as make test builds the library's, the kit's
			// and their test helpers' packages before this one: the copy
			// compiles only its own.
			out := run("test", "-race", "-count=1", "-v", "-run", "^"+name+"$", pkg)
			if !strings.Contains(out, "--- PASS: "+name+" ") {
				t.Fatalf("%s did not run in the copy's %s (renamed or moved?):\n%s", name, pkg, out)
			}
		})
	}
}

// checkCopy checks the files of a copy: its go.mod names the new module and
// points the library and the kit at this repository, no file mentions the
// service's module path any more, and every Go file is gofmt-ed.
func checkCopy(t *testing.T, repo string, res *result) {
	t.Helper()
	mod, err := readGoMod(context.Background(), "go", res.Dest)
	if err != nil {
		t.Fatal(err)
	}
	if mod.Module.Path != res.To {
		t.Errorf("go.mod: module %s, want %s", mod.Module.Path, res.To)
	}
	wantDirs := map[string]string{
		"clusterkit.dev/clusterkit":   filepath.Join(repo, "clusterkit"),
		"clusterkit.dev/services/kit": filepath.Join(repo, "services", "kit"),
	}
	for _, rep := range mod.Replace {
		want, ok := wantDirs[rep.Old.Path]
		if !ok {
			t.Errorf("go.mod: unexpected replace %s => %s", rep.Old.Path, rep.New.Path)
			continue
		}
		if rep.New.Path != want {
			t.Errorf("go.mod: replace %s => %s, want %s", rep.Old.Path, rep.New.Path, want)
		}
		delete(wantDirs, rep.Old.Path)
	}
	for old := range wantDirs {
		t.Errorf("go.mod: no replace for %s", old)
	}
	err = filepath.WalkDir(res.Dest, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(res.Dest, path)
		if bytes.Contains(data, []byte(res.From)) {
			t.Errorf("%s still mentions %s", rel, res.From)
		}
		if strings.HasSuffix(path, ".go") && !inTestdata(filepath.ToSlash(rel)) {
			formatted, err := format.Source(data)
			if err != nil {
				return err
			}
			if !bytes.Equal(formatted, data) {
				t.Errorf("%s is not gofmt-ed", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files == 0 || res.Rewritten == 0 {
		t.Errorf("%d files copied, %d rewritten", res.Files, res.Rewritten)
	}
}
