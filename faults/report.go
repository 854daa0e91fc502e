package faults

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes one line per strategy and fault: operations while it
// lasted and after, failed and maybe-applied operations, the longest
// windows with no acknowledged write and no read (cluster-wide, and over
// the partitions its targets led), and per run the writes lost, whether the
// history is linearizable, and the times to converge.
func WriteTable(w io.Writer, reports []*Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "strategy\tfault\ttargets\tops\tfailed\tmaybe\tops after\tno write (all/led)\tno read (all/led)")
	for _, r := range reports {
		for _, f := range r.Faults {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s / %s\t%s / %s\n", r.Strategy, f.Kind, strings.Join(f.Targets, ","),
				f.During.Ops, f.During.Failed, f.During.Maybe, f.After.OK,
				secs(f.All.Writes), secs(f.Led.Writes), secs(f.All.Reads), secs(f.Led.Reads))
		}
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "strategy\tseed\tfaults\tops\tok\tfailed\tmaybe\tacked writes lost\tlinearizable\tmap converged\towners converged\tlongest without live primary\thooks out of order")
	for _, r := range reports {
		lin := r.Linearizable
		if lin == "" {
			lin = "not promised"
		}
		owners := "-"
		if r.Replicas > 0 {
			owners = secs(r.Replicas)
		}
		faults := 0
		for _, f := range r.Faults {
			if FaultKind(f.Kind) != JoinNode && FaultKind(f.Kind) != DrainNode {
				faults++
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%v\n", r.Strategy, r.Seed, faults, r.Total.Ops, r.Total.OK,
			r.Total.Failed, r.Total.Maybe, len(r.Lost), lin, secs(r.Converge), owners, secs(r.NoPrimary), r.HooksOutOfOrder)
	}
	return tw.Flush()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
