package main

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"clusterkit.dev/clusterkit/wire"
)

func historyCmd(a *app) *cobra.Command {
	var node string
	var limit int
	cmd := &cobra.Command{
		Use:   "history PARTITION | history --node NODE",
		Short: "The last owner changes of a partition (or of a node): map version, time, epoch, reason",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if (len(argv) == 1) == (node != "") {
				return usageErr("history: give a partition number or --node, not both")
			}
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			var h *wire.PartitionHistory
			var err error
			if node != "" {
				h, err = a.admin().NodeHistory(ctx, node, limit)
			} else {
				n, perr := strconv.Atoi(argv[0])
				if perr != nil {
					return usageErr("history: %q is not a partition number", argv[0])
				}
				h, err = a.admin().History(ctx, n)
			}
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.out, h)
			}
			t := newTable(a.out, "P", "VERSION", "TIME", "EPOCH", "REASON", "OWNERS", "CHANGE")
			for _, c := range h.Changes {
				t.row(strconv.Itoa(c.Partition), strconv.FormatUint(c.Version, 10), millis(c.At),
					strconv.FormatUint(c.Epoch, 10), c.Reason, list(c.Owners), changeText(c))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the changes that gave a node or took from it a partition or a primary role")
	cmd.Flags().IntVar(&limit, "limit", 100, "with --node: the newest this many changes")
	return cmd
}

// changeText says what a change did: +added, -removed, primary a→b.
func changeText(c wire.PartitionChange) string {
	var parts []string
	for _, id := range c.Added {
		s := "+" + id
		if c.From != "" {
			s += " (from " + c.From + ")"
		}
		parts = append(parts, s)
	}
	for _, id := range c.Removed {
		parts = append(parts, "-"+id)
	}
	if c.PrevPrimary != "" && len(c.Owners) > 0 {
		parts = append(parts, "primary "+c.PrevPrimary+"->"+c.Owners[0])
	}
	return strings.Join(parts, " ")
}
