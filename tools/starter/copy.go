package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// sourceFiles lists the files of the module in dir that a copy takes,
// slash-separated and relative to dir: those git does not ignore (tracked,
// or new and not ignored) when dir is in a git work tree, so that built
// binaries and other local files stay behind; every file under dir when git
// is missing or dir is not in a work tree.
func sourceFiles(ctx context.Context, dir string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".")
	cmd.Dir = dir
	if out, err := cmd.Output(); err == nil {
		var files []string
		for name := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
			if name == "" {
				continue
			}
			// A tracked file deleted from the work tree is not copied.
			if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name))); err != nil {
				if os.IsNotExist(err) {
					continue
				}
				return nil, err
			}
			files = append(files, name)
		}
		slices.Sort(files)
		return slices.Compact(files), nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	return files, err
}

// copyStats counts what copyModule did.
type copyStats struct {
	files, rewritten int
}

// copyModule copies files (from sourceFiles) from src to dst, an existing
// directory, renaming the module on the way (r): Go files outside testdata
// have their import paths and comments rewritten (rewriter.goFile), other
// text files their mentions of the module path (rewriter.text); go.mod and
// go.sum are copied as they are (the caller edits go.mod with the go
// command), binary files too. Modes are kept; symbolic links are copied as
// links.
func copyModule(ctx context.Context, src, dst string, files []string, r rewriter) (copyStats, error) {
	var st copyStats
	for _, name := range files {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		from := filepath.Join(src, filepath.FromSlash(name))
		to := filepath.Join(dst, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return st, err
		}
		info, err := os.Lstat(from)
		if err != nil {
			return st, err
		}
		switch {
		case info.Mode().IsRegular():
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(from)
			if err != nil {
				return st, err
			}
			if err := os.Symlink(target, to); err != nil {
				return st, err
			}
			st.files++
			continue
		default:
			return st, fmt.Errorf("%s: not a regular file (%s): a copy takes files and links only", from, info.Mode().Type())
		}
		data, err := os.ReadFile(from)
		if err != nil {
			return st, err
		}
		out, err := rewriteFile(name, data, r)
		if err != nil {
			return st, err
		}
		if err := os.WriteFile(to, out, info.Mode().Perm()); err != nil {
			return st, err
		}
		st.files++
		if !bytes.Equal(out, data) {
			st.rewritten++
		}
	}
	return st, nil
}

// rewriteFile returns the content of the file name (slash-separated,
// relative to the module's root) in the renamed module.
func rewriteFile(name string, data []byte, r rewriter) ([]byte, error) {
	switch {
	case name == "go.mod" || name == "go.sum":
		return data, nil
	case !isText(data):
		return data, nil
	case strings.HasSuffix(name, ".go") && !inTestdata(name):
		return r.goFile(name, data)
	default:
		return r.text(data), nil
	}
}

// inTestdata reports whether the file name lies in a testdata directory,
// which the go command ignores: a Go file there need not parse.
func inTestdata(name string) bool {
	return slices.Contains(strings.Split(name, "/"), "testdata")
}
