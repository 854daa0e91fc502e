package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/clusterkit/client"
)

// freezer is a TCP proxy in front of a node that can be frozen: from then
// on it still accepts connections, as the kernel does for a SIGSTOPped
// process, but forwards nothing either way, on new connections or on the
// ones already open. It stands in for a node that hangs after it has
// answered, which a process can only do on demand under SIGSTOP.
type freezer struct {
	ln       net.Listener
	target   string
	frozen   atomic.Bool
	accepted atomic.Int64

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// newFreezer starts a proxy to target; it stops with the test.
func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(f.close)
	return f
}

func (f *freezer) addr() string { return f.ln.Addr().String() }

// freeze makes the proxy hang: nothing more goes through it.
func (f *freezer) freeze() { f.frozen.Store(true) }

func (f *freezer) serve() {
	defer f.wg.Done()
	for {
		in, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.accepted.Add(1)
		f.track(in)
		if f.frozen.Load() {
			continue // held open, never read, never answered
		}
		out, err := net.Dial("tcp", f.target)
		if err != nil {
			in.Close()
			continue
		}
		f.track(out)
		f.wg.Add(2)
		go f.pipe(out, in)
		go f.pipe(in, out)
	}
}

// pipe copies from src to dst until either fails or the proxy freezes;
// once frozen it stops copying and leaves both connections open.
func (f *freezer) pipe(dst, src net.Conn) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if f.frozen.Load() {
			// Hold what was read: a hung process answers nothing more.
			_, _ = io.Copy(io.Discard, src)
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *freezer) track(c net.Conn) {
	f.mu.Lock()
	f.conns = append(f.conns, c)
	f.mu.Unlock()
}

func (f *freezer) close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// hungAddr returns the address of a listener that accepts connections and
// never answers on them, like a node whose process is stopped.
func hungAddr(t *testing.T) string {
	t.Helper()
	f := newFreezer(t, "127.0.0.1:1")
	f.freeze()
	return f.addr()
}

// Bounds the tests hold the client to with the default options: the fetch
// timeout (2s) for a fetch from a hung node, the ping period plus the
// fetch timeout (1s + 2s) for the watch to leave one; each with 1.5s of
// slack for a loaded machine.
const (
	hungFetchBound = 3500 * time.Millisecond
	hungWatchBound = 4500 * time.Millisecond
)

func TestNewAndRefreshWithAHungSeed(t *testing.T) {
	c := cktest.New(t, 3)
	c.WaitConverged()
	hung := hungAddr(t)
	live := seeds(c)

	start := time.Now()
	cl := newClient(t, append([]string{hung}, live...), client.WithoutWatch())
	took := time.Since(start)
	t.Logf("New with a hung first seed: %v", took)
	if took > hungFetchBound {
		t.Fatalf("New with a hung first seed among live ones took %v, want at most %v", took, hungFetchBound)
	}
	if cl.Version() != c.Member(0).CK.Version() {
		t.Fatalf("client map version %d, server %d", cl.Version(), c.Member(0).CK.Version())
	}
	// The hung seed failed once: Refresh tries it last, so it answers at
	// the speed of a live node.
	for i := 0; i < 3; i++ {
		start = time.Now()
		if err := cl.Refresh(context.Background()); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Refresh took %v with a hung seed known to have failed, want well under the fetch timeout", d)
		}
	}

	// Only hung seeds: New fails within its start timeout, naming the
	// timeout as the cause.
	start = time.Now()
	_, err := client.New(context.Background(), []string{hungAddr(t), hungAddr(t)},
		client.WithStartTimeout(time.Second), client.WithFetchTimeout(300*time.Millisecond))
	if err == nil {
		t.Fatal("New with only hung seeds succeeded")
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Fatalf("New with hung seeds took %v, want about the 1s start timeout", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New with hung seeds: %v, want a deadline among the causes", err)
	}
}

// The watch long-polls a node that then hangs: the client must leave it
// after a ping goes unanswered and follow the map's changes from the other
// nodes within a bound, far less than the 1-minute long-poll wait.
func TestWatchLeavesAHungNode(t *testing.T) {
	c := cktest.New(t, 3)
	c.WaitConverged()
	f := newFreezer(t, c.Member(0).HTTPAddr())
	// The proxy is the first seed: it answers New, so the watch
	// long-polls through it.
	cl := newClient(t, append([]string{f.addr()}, seeds(c)[1:]...), client.WithWatchWait(time.Minute))
	cktest.Eventually(t, 5*time.Second, "watch long-polling through the proxy", func() error {
		if f.accepted.Load() == 0 {
			return errors.New("no connection through the proxy yet")
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // let the long-poll start waiting
	f.freeze()

	// Sample the servers' and the client's versions, recording when each
	// server version is first seen and when the client first has it.
	stop := make(chan struct{})
	sampled := make(chan map[uint64]time.Duration)
	go func() {
		seen := map[uint64]time.Time{}
		lag := map[uint64]time.Duration{}
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for stopped := false; ; {
			for _, m := range c.Running() {
				if v := m.CK.Version(); seen[v].IsZero() {
					seen[v] = time.Now()
				}
			}
			cv := cl.Version()
			for v, at := range seen {
				if _, done := lag[v]; !done && cv >= v {
					lag[v] = time.Since(at)
				}
			}
			if stopped {
				for v, at := range seen {
					if _, done := lag[v]; !done {
						lag[v] = -time.Since(at) // not reached yet
					}
				}
				sampled <- lag
				return
			}
			select {
			case <-stop:
				stopped = true
			case <-tick.C:
			}
		}
	}()

	c.Add()
	c.WaitConverged()
	final := c.Member(1).CK.Version()
	ctx, cancel := context.WithTimeout(context.Background(), hungWatchBound)
	err := cl.WaitForVersion(ctx, final)
	cancel()
	close(stop)
	lags := <-sampled
	if err != nil {
		t.Fatalf("client did not reach map version %d with its watch node hung: %v", final, err)
	}
	var worst time.Duration
	for v, l := range lags {
		if l < 0 && v <= final {
			t.Errorf("map version %d: client never had it", v)
		}
		worst = max(worst, l)
	}
	t.Logf("%d map versions while the watch node hung; worst delay to the client %v", len(lags), worst)
	if worst > hungWatchBound {
		t.Fatalf("client saw a map version %v after the servers, want at most %v with one node hung", worst, hungWatchBound)
	}
	if len(lags) < 2 {
		t.Fatalf("the map changed %d times during the test: it proves nothing", len(lags))
	}
	assertRoutesMatch(t, c, cl, 1000)
}
