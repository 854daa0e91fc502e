package dashboards

import (
	"strconv"
	"strings"
)

// The template variables that expressions may use. Prometheus's scrape
// configuration (prometheus/prometheus.yml) puts the labels strategy and
// node on every series of a node.
const (
	// VarStrategy is the strategy variable: sync, async, server-side.
	VarStrategy = "$strategy"
	// VarNode is the node variable: node-1 .. node-10.
	VarNode = "$node"
	// VarRateInterval is Grafana's range for rate(): at least four scrape
	// intervals, wider when a panel shows a longer time range.
	VarRateInterval = "$__rate_interval"
)

// Groupings of the aggregations. Every expression keeps the strategy label,
// so that one panel compares the three clusters.
var (
	perStrategy = []string{"strategy"}
	perNode     = []string{"strategy", "node"}
)

// sel is a selector of metric with the dashboards' filters on strategy and
// node, and the extra label matchers given (`op=~"set|get"`).
func sel(metric string, matchers ...string) string {
	all := append([]string{`strategy=~"` + VarStrategy + `"`, `node=~"` + VarNode + `"`}, matchers...)
	return metric + "{" + strings.Join(all, ", ") + "}"
}

// rate is the per-second rate of the counters of selector.
func rate(selector string) string {
	return "rate(" + selector + "[" + VarRateInterval + "])"
}

// increase is how much the counters of selector grew over the rate
// interval: a count of rare events (deaths, failovers) per interval.
func increase(selector string) string {
	return "increase(" + selector + "[" + VarRateInterval + "])"
}

// aggregate applies op (sum, max) by the labels to expr.
func aggregate(op string, by []string, expr string) string {
	return op + " by (" + strings.Join(by, ", ") + ") (" + expr + ")"
}

func sumBy(by []string, expr string) string { return aggregate("sum", by, expr) }
func maxBy(by []string, expr string) string { return aggregate("max", by, expr) }

// with appends labels to a grouping, leaving by unchanged.
func with(by []string, labels ...string) []string {
	return append(append([]string(nil), by...), labels...)
}

// quantile is the q-quantile of the histogram metric (its name without
// _bucket) over the rate interval, by the labels.
func quantile(q float64, metric string, by []string, matchers ...string) string {
	return "histogram_quantile(" + strconv.FormatFloat(q, 'f', -1, 64) + ", " +
		sumBy(with(by, "le"), rate(sel(metric+"_bucket", matchers...))) + ")"
}

// mean is the mean observation of the histogram metric over the rate
// interval, by the labels.
func mean(metric string, by []string, matchers ...string) string {
	return sumBy(by, rate(sel(metric+"_sum", matchers...))) + " / " +
		sumBy(by, rate(sel(metric+"_count", matchers...)))
}

// difference is a - b, matched on all labels.
func difference(a, b string) string { return a + " - " + b }

// equals keeps the series of expr equal to v.
func equals(expr string, v int) string { return expr + " == " + strconv.Itoa(v) }

// in and notIn are label matchers on a set of values.
func in(label string, values ...string) string {
	return label + `=~"` + strings.Join(values, "|") + `"`
}

func notIn(label string, values ...string) string {
	return label + `!~"` + strings.Join(values, "|") + `"`
}

func is(label, value string) string    { return label + `="` + value + `"` }
func isNot(label, value string) string { return label + `!="` + value + `"` }

// ForPrometheus makes expr a query that Prometheus runs as it is: every
// strategy and node (the variables become `.*`) and a rate interval of 1m,
// which is what a test of the dashboards against a real Prometheus uses.
func ForPrometheus(expr string) string {
	return strings.NewReplacer(VarRateInterval, "1m", VarStrategy, ".*", VarNode, ".*").Replace(expr)
}
