package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"clusterkit.dev/clusterkit/wire"
)

func planCmd(a *app) *cobra.Command {
	var zone string
	var weight int
	cmd := &cobra.Command{
		Use:   "plan join|leave|drain NODE...",
		Short: "Dry run: the moves the leader would make for a join, leave or drain, and the balance before and after",
		Long: `plan asks the leader what it would do if the nodes joined (with --zone and
--weight), left or were drained: it runs the leader's own controller and
placement on a copy of the cluster state and commits nothing. Bytes to copy
are shown when the application reports partition sizes.`,
		Args: args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			var ch wire.PlanChange
			switch argv[0] {
			case "join":
				ch.Join, ch.Zone, ch.Weight = argv[1:], zone, weight
			case "leave":
				ch.Leave = argv[1:]
			case "drain":
				ch.Drain = argv[1:]
			default:
				return usageErr("plan: %q is not join, leave or drain", argv[0])
			}
			if argv[0] != "join" && (zone != "" || weight != 0) {
				return usageErr("plan: --zone and --weight go with join")
			}
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			p, err := a.admin().Plan(ctx, ch)
			if err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.out, p)
			}
			return printPlan(a, argv, p)
		},
	}
	cmd.Flags().StringVar(&zone, "zone", "", "zone of the joining nodes")
	cmd.Flags().IntVar(&weight, "weight", 0, "weight of the joining nodes (default 1)")
	return cmd
}

func printPlan(a *app, argv []string, p *wire.PlanInfo) error {
	fmt.Fprintf(a.out, "plan: %s %s from map version %d (leader %s); nothing is committed\n", argv[0], list(argv[1:]), p.Version, p.LeaderID)
	bytes := fmt.Sprintf("unknown (%d of %d sizes reported)", p.BytesKnown, p.Copies)
	if p.Copies > 0 && p.BytesKnown == p.Copies {
		bytes = bytesText(p.BytesToCopy)
	} else if p.BytesKnown > 0 {
		bytes = fmt.Sprintf("at least %s (%d of %d sizes reported)", bytesText(p.BytesToCopy), p.BytesKnown, p.Copies)
	}
	fmt.Fprintf(a.out, "moves: %s and %s in %s (%d in flight now); bytes to copy: %s\n\n",
		plural(p.Copies, "copy", "copies"), plural(p.PrimaryChanges, "primary change", "primary changes"),
		plural(p.Steps, "round of handoffs", "rounds of handoffs"), p.MovesInFlight, bytes)
	if len(p.Moves) > 0 {
		t := newTable(a.out, "P", "KIND", "FROM", "TO", "COPY FROM", "REASON", "RULE", "BYTES")
		for _, m := range p.Moves {
			size := ""
			if m.Bytes != nil {
				size = bytesText(*m.Bytes)
			}
			t.row(strconv.Itoa(m.Partition), m.Kind, roleText(m.From, m.FromRole), roleText(m.To, m.ToRole), m.CopySource, m.Reason, m.Rule, size)
		}
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintln(a.out)
	}
	t := newTable(a.out, "BALANCE", "BEFORE", "AFTER")
	t.row("nodes owning partitions", strconv.Itoa(len(p.Before.Nodes)), strconv.Itoa(len(p.After.Nodes)))
	t.row("slots per node", rangeText(p.Before.Slots), rangeText(p.After.Slots))
	t.row("primaries per node", rangeText(p.Before.Primaries), rangeText(p.After.Primaries))
	t.row("busiest / mean slots", fmt.Sprintf("%.2f", p.Before.SlotRatio), fmt.Sprintf("%.2f", p.After.SlotRatio))
	t.row("busiest / mean primaries", fmt.Sprintf("%.2f", p.Before.PrimaryRatio), fmt.Sprintf("%.2f", p.After.PrimaryRatio))
	return t.flush()
}

func roleText(id string, role wire.Role) string {
	if id == "" {
		return "-"
	}
	if role == "" || role == wire.RoleNone {
		return id
	}
	return id + " (" + string(role) + ")"
}

func rangeText(s wire.LoadSummary) string {
	return fmt.Sprintf("%d..%d", s.Min, s.Max)
}
