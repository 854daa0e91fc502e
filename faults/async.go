package faults

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"clusterkit.dev/clusterkit"
)

// replicasConverge waits until every owner of every key holds the same
// value (kv-async replicates in the background) and returns how long it
// took.
func replicasConverge(ctx context.Context, c *Cluster, keys []string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = ownersAgree(ctx, c, keys); last == nil {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("owners did not converge in %v: %w", timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ownersAgree(ctx context.Context, c *Cluster, keys []string) error {
	m, err := c.NewestMap(ctx)
	if err != nil {
		return err
	}
	for _, key := range keys {
		p := m.Partitions[clusterkit.PartitionIndex(key, m.PartitionCount)]
		var want string
		for i, id := range append([]string{p.PrimaryNode}, p.ReplicaNodes...) {
			n := c.Node(id)
			if n == nil {
				return fmt.Errorf("owner %s of %s is not a node of the cluster", id, p.ID)
			}
			got, err := localValue(ctx, c, n, key)
			if err != nil {
				return err
			}
			if i == 0 {
				want = got
			} else if got != want {
				return fmt.Errorf("%s: %s holds %q, primary %s %q", key, id, got, p.PrimaryNode, want)
			}
		}
	}
	return nil
}

// localValue is n's own copy of key, "" when absent.
func localValue(ctx context.Context, c *Cluster, n *Node, key string) (string, error) {
	var v struct {
		Value string `json:"value"`
	}
	err := c.getJSON(ctx, n, "/kv/get?consistency=any&key="+url.QueryEscape(key), &v)
	var se *statusError
	if errors.As(err, &se) && se.code == 404 {
		return "", nil
	}
	return v.Value, err
}
