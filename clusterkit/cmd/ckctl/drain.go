package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"clusterkit.dev/clusterkit/client"
	"clusterkit.dev/clusterkit/wire"
)

// pollWait is how long one long-poll of the map waits for a change.
const pollWait = 10 * time.Second

func drainCmd(a *app) *cobra.Command {
	var wait, cancelDrain bool
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Move every partition off NODE with make-before-break handoffs (--wait: until it owns nothing)",
		Long: `drain marks NODE as draining: it gets no new partitions and loses the ones it
has through make-before-break handoffs. With --wait, ckctl follows the map
until NODE owns nothing (exit status 6 if --timeout passes first); it can
then be stopped without leaving any partition under-replicated. --cancel
ends a drain.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			node := argv[0]
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			switch {
			case cancelDrain:
				if err := a.admin().Drain(ctx, node, false); err != nil {
					return err
				}
				return report(a, node, "drain cancelled", -1)
			case !wait:
				if err := a.admin().Drain(ctx, node, true); err != nil {
					return err
				}
				return report(a, node, "draining", -1)
			}
			if err := drainEmpty(ctx, a, a.admin(), node); err != nil {
				return err
			}
			return report(a, node, "drained: it owns no partition and can be stopped", 0)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the node owns nothing (bounded by --timeout)")
	cmd.Flags().BoolVar(&cancelDrain, "cancel", false, "cancel a drain")
	return cmd
}

func leaveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "leave NODE",
		Short: "Drain NODE, wait until it owns nothing, then remove it from the cluster",
		Long: `leave drains NODE (see drain --wait) and then removes it from the map and
from raft. Stop the node's process once it is drained: a removed node that
still runs asks to join again.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			node := argv[0]
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			ad := a.admin()
			if err := drainEmpty(ctx, a, ad, node); err != nil {
				return err
			}
			if err := ad.Leave(ctx, node); err != nil {
				return err
			}
			if err := waitGone(ctx, ad, node); err != nil {
				return err
			}
			return report(a, node, "left the cluster", 0)
		},
	}
}

// report prints the outcome of drain or leave.
func report(a *app, node, what string, holds int) error {
	if a.json() {
		v := map[string]any{"node": node, "status": what}
		if holds >= 0 {
			v["partitions"] = holds
		}
		return writeJSON(a.out, v)
	}
	_, err := fmt.Fprintf(a.out, "%s: %s\n", node, what)
	return err
}

// drainEmpty drains node and follows the map until it owns and joins no
// partition; with a table output it prints how many are left at each
// change.
func drainEmpty(ctx context.Context, a *app, ad *client.Admin, node string) error {
	if err := ad.Drain(ctx, node, true); err != nil {
		return err
	}
	info, err := ad.Cluster(ctx)
	if err != nil {
		return err
	}
	last := -1
	for {
		n := holdCount(info, node)
		if n == 0 {
			return nil
		}
		if n != last && !a.json() {
			fmt.Fprintf(a.out, "%s: %d partitions to move (map version %d)\n", node, n, info.Version)
			last = n
		}
		next, err := ad.WaitCluster(ctx, info.Version, pollWait)
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return &exitErr{code: exitTimeout, err: fmt.Errorf("%s still owns %d partitions after --timeout %v", node, n, a.timeout)}
		}
		if err != nil {
			return err
		}
		if next != nil {
			info = next
		}
	}
}

// holdCount counts the partitions node owns or is joining.
func holdCount(info *wire.ClusterInfo, node string) int {
	n := 0
	for _, p := range info.Partitions {
		if p.PrimaryNode == node || slices.Contains(p.ReplicaNodes, node) || slices.Contains(p.JoiningNodes, node) {
			n++
		}
	}
	return n
}

// waitGone follows the answering node's map until node is no longer a
// member, so that what ckctl prints next already shows it gone.
func waitGone(ctx context.Context, ad *client.Admin, node string) error {
	info, err := ad.Cluster(ctx)
	for err == nil {
		if !slices.ContainsFunc(info.Nodes, func(n wire.Node) bool { return n.ID == node }) {
			return nil
		}
		var next *wire.ClusterInfo
		if next, err = ad.WaitCluster(ctx, info.Version, pollWait); next != nil {
			info = next
		}
	}
	return err
}
