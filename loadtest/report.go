package main

import (
	"fmt"
	"io"
	"time"
)

// printTable writes the results as a Markdown table, each rate also as a
// fraction of the echo ceiling measured in the same run.
func printTable(w io.Writer, cfg config, results []result) {
	procs := "Go's default GOMAXPROCS"
	if cfg.nodeProcs > 0 {
		procs = fmt.Sprintf("GOMAXPROCS=%d", cfg.nodeProcs)
	}
	fmt.Fprintf(w, "\n%d nodes per cluster (%s each), %d clients, %d-byte values, %v per phase\n\n",
		cfg.nodes, procs, cfg.clients, cfg.valueSize, cfg.duration)
	fmt.Fprintln(w, "| strategy | writes/s | of ceiling | write p50 | write p99 | write CPU µs (nodes/client) | reads/s | of ceiling | read p50 | read p99 | read CPU µs (nodes/client) | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	ceiling := results[0]
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %s | %s | %s | %.0f | %.2f | %s | %s | %s | %d |\n",
			r.Name, r.Write.Rate(), ratio(r.Write, ceiling.Write), ms(r.Write.P50), ms(r.Write.P99), cpuPerOp(r.Write),
			r.Read.Rate(), ratio(r.Read, ceiling.Read), ms(r.Read.P50), ms(r.Read.P99), cpuPerOp(r.Read),
			r.Write.Errors+r.Read.Errors)
	}
	fmt.Fprintln(w, "\nCPU µs: CPU time per operation of all the cluster's node processes (or the echo server) / of the load generator's clients.")
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

// cpuPerOp formats a phase's CPU time per operation, "nodes/client" in
// microseconds, "-" for what is unknown.
func cpuPerOp(p phase) string {
	servers, client := p.CPUPerOp()
	us := func(d time.Duration) string {
		if d < 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(d.Nanoseconds())/1000)
	}
	return us(servers) + "/" + us(client)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
}
