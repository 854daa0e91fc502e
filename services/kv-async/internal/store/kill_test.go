package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The SIGKILL test runs this test binary as a child process that writes
// to a store and prints each key once the store has acknowledged it.
const killChildEnv = "KVASYNC_STORE_KILL_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		os.Exit(killChild(dir))
	}
	os.Exit(m.Run())
}

func killChild(dir string) int {
	window, _ := time.ParseDuration(os.Getenv("KVASYNC_STORE_KILL_CHILD_WINDOW"))
	s, err := Open(dir, Options{SyncWindow: window})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				key := fmt.Sprintf("g%d-%d", g, i)
				if _, _, err := s.Write(i%8, key, []byte(key), false, epoch(1)); err != nil {
					return
				}
				mu.Lock()
				fmt.Fprintln(out, key)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return 0
}

// A process writing to a store is killed with SIGKILL mid-stream. With no
// window, the reopened store holds every write the process was told was
// done. With a window, Pebble writes its log to the file from a goroutine
// of its own, so the last few writes acknowledged may be lost too (as a
// power cut would lose them, within the window): what survives of each
// writer's sequence is still a prefix, whole.
func TestSIGKILLKeepsAcknowledgedWrites(t *testing.T) {
	for _, window := range []string{"0s", "50ms"} {
		t.Run("window-"+window, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), killChildEnv+"="+dir, "KVASYNC_STORE_KILL_CHILD_WINDOW="+window)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var acked []string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				acked = append(acked, sc.Text())
				if len(acked) == 3000 {
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
			for sc.Scan() {
				acked = append(acked, sc.Text()) // printed before the kill
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child ended with %v, want killed (it wrote %d keys)", err, len(acked))
			}
			s := open(t, vfs.Default, dir, Options{})
			lost := 0
			firstLost := map[string]int{} // by writer: its first write lost
			for _, key := range acked {
				g, is, _ := strings.Cut(strings.TrimPrefix(key, "g"), "-")
				i, _ := strconv.Atoi(is)
				rec, found, err := s.Get(i%8, key)
				if err != nil {
					t.Fatal(err)
				}
				if found && string(rec.Value) == key {
					if f, ok := firstLost[g]; ok {
						t.Fatalf("writer %s: write %d kept after write %d was lost", g, i, f)
					}
					continue
				}
				if window == "0s" {
					t.Fatalf("acknowledged write %s lost after SIGKILL (%d acknowledged)", key, len(acked))
				}
				lost++
				if _, ok := firstLost[g]; !ok {
					firstLost[g] = i
				}
			}
			t.Logf("%d acknowledged writes, %d lost", len(acked), lost)
		})
	}
}
