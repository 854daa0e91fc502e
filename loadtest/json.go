package main

import (
	"encoding/json"
	"os"
	"runtime"
	"time"
)

// jsonReport is what -json writes: the run's configuration, the machine
// it ran on, and every figure of every round.
type jsonReport struct {
	Started time.Time   `json:"started"`
	Config  jsonConfig  `json:"config"`
	Machine jsonMachine `json:"machine"`
	// Rounds holds one list per round: the ceiling first, then each
	// strategy, as in the table.
	Rounds [][]jsonResult `json:"rounds"`
}

type jsonConfig struct {
	Mode       string         `json:"mode"`
	Strategies []string       `json:"strategies"`
	Nodes      map[string]int `json:"nodes"` // per strategy
	// Clusters holds the nodes of the running clusters measured, by
	// strategy; empty for local clusters.
	Clusters  map[string][]string `json:"clusters,omitempty"`
	Echo      string              `json:"echo,omitempty"`       // a running echo server's address
	NodeProcs int                 `json:"node_procs,omitempty"` // GOMAXPROCS of each local node; 0 for Go's default
	NodeEnv   []string            `json:"node_env,omitempty"`
	Ack       string              `json:"ack"` // kv-server-side's ACK mode
	Clients   int                 `json:"clients"`
	ValueSize int                 `json:"value_size_bytes"`
	// KeySpace is the number of distinct keys; 0 gives every write a
	// new key.
	KeySpace int `json:"key_space"`
	// Mix is the fraction of reads in the mixed phase; absent without a
	// mixed phase.
	Mix             *float64 `json:"mix,omitempty"`
	DurationSeconds float64  `json:"duration_seconds"` // of each measured phase
	WarmupSeconds   float64  `json:"warmup_seconds"`
	Rounds          int      `json:"rounds"`
}

type jsonMachine struct {
	CPUs     int    `json:"cpus"` // runtime.NumCPU
	GOOS     string `json:"goos"`
	GOARCH   string `json:"goarch"`
	Hostname string `json:"hostname"`
}

type jsonResult struct {
	Name        string     `json:"name"`
	Strategy    string     `json:"strategy"` // "echo" for the ceiling
	Consistency string     `json:"consistency"`
	Write       jsonPhase  `json:"write"`
	Read        jsonPhase  `json:"read"`
	Mixed       *jsonPhase `json:"mixed,omitempty"`
}

type jsonPhase struct {
	Ops    int     `json:"ops"`
	Errors int     `json:"errors"`
	Rate   float64 `json:"rate_per_second"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	// CPUNodes and CPUClient are CPU microseconds per operation of the
	// servers and of the clients; null when unknown (CPUNodes for a
	// running cluster or echo server).
	CPUNodes  *float64 `json:"cpu_per_op_nodes_us"`
	CPUClient *float64 `json:"cpu_per_op_client_us"`
	// OfCeiling is the rate as a fraction of the same phase's rate of the
	// ceiling in the same round.
	OfCeiling  float64 `json:"of_ceiling"`
	FirstError string  `json:"first_error,omitempty"`
}

func newReport(cfg config, started time.Time, rounds [][]result) jsonReport {
	host, _ := os.Hostname()
	rep := jsonReport{
		Started: started.UTC(),
		Config: jsonConfig{
			Mode: cfg.mode(), Strategies: cfg.strategies, Nodes: map[string]int{},
			Echo: cfg.echoAddr, Ack: cfg.ack,
			Clients: cfg.clients, ValueSize: cfg.valueSize, KeySpace: cfg.keys,
			DurationSeconds: cfg.duration.Seconds(), WarmupSeconds: cfg.warmup.Seconds(), Rounds: cfg.rounds,
		},
		Machine: jsonMachine{CPUs: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Hostname: host},
	}
	for _, s := range cfg.strategies {
		rep.Config.Nodes[s] = cfg.nodesOf(s)
	}
	if cfg.running() {
		rep.Config.Clusters = cfg.clusters
	} else {
		rep.Config.NodeProcs, rep.Config.NodeEnv = cfg.nodeProcs, cfg.nodeEnv
	}
	if cfg.mixed {
		mix := cfg.mix
		rep.Config.Mix = &mix
	}
	for _, round := range rounds {
		var list []jsonResult
		for _, r := range round {
			j := jsonResult{Name: r.Name, Strategy: r.Strategy, Consistency: r.Consistency,
				Write: newJSONPhase(r.Write, round[0].Write), Read: newJSONPhase(r.Read, round[0].Read)}
			if r.Mixed != nil && round[0].Mixed != nil {
				m := newJSONPhase(*r.Mixed, *round[0].Mixed)
				j.Mixed = &m
			}
			list = append(list, j)
		}
		rep.Rounds = append(rep.Rounds, list)
	}
	return rep
}

func newJSONPhase(p, ceiling phase) jsonPhase {
	j := jsonPhase{Ops: p.Ops, Errors: p.Errors, Rate: p.Rate(),
		P50: msFloat(p.P50), P99: msFloat(p.P99), OfCeiling: ratio(p, ceiling)}
	us := func(d time.Duration) *float64 {
		if d < 0 {
			return nil
		}
		f := float64(d.Nanoseconds()) / 1000
		return &f
	}
	servers, client := p.CPUPerOp()
	j.CPUNodes, j.CPUClient = us(servers), us(client)
	if p.FirstErr != nil {
		j.FirstError = p.FirstErr.Error()
	}
	return j
}

func msFloat(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// writeJSON writes v to path as indented JSON.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
