// Command starter copies one of the ClusterKit services as the start of a
// new system: a module of its own, outside this repository, that builds and
// passes its tests there.
//
//	starter -strategy sync|async|server-side -dest DIR -module PATH [-repo DIR]
//
// It copies services/kv-<strategy> to DIR (which must not exist, or be
// empty), renames the module to PATH in go.mod, in every import of its
// packages and in every mention of its module path (comments, README,
// testdata), and points the copy's replace directives for the library
// (clusterkit.dev/clusterkit) and the kit (clusterkit.dev/services/kit) at
// their directories in this repository, by absolute path. The copy is
// written next to DIR and renamed into place at the end, so a failure
// leaves nothing behind. `make starter` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command: it returns the exit status, 0 when the copy is made,
// 1 when it is refused or fails, 2 for a bad command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("starter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.Strategy, "strategy", "", "the service to copy: services/kv-`STRATEGY` (sync, async, server-side)")
	fs.StringVar(&cfg.Dest, "dest", "", "the `directory` to create for the copy (absent or empty)")
	fs.StringVar(&cfg.Module, "module", "", "the module `path` of the copy, e.g. example.com/my-kv")
	fs.StringVar(&cfg.Repo, "repo", "", "the ClusterKit repository's root `directory` (default: the nearest one holding go.work, from the working directory up)")
	fs.StringVar(&cfg.Go, "go", "go", "the go `command`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "starter: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if cfg.Repo == "" {
		repo, err := findRepo()
		if err != nil {
			fmt.Fprintf(stderr, "starter: %v\n", err)
			return 1
		}
		cfg.Repo = repo
	}
	res, err := makeStarter(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "starter: %v\n", err)
		return 1
	}
	res.report(stdout)
	return 0
}

// findRepo returns the nearest directory holding go.work, from the working
// directory up.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work in the working directory or above it: give the repository with -repo")
		}
		dir = parent
	}
}
