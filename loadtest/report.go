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

// phaseOf picks one phase of a result.
type phaseOf struct {
	name   string // write, read or mixed
	plural string // writes, reads or mixed
	of     func(result) phase
}

// phasesOf lists the phases a run measures: write, read and, with -mix,
// mixed.
func phasesOf(cfg config) []phaseOf {
	list := []phaseOf{
		{"write", "writes", func(r result) phase { return r.Write }},
		{"read", "reads", func(r result) phase { return r.Read }},
	}
	if cfg.mixed {
		list = append(list, phaseOf{"mixed", "mixed", func(r result) phase {
			if r.Mixed == nil {
				return phase{}
			}
			return *r.Mixed
		}})
	}
	return list
}

// printTable writes the results as a Markdown table, each rate also as a
// fraction of the echo ceiling measured in the same round. With several
// rounds, each phase of a row comes from the round whose ratio is the
// median (for the ceiling: whose rate is), so the figures of a cell agree
// with each other, and the ratios of every round follow the table.
func printTable(w io.Writer, cfg config, rounds [][]result) {
	phases := phasesOf(cfg)
	fmt.Fprintf(w, "\n%s\n%s\n\n", upper(cfg.describe(true)), workload(cfg, len(rounds)))

	head := []string{"Strategy"}
	for _, ph := range phases {
		title := upper(ph.name)
		if ph.name == "mixed" {
			title = fmt.Sprintf("Mixed (%.0f%% reads)", 100*cfg.mix)
		}
		head = append(head, title+" throughput", title+" latency (p50/p99)")
	}
	names := make([]string, len(phases))
	for i, ph := range phases {
		names[i] = ph.plural
	}
	head = append(head, "Consistency", "of ceiling ("+strings.Join(names, "/")+")")
	for _, ph := range phases {
		head = append(head, ph.name+" CPU µs (nodes/client)")
	}
	head = append(head, "errors")
	writeRow(w, head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---"
	}
	writeRow(w, sep)

	for row := range rounds[0] {
		cells := []string{rounds[0][row].Name}
		var ofCeiling, cpu []string
		for _, ph := range phases {
			p, r := median(rounds, row, ph.of)
			cells = append(cells, thousands(p.Rate())+"/s", ms(p.P50)+" / "+ms(p.P99))
			ofCeiling = append(ofCeiling, fmt.Sprintf("%.2f", r))
			cpu = append(cpu, cpuPerOp(p))
		}
		errs := 0
		for _, round := range rounds {
			for _, ph := range phases {
				errs += ph.of(round[row]).Errors
			}
		}
		cells = append(cells, cmp.Or(rounds[0][row].Consistency, "-"), strings.Join(ofCeiling, " / "))
		cells = append(cells, cpu...)
		writeRow(w, append(cells, strconv.Itoa(errs)))
	}

	fmt.Fprint(w, "\nCPU µs: CPU time per operation of all the cluster's node processes (or the echo server) / of the load generator's clients")
	if cfg.running() || cfg.echoAddr != "" {
		fmt.Fprint(w, "; \"-\" for servers that run elsewhere (a running cluster or echo server), whose CPU time this machine's /proc does not show")
	}
	fmt.Fprintln(w, ".")
	if len(rounds) > 1 {
		fmt.Fprintln(w, "\nRatios to the ceiling, round by round:")
		for row := 1; row < len(rounds[0]); row++ {
			var parts []string
			for _, ph := range phases {
				parts = append(parts, ph.plural+" "+ratios(rounds, row, ph.of))
			}
			fmt.Fprintf(w, "- %s: %s\n", rounds[0][row].Name, strings.Join(parts, "; "))
		}
	}
	for _, round := range rounds {
		for _, r := range round {
			for _, ph := range phases {
				if p := ph.of(r); p.FirstErr != nil {
					fmt.Fprintf(w, "\n%s: first error: %v\n", r.Name, p.FirstErr)
					break
				}
			}
		}
	}
}

// workload says what load the clients put on every row.
func workload(cfg config, rounds int) string {
	keys := "every write a new key"
	if cfg.keys > 0 {
		keys = thousands(float64(cfg.keys)) + " keys"
	}
	s := fmt.Sprintf("%d clients, %d-byte values, %s, %v per phase", cfg.clients, cfg.valueSize, keys, cfg.duration)
	if cfg.mixed {
		s += fmt.Sprintf(", mixed phase of %.0f%% reads", 100*cfg.mix)
	}
	if rounds > 1 {
		s += fmt.Sprintf(", median of %d rounds", rounds)
	}
	return s
}

func writeRow(w io.Writer, cells []string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

func upper(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

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
