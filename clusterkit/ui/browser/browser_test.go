package browser_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"clusterkit.dev/clusterkit"
	"clusterkit.dev/clusterkit/cktest"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the cluster page's screenshot to docs/ui.png")

// domCell is what the page shows for one partition.
type domCell struct {
	Index    string `json:"index"`
	Primary  string `json:"primary"`
	Replicas string `json:"replicas"`
	Joining  string `json:"joining"`
}

// domNode is what the page shows for one node.
type domNode struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Draining  string `json:"draining"`
	Primaries string `json:"primaries"`
}

const readDOM = `({
  version: document.body.dataset.version || "",
  cells: [...document.querySelectorAll("#grid .p")].map(c => ({index: c.id.slice(2), primary: c.dataset.primary,
    replicas: c.dataset.replicas, joining: c.dataset.joining})),
  nodes: [...document.querySelectorAll("#nodes tbody tr")].map(r => ({id: r.id.slice(5), state: r.dataset.state,
    draining: r.dataset.draining, primaries: r.querySelector(".primaries").textContent})),
  moves: document.querySelectorAll("#moves li").length,
})`

type domView struct {
	Version string    `json:"version"`
	Cells   []domCell `json:"cells"`
	Nodes   []domNode `json:"nodes"`
	Moves   int       `json:"moves"`
}

// TestClusterPageInBrowser loads /ui/ from a follower of a running
// ten-node cluster in headless Chromium and checks the rendered page: every
// node and every partition, with the owners of the map it shows; then it
// drains a node while the application holds its copies back, checks that
// the page shows the drain and the moves in flight within seconds, without
// a reload, and saves a screenshot; once the copies finish, the page shows
// the drained node owning nothing.
func TestClusterPageInBrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium): the cluster page test needs a real browser")
	}
	var stall atomic.Bool
	cfg := clusterkit.LocalConfig()
	cfg.PartitionCount = 64
	c := cktest.New(t, 10, cktest.WithConfig(cfg),
		cktest.WithSetup(func(i int, o *clusterkit.Options) { o.Zone = fmt.Sprintf("zone-%c", 'a'+i%3) }),
		cktest.WithInit(func(_ *cktest.Member, ck *clusterkit.ClusterKit) {
			ck.OnPartitionEvent(func(_ context.Context, ev clusterkit.PartitionEvent) error {
				if ev.NewRole == clusterkit.RoleJoining && stall.Load() {
					return errors.New("copy held back by the test")
				}
				return nil
			})
		}))
	c.WaitConverged()
	m := c.Member(1)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()

	read := func() domView {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[domView](readDOM))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		return v
	}
	waitDOM := func(what string, within time.Duration, cond func(domView) error) domView {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			v := read()
			err := cond(v)
			if err == nil {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("the page did not show %s within %v: %v", what, within, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(m.URL("/ui/")), chromedp.WaitVisible("#grid .p")); err != nil {
		t.Fatalf("load %s: %v", m.URL("/ui/"), err)
	}
	v := waitDOM("the current map", 10*time.Second, func(v domView) error {
		if v.Version != fmt.Sprint(m.CK.Version()) {
			return fmt.Errorf("page at version %q, node at %d", v.Version, m.CK.Version())
		}
		return nil
	})
	t.Logf("page loaded and rendered in %v", time.Since(start).Round(time.Millisecond))
	if len(v.Nodes) != 10 || len(v.Cells) != 64 {
		t.Fatalf("page shows %d nodes and %d partitions, want 10 and 64", len(v.Nodes), len(v.Cells))
	}
	for i, n := range m.CK.Nodes() {
		if v.Nodes[i].ID != n.ID || v.Nodes[i].State != string(n.State) {
			t.Errorf("node row %d: %+v, want %s %s", i, v.Nodes[i], n.ID, n.State)
		}
	}
	for i, p := range m.CK.Partitions() {
		want := domCell{Index: fmt.Sprint(i), Primary: p.PrimaryNode, Replicas: strings.Join(p.ReplicaNodes, ","), Joining: strings.Join(p.JoiningNodes, ",")}
		if v.Cells[i] != want {
			t.Errorf("partition cell %d: %+v, want %+v", i, v.Cells[i], want)
		}
	}

	// A drain whose copies the application holds back: the page must show
	// the draining node and the joining owners by itself.
	stall.Store(true)
	var drainAt time.Time
	// A 503 (no leader for a moment, on a loaded machine) is retried, as
	// an operator would.
	c.Eventually("the drain to be accepted", func() error {
		drainAt = time.Now()
		resp, err := http.Post(m.URL("/cluster/drain"), "application/json", strings.NewReader(`{"id":"node-10"}`))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("drain: %s", resp.Status)
		}
		return nil
	})
	waitDOM("the drain and its moves", 5*time.Second, func(v domView) error {
		i := slices.IndexFunc(v.Nodes, func(n domNode) bool { return n.ID == "node-10" })
		if i < 0 || v.Nodes[i].Draining != "true" {
			return fmt.Errorf("node-10 row %+v", v.Nodes)
		}
		if v.Moves == 0 || !slices.ContainsFunc(v.Cells, func(c domCell) bool { return c.Joining != "" }) {
			return fmt.Errorf("no moves shown")
		}
		return nil
	})
	t.Logf("drain visible on the page %v after the request", time.Since(drainAt).Round(time.Millisecond))
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.TempDir(), "ui.png")
	if *updateScreenshot {
		path = filepath.Join("..", "..", "..", "docs", "ui.png")
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot (%d bytes) in %s", len(shot), path)

	stall.Store(false)
	waitDOM("node-10 drained", 20*time.Second, func(v domView) error {
		for _, cell := range v.Cells {
			if cell.Primary == "node-10" || strings.Contains(cell.Replicas, "node-10") || cell.Joining != "" {
				return fmt.Errorf("partition %s: %+v", cell.Index, cell)
			}
		}
		return nil
	})
}
