package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

func explainCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "explain PARTITION",
		Short: "Why a partition's owners are where they are: the placement rule behind each, its share, zone and history",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			n, err := strconv.Atoi(argv[0])
			if err != nil {
				return usageErr("explain: %q is not a partition number", argv[0])
			}
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			e, err := a.admin().Explain(ctx, n)
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.out, e)
			}
			settled := "settled"
			if !e.Settled {
				settled = "moving"
			}
			fmt.Fprintf(a.out, "partition %d: epoch %d, map version %d, %s, zoning %s, replication factor %d\n",
				e.Partition, e.Epoch, e.Version, settled, e.Zoning, e.ReplicationFactor)
			fmt.Fprintf(a.out, "placement wants: %s\n", list(e.Target))
			for _, o := range e.Owners {
				fmt.Fprintf(a.out, "\n%s  %s  zone %s  weight %d\n", o.Node, o.Role, orDash(o.Zone), o.Weight)
				for _, w := range o.Why {
					fmt.Fprintf(a.out, "  - %s\n", w)
				}
			}
			return nil
		},
	}
}
