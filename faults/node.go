package faults

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
)

// Node is one service process in a host of its own. It is started with
// `ip netns exec`, which execs the service in the host's namespace, so the
// process the suite signals is the node itself.
type Node struct {
	ID      string
	Host    *Host
	HTTP    string // host:port of its HTTP API on the network
	DataDir string
	LogPath string

	bin string
	env []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// Start starts the process; it is an error if it runs.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("%s is running", n.ID)
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", n.Host.NS, n.bin)
	cmd.Env = append(os.Environ(), n.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	n.cmd, n.exited, n.paused = cmd, make(chan struct{}), false
	go func(done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(n.exited)
	return nil
}

// Kill sends SIGKILL and waits for the process to end: no shutdown step
// runs, unsynced writes in the process are lost (the page cache keeps what
// it was given). A node that is not running is left alone.
func (n *Node) Kill() error {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd, n.paused = nil, false
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	err := cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	if errors.Is(err, os.ErrProcessDone) {
		err = nil
	}
	return err
}

// Pause stops the process with SIGSTOP: its sockets stay open, the kernel
// accepts connections for it, and nothing answers.
func (n *Node) Pause() error { return n.signal(syscall.SIGSTOP, true) }

// Resume continues a paused process with SIGCONT.
func (n *Node) Resume() error { return n.signal(syscall.SIGCONT, false) }

func (n *Node) signal(sig syscall.Signal, paused bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("%s is not running", n.ID)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%v to %s: %w", sig, n.ID, err)
	}
	n.paused = paused
	return nil
}

// Running reports whether the process was started and not killed (it may
// be paused).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Exited reports whether the process ended on its own (not by Kill).
func (n *Node) Exited() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return true
	default:
		return false
	}
}

// build builds a service's command from its module directory into dir.
func build(repo, service, dir string) (string, error) {
	out := filepath.Join(dir, service)
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join(repo, "services", service)
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", service, err, b)
	}
	return out, nil
}
