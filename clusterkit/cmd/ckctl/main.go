// Command ckctl is the operator's command for a ClusterKit cluster: it
// talks to any node's HTTP API and shows the cluster's health, nodes and
// partitions, plans and explains placement, shows each partition's history,
// drains nodes and follows the map live.
//
//	ckctl --addr 10.0.0.1:8080 status
//	CLUSTERKIT_ADDR=10.0.0.1:8080 ckctl plan drain node-3
//
// Output is a table for people by default and JSON with -o json. The exit
// status tells scripts what happened:
//
//	0  success
//	1  an unexpected error
//	2  the command line is wrong
//	3  no node answered, or the cluster has no leader (HTTP 503)
//	4  the node refused the request: bad input, unknown node, conflict (HTTP 4xx)
//	5  status: the cluster answered but is not healthy
//	6  drain --wait or leave: the wait ended before the node was empty
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
