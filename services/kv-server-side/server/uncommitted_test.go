package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"clusterkit.dev/clusterkit/cktest"
	"clusterkit.dev/services/kit/kittest"
)

// A write the primary stored but could not get onto a majority (both
// replicas stopped: it answers 503) must not be read back from the
// primary alone: if the primary died then, the replicas would promote one
// of them without it, and a later read would return the older value. The
// primary replicates it again for the read and returns it only once a
// majority holds it; until then the read is refused.
func TestReadNeverReturnsAWriteOnlyThePrimaryHolds(t *testing.T) {
	pc := startProcCluster(t, 3)
	prim, count := pc.primaries(0)
	p0 := -1
	for i, p := range pc.Nodes {
		if prim[0] == p.ID {
			p0 = i
		}
	}
	if p0 < 0 {
		t.Fatalf("partition 0 has primary %q, not a node of the test", prim[0])
	}
	key := kittest.KeyOfPartition(0, count)
	primary := pc.Nodes[p0].HTTP
	hc := &http.Client{Timeout: 5 * time.Second}
	if status, body := pc.set(hc, primary, key, "v1"); status != http.StatusOK {
		t.Fatalf("first write: %d %s", status, body)
	}

	var replicas []int
	for i := range pc.Nodes {
		if i != p0 {
			replicas = append(replicas, i)
			pc.Signal(i, syscall.SIGSTOP)
		}
	}
	status, body := pc.set(hc, primary, key, "v2")
	if status != http.StatusServiceUnavailable {
		t.Fatalf("write with both replicas stopped: %d %s, want 503", status, body)
	}
	if !strings.Contains(body, "stored on 1 of 3") {
		t.Logf("the write was refused before the primary stored it (%s): nothing to check", body)
	}
	if status, got := pc.get(hc, primary, key); status == http.StatusOK && got == "v2" {
		t.Fatalf("read through the primary returned v2, which only the primary holds")
	} else {
		t.Logf("read through the primary with both replicas stopped: %d %s", status, got)
	}

	for _, i := range replicas {
		pc.Signal(i, syscall.SIGCONT)
	}
	// The failed write may take effect; once a read has returned it,
	// every owner holds it.
	var final string
	cktest.Eventually(t, 20*time.Second, "a read through the primary", func() error {
		status, got := pc.get(hc, primary, key)
		if status != http.StatusOK {
			return &readError{status, got}
		}
		final = got
		return nil
	})
	if final != "v2" {
		return // the write did not take effect: nothing more to check
	}
	for _, i := range replicas {
		resp, err := hc.Get("http://" + pc.Nodes[i].HTTP + "/kv/get?local=true&key=" + key)
		if err != nil {
			t.Fatal(err)
		}
		var a getAnswer
		err = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if err != nil || a.Value != "v2" {
			t.Errorf("%s holds %q (%v) after the primary returned v2", pc.Nodes[i].ID, a.Value, err)
		}
	}
}

type readError struct {
	status int
	body   string
}

func (e *readError) Error() string { return http.StatusText(e.status) + ": " + e.body }
