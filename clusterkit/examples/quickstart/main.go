// Command quickstart runs one ClusterKit node configured from the
// environment, prints where a few keys live, and logs every partition this
// node gains. `make up` starts three of them.
//
//	NODE_ID=node-1 HTTP_ADDR=:8080 go run ./examples/quickstart
//	NODE_ID=node-2 HTTP_ADDR=:8081 JOIN_ADDR=127.0.0.1:8080 go run ./examples/quickstart
//
// Also read: RAFT_ADDR, DATA_DIR, BOOTSTRAP=true (found the cluster even
// with a JOIN_ADDR list), BOOTSTRAP_EXPECT=n (nodes given the same JOIN_ADDR
// list form a cluster once n of them are up) and PRESET=local (LocalConfig's
// fast timeouts).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"clusterkit.dev/clusterkit"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := clusterkit.DefaultConfig()
	if os.Getenv("PRESET") == "local" {
		cfg = clusterkit.LocalConfig()
	}
	var expect int
	if s := os.Getenv("BOOTSTRAP_EXPECT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("BOOTSTRAP_EXPECT: %q is not a number", s)
		}
		expect = n
	}
	ck, err := clusterkit.NewClusterKit(clusterkit.Options{
		NodeID:          os.Getenv("NODE_ID"),
		HTTPAddr:        os.Getenv("HTTP_ADDR"),
		RaftAddr:        os.Getenv("RAFT_ADDR"),
		JoinAddr:        os.Getenv("JOIN_ADDR"),
		Bootstrap:       os.Getenv("BOOTSTRAP") == "true",
		BootstrapExpect: expect,
		DataDir:         os.Getenv("DATA_DIR"),
		Config:          &cfg,
	})
	if err != nil {
		return err
	}
	ck.OnPartitionChange(func(partitionID string, copyFrom, copyTo *clusterkit.Node) {
		from := "nobody (new partition)"
		if copyFrom != nil {
			from = copyFrom.ID + " at " + copyFrom.IP
		}
		slog.Info("gained partition", "partition", partitionID, "copy_from", from)
	})
	if err := ck.Start(); err != nil {
		return err
	}
	defer ck.Stop()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ck.WaitForMap(wait, 0); err != nil {
		return fmt.Errorf("no partition map: %w", err)
	}
	for _, key := range []string{"user:123", "session:abc", "order:42"} {
		p, err := ck.GetPartition(key)
		if err != nil {
			return err
		}
		slog.Info("route", "key", key, "partition", p.ID, "primary", ck.GetPrimary(p).ID,
			"i_am_primary", ck.IsPrimary(p), "i_am_replica", ck.IsReplica(p))
	}
	<-ctx.Done()
	return nil
}
