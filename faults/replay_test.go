package faults

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReplay checks saved histories again: every file in testdata/failed
// (written by a failing run) and testdata/histories (committed examples,
// each named for what the checkers must say of it). FAULTS_REPLAY names
// one more file.
func TestReplay(t *testing.T) {
	var paths []string
	for _, dir := range []string{failedDir, "testdata/histories"} {
		m, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	if p := os.Getenv("FAULTS_REPLAY"); p != "" {
		paths = append(paths, p)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			h, err := LoadHistory(path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := CheckLinearizable(h.Ops, time.Minute, filepath.Join(t.TempDir(), "history.html"))
			if err != nil {
				t.Fatal(err)
			}
			want := "Ok"
			if filepath.Dir(path) == "testdata/histories" && filepath.Base(path)[:8] == "illegal-" {
				want = "Illegal"
			}
			if string(res) != want {
				keys := IllegalKeys(h.Ops, time.Minute)
				t.Errorf("%s (%s, seed %d, %d operations): linearizability %s, want %s; keys not linearizable: %v",
					path, h.Strategy, h.Seed, len(h.Ops), res, want, keys)
				logViolations(t, h.Ops, keys)
			}
			for _, f := range Summarize(h) {
				t.Logf("%s %v: %d ops during, %d ok after, no write %v/%v, no read %v/%v", f.Kind, f.Targets,
					f.During.Ops, f.After.OK, f.All.Writes, f.Led.Writes, f.All.Reads, f.Led.Reads)
			}
		})
	}
}

// logViolations logs, for each key, the operations up to where its
// history first goes wrong.
func logViolations(t *testing.T, ops []Op, keys []string) {
	for _, key := range keys {
		prefix := FirstViolation(ops, key, time.Minute)
		t.Logf("%s: the history goes wrong at its %dth operation; the last ones:", key, len(prefix))
		for _, op := range prefix[max(0, len(prefix)-12):] {
			t.Logf("  %s", op.Describe())
		}
	}
}
