package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"clusterkit.dev/clusterkit/client"
	"clusterkit.dev/clusterkit/wire"
)

// clearScreen moves the cursor home and clears a terminal.
const clearScreen = "\x1b[H\x1b[2J"

func watchCmd(a *app) *cobra.Command {
	var count int
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "A live view of the cluster that redraws whenever the map changes",
		Long: `watch shows the cluster's status and nodes and redraws them whenever the map
changes, following GET /cluster?wait= (a long-poll: nothing is polled in a
loop). On a terminal it redraws in place; otherwise it prints one view per
change. It runs until interrupted, or for --count views. --timeout bounds
each request, not the watch.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return watch(cmd.Context(), a, a.admin(), count)
		},
	}
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many views (0: until interrupted)")
	return cmd
}

func watch(ctx context.Context, a *app, ad *client.Admin, count int) error {
	tty := isTerminal(a.out)
	var version uint64
	var info *wire.ClusterInfo
	for views := 0; count == 0 || views < count; {
		if info == nil {
			rctx, cancel := a.ctx(ctx)
			var err error
			info, err = ad.Cluster(rctx)
			cancel()
			if err != nil {
				return err
			}
		}
		if info.Version != version || views == 0 {
			if err := drawView(ctx, a, ad, info, tty); err != nil {
				return err
			}
			views++
			version = info.Version
		}
		if count > 0 && views >= count {
			break
		}
		rctx, cancel := context.WithTimeout(ctx, pollWait+a.timeout)
		next, err := ad.WaitCluster(rctx, version, pollWait)
		cancel()
		if ctx.Err() != nil {
			return nil // interrupted: a normal end
		}
		if err != nil {
			return err
		}
		if next != nil {
			info = next
		}
	}
	return nil
}

func drawView(ctx context.Context, a *app, ad *client.Admin, info *wire.ClusterInfo, tty bool) error {
	rctx, cancel := a.ctx(ctx)
	defer cancel()
	s, err := fetchStatus(rctx, ad)
	if err != nil {
		return err
	}
	if a.json() {
		return writeJSON(a.out, map[string]any{"status": s, "nodes": nodeRows(info)})
	}
	if tty {
		fmt.Fprint(a.out, clearScreen)
	}
	fmt.Fprintf(a.out, "== %s  map version %d\n", a.now().UTC().Format(time.TimeOnly), info.Version)
	if err := printStatus(a.out, s); err != nil {
		return err
	}
	fmt.Fprintln(a.out)
	t := newTable(a.out, "ID", "STATE", "ZONE", "PRIMARIES", "REPLICAS", "JOINING", "FLAGS")
	for _, r := range nodeRows(info) {
		t.row(r.ID, string(r.State), r.Zone, fmt.Sprint(r.Primaries), fmt.Sprint(r.Replicas), fmt.Sprint(r.Joining), r.flags())
	}
	if err := t.flush(); err != nil {
		return err
	}
	if !tty {
		fmt.Fprintln(a.out)
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
