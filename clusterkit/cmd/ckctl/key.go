package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

func keyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "key KEY",
		Short: "The partition of KEY and its owners",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			k, err := a.admin().Key(ctx, argv[0])
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.out, k)
			}
			primary := "-"
			if k.Primary != nil {
				primary = k.Primary.ID + "  " + k.Primary.IP
			}
			t := newTable(a.out)
			t.row("key", k.Key)
			t.row("hash", fmt.Sprintf("%#016x", k.Hash))
			t.row("partition", strconv.Itoa(k.Partition.Index))
			t.row("primary", primary)
			t.row("replicas", list(k.Partition.ReplicaNodes))
			t.row("joining", list(k.Partition.JoiningNodes))
			t.row("epoch", strconv.FormatUint(k.Partition.Epoch, 10))
			t.row("map version", strconv.FormatUint(k.Partition.Version, 10))
			return t.flush()
		},
	}
}
