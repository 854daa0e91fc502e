package main

import (
	"fmt"
	"io"
	"time"
)

// printTable writes the results as a Markdown table, each rate also as a
// fraction of the echo ceiling measured in the same run.
func printTable(w io.Writer, cfg config, results []result) {
	fmt.Fprintf(w, "\n%d nodes per cluster, %d clients, %d-byte values, %v per phase\n\n",
		cfg.nodes, cfg.clients, cfg.valueSize, cfg.duration)
	fmt.Fprintln(w, "| strategy | writes/s | of ceiling | write p50 | write p99 | reads/s | of ceiling | read p50 | read p99 | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	ceiling := results[0]
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %s | %s | %.0f | %.2f | %s | %s | %d |\n",
			r.Name, r.Write.Rate(), ratio(r.Write, ceiling.Write), ms(r.Write.P50), ms(r.Write.P99),
			r.Read.Rate(), ratio(r.Read, ceiling.Read), ms(r.Read.P50), ms(r.Read.P99),
			r.Write.Errors+r.Read.Errors)
	}
	for _, r := range results {
		for _, p := range []phase{r.Write, r.Read} {
			if p.FirstErr != nil {
				fmt.Fprintf(w, "\n%s: first error: %v\n", r.Name, p.FirstErr)
				break
			}
		}
	}
}

func ratio(p, ceiling phase) float64 {
	if ceiling.Rate() == 0 {
		return 0
	}
	return p.Rate() / ceiling.Rate()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
}
