package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// printTable writes the results as a Markdown table, each rate also as a
// fraction of the echo ceiling measured in the same round. With several
// rounds, each phase of a row comes from the round whose ratio is the
// median (for the ceiling: whose rate is), so the figures of a cell agree
// with each other, and the ratios of every round follow the table.
func printTable(w io.Writer, cfg config, rounds [][]result) {
	d := cfg.describe(true)
	fmt.Fprintf(w, "\n%s\n%d clients, %d-byte values, %v per phase",
		strings.ToUpper(d[:1])+d[1:], cfg.clients, cfg.valueSize, cfg.duration)
	if len(rounds) > 1 {
		fmt.Fprintf(w, ", median of %d rounds", len(rounds))
	}
	fmt.Fprint(w, "\n\n")
	fmt.Fprintln(w, "| strategy | writes/s | of ceiling | write p50 | write p99 | write CPU µs (nodes/client) | reads/s | of ceiling | read p50 | read p99 | read CPU µs (nodes/client) | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	write := func(r result) phase { return r.Write }
	read := func(r result) phase { return r.Read }
	for row := range rounds[0] {
		wp, wr := median(rounds, row, write)
		rp, rr := median(rounds, row, read)
		errs := 0
		for _, round := range rounds {
			errs += round[row].Write.Errors + round[row].Read.Errors
		}
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %s | %s | %s | %.0f | %.2f | %s | %s | %s | %d |\n",
			rounds[0][row].Name, wp.Rate(), wr, ms(wp.P50), ms(wp.P99), cpuPerOp(wp),
			rp.Rate(), rr, ms(rp.P50), ms(rp.P99), cpuPerOp(rp), errs)
	}
	fmt.Fprint(w, "\nCPU µs: CPU time per operation of all the cluster's node processes (or the echo server) / of the load generator's clients")
	if cfg.running() || cfg.echoAddr != "" {
		fmt.Fprint(w, "; \"-\" for servers that run elsewhere (a running cluster or echo server), whose CPU time this machine's /proc does not show")
	}
	fmt.Fprintln(w, ".")
	if len(rounds) > 1 {
		fmt.Fprintln(w, "\nRatios to the ceiling, round by round:")
		for row := 1; row < len(rounds[0]); row++ {
			fmt.Fprintf(w, "- %s: writes %s; reads %s\n", rounds[0][row].Name,
				ratios(rounds, row, write), ratios(rounds, row, read))
		}
	}
	for _, round := range rounds {
		for _, r := range round {
			for _, p := range []phase{r.Write, r.Read} {
				if p.FirstErr != nil {
					fmt.Fprintf(w, "\n%s: first error: %v\n", r.Name, p.FirstErr)
					break
				}
			}
		}
	}
}

// median returns the phase of row, and its ratio to the ceiling, from the
// round where that ratio is the median (the lower of the two middle ones
// for an even count); for the ceiling's own row, the round where its rate
// is.
func median(rounds [][]result, row int, of func(result) phase) (phase, float64) {
	type entry struct {
		p   phase
		key float64
	}
	entries := make([]entry, len(rounds))
	for i, round := range rounds {
		p := of(round[row])
		key := ratio(p, of(round[0]))
		if row == 0 {
			key = p.Rate()
		}
		entries[i] = entry{p, key}
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return cmp.Compare(a.key, b.key) })
	m := entries[(len(entries)-1)/2]
	if row == 0 {
		return m.p, 1
	}
	return m.p, m.key
}

// ratios lists the ratio of row to the ceiling in each round.
func ratios(rounds [][]result, row int, of func(result) phase) string {
	list := make([]string, len(rounds))
	for i, round := range rounds {
		list[i] = fmt.Sprintf("%.2f", ratio(of(round[row]), of(round[0])))
	}
	return strings.Join(list, " ")
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

// thousands formats f rounded to a whole number, with commas between
// groups of three digits.
func thousands(f float64) string {
	s := strconv.FormatInt(int64(math.Round(f)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
