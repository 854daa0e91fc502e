// Command route prints where keys live, from outside the cluster: it
// fetches the partition map from any node with the client SDK and hashes
// each key as the nodes do.
//
//	go run ./examples/route -seeds 127.0.0.1:8080,127.0.0.1:8081 user:1 user:2
//
// It links only the client SDK (clusterkit/client and clusterkit/wire),
// none of the server's dependencies.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"clusterkit.dev/clusterkit/client"
)

func main() {
	seeds := flag.String("seeds", "127.0.0.1:8080", "comma-separated node addresses (host:port)")
	timeout := flag.Duration("timeout", 10*time.Second, "how long to try the seeds")
	flag.Parse()
	if err := run(strings.Split(*seeds, ","), *timeout, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "route:", err)
		os.Exit(1)
	}
}

func run(seeds []string, timeout time.Duration, keys []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := client.New(ctx, seeds, client.WithoutWatch())
	if err != nil {
		return err
	}
	defer c.Close()
	for _, key := range keys {
		r, err := c.Route(key)
		if err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		primary := "none"
		if r.Primary != nil {
			primary = r.Primary.ID + " (" + r.Primary.IP + ")"
		}
		var replicas []string
		for _, n := range r.Replicas {
			replicas = append(replicas, n.ID)
		}
		fmt.Printf("%s\t%s\tprimary %s\treplicas [%s]\tmap version %d\n",
			key, r.PartitionID, primary, strings.Join(replicas, " "), r.MapVersion)
	}
	return nil
}
