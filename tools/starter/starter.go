package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// config is what a starter is made from.
type config struct {
	// Repo is the root of the ClusterKit repository (where go.work is).
	Repo string
	// Strategy names the service to copy: services/kv-<Strategy>.
	Strategy string
	// Dest is the directory to create; it may exist if empty.
	Dest string
	// Module is the module path of the copy.
	Module string
	// Go is the go command; "go" when empty.
	Go string
}

// replacement is a replace directive of the copy's go.mod: Old (a module
// path, with "@version" when the source's directive had one) => Dir.
type replacement struct {
	Old, Dir string
}

// result is what makeStarter made.
type result struct {
	From, To     string // module paths
	Repo         string
	Source, Dest string // directories
	Replacements []replacement
	Files        int // files copied
	Rewritten    int // of which rewritten
}

// strategies lists the services a starter can copy: the kv-* modules under
// services/, by the part of their directory name after "kv-".
func strategies(repo string) ([]string, error) {
	dirs, err := filepath.Glob(filepath.Join(repo, "services", "kv-*", "go.mod"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range dirs {
		names = append(names, strings.TrimPrefix(filepath.Base(filepath.Dir(d)), "kv-"))
	}
	slices.Sort(names)
	return names, nil
}

// makeStarter copies the service of cfg.Strategy to cfg.Dest as the module
// cfg.Module: its module path and the imports of its packages renamed in
// every file (see copyModule), and each of its go.mod's replace directives
// that names a local directory (the library, the kit) pointed at that
// directory's absolute path, so that the copy builds wherever it is put on
// this machine. It writes the copy into a new directory next to Dest and
// renames it to Dest at the end: on an error Dest is left as it was.
func makeStarter(ctx context.Context, cfg config) (*result, error) {
	if cfg.Go == "" {
		cfg.Go = "go"
	}
	if cfg.Repo == "" {
		return nil, errors.New("no repository given")
	}
	repo, err := filepath.Abs(cfg.Repo)
	if err != nil {
		return nil, err
	}
	known, err := strategies(repo)
	if err != nil {
		return nil, err
	}
	if len(known) == 0 {
		return nil, fmt.Errorf("%s holds no services/kv-*/go.mod: not the ClusterKit repository", repo)
	}
	if !slices.Contains(known, cfg.Strategy) {
		if cfg.Strategy == "" {
			return nil, fmt.Errorf("no STRATEGY given: want one of %s", strings.Join(known, ", "))
		}
		return nil, fmt.Errorf("unknown STRATEGY %q: want one of %s", cfg.Strategy, strings.Join(known, ", "))
	}
	if cfg.Module == "" {
		return nil, errors.New("no MODULE given: the module path of the copy, e.g. example.com/my-kv")
	}
	if err := checkModulePath(cfg.Module); err != nil {
		return nil, fmt.Errorf("MODULE: %w", err)
	}
	if cfg.Dest == "" {
		return nil, errors.New("no DEST given: the directory to create, e.g. ../my-kv")
	}
	dest, err := filepath.Abs(cfg.Dest)
	if err != nil {
		return nil, err
	}
	source := filepath.Join(repo, "services", "kv-"+cfg.Strategy)
	if within(dest, source) {
		return nil, fmt.Errorf("DEST %s is inside the service it copies (%s)", dest, source)
	}
	if err := checkDest(dest); err != nil {
		return nil, err
	}

	mod, err := readGoMod(ctx, cfg.Go, source)
	if err != nil {
		return nil, err
	}
	for _, req := range mod.Require {
		if req.Path == cfg.Module {
			return nil, fmt.Errorf("MODULE %s is a module the copy requires: choose another path", cfg.Module)
		}
	}
	var reps []replacement
	for _, rep := range mod.Replace {
		if rep.New.Version != "" {
			continue // a module version, valid anywhere
		}
		dir := rep.New.Path
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(source, dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
			return nil, fmt.Errorf("%s/go.mod: replace %s => %s: %w", source, rep.Old.Path, rep.New.Path, err)
		}
		old := rep.Old.Path
		if rep.Old.Version != "" {
			old += "@" + rep.Old.Version
		}
		reps = append(reps, replacement{Old: old, Dir: dir})
	}

	files, err := sourceFiles(ctx, source)
	if err != nil {
		return nil, fmt.Errorf("list the files of %s: %w", source, err)
	}
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dest)+".starter-")
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp)
		}
	}()
	st, err := copyModule(ctx, source, tmp, files, rewriter{from: mod.Module.Path, to: cfg.Module})
	if err != nil {
		return nil, err
	}
	args := []string{"mod", "edit", "-module=" + cfg.Module}
	for _, rep := range reps {
		args = append(args, "-replace="+rep.Old+"="+rep.Dir)
	}
	if _, err := goCmd(ctx, cfg.Go, tmp, args...); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	// An empty directory at dest gives way; rmdir refuses one that is not
	// empty, so nothing that appeared there since checkDest is lost.
	if err := os.Remove(dest); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("DEST %s: %w", dest, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return nil, err
	}
	done = true
	return &result{
		From: mod.Module.Path, To: cfg.Module,
		Repo:   repo,
		Source: source, Dest: dest,
		Replacements: reps,
		Files:        st.files, Rewritten: st.rewritten,
	}, nil
}

// checkDest refuses a destination that exists and is not an empty
// directory.
func checkDest(dest string) error {
	info, err := os.Stat(dest)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("DEST %s: %w", dest, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("DEST %s exists and is not a directory", dest)
	}
	entries, err := os.ReadDir(dest)
	if err != nil {
		return fmt.Errorf("DEST %s: %w", dest, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("DEST %s exists and is not empty (%d entries): choose a new directory", dest, len(entries))
	}
	return nil
}

// within reports whether path is dir or lies under it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// goMod is the part of `go mod edit -json` a starter reads.
type goMod struct {
	Module struct {
		Path string
	}
	Require []struct {
		Path string
	}
	Replace []struct {
		Old, New struct {
			Path, Version string
		}
	}
}

// readGoMod reads the go.mod of the module in dir.
func readGoMod(ctx context.Context, gocmd, dir string) (*goMod, error) {
	out, err := goCmd(ctx, gocmd, dir, "mod", "edit", "-json")
	if err != nil {
		return nil, err
	}
	var m goMod
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("%s/go.mod: %w", dir, err)
	}
	if m.Module.Path == "" {
		return nil, fmt.Errorf("%s/go.mod: no module path", dir)
	}
	return &m, nil
}

// goCmd runs the go command in dir, outside any workspace, and returns its
// standard output.
func goCmd(ctx context.Context, gocmd, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, gocmd, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s (in %s): %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// report writes what makeStarter made and how to go on.
func (r *result) report(w io.Writer) {
	fmt.Fprintf(w, "%s copied to %s as module %s (%d files, %d rewritten)\n", r.Source, r.Dest, r.To, r.Files, r.Rewritten)
	for _, rep := range r.Replacements {
		fmt.Fprintf(w, "  replace %s => %s\n", rep.Old, rep.Dir)
	}
	env := ""
	if within(r.Dest, r.Repo) {
		fmt.Fprintf(w, "note: %s is inside the repository's workspace (go.work): add it with `go work use` or build it with GOWORK=off\n", r.Dest)
		env = "GOWORK=off "
	}
	fmt.Fprintf(w, "next: cd %s && %sgo build ./... && %sgo test ./...\n", r.Dest, env, env)
}
