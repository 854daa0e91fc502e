// Package dashboards defines ClusterKit's Grafana dashboards as Go, with
// the Grafana Foundation SDK, and writes them as the JSON files beside this
// package that Grafana's file provider loads (grafana/dashboards, mounted
// at /var/lib/grafana/dashboards; Grafana reads only the .json files).
//
// Every PromQL expression is made by the helpers of promql.go from the
// metric names, so that each query is written once. Expressions lists them
// all, as the JSON holds them in targets[].expr; ForPrometheus turns one
// into a query Prometheus runs as it is.
//
// Regenerate the JSON after a change, from the repository root:
//
//	go run ./grafana/cmd/dashboards
//
// or `go generate ./...` in grafana/. The package's test fails while the
// committed JSON differs from what the generator writes.
package dashboards

//go:generate go run ../cmd/dashboards -dir .
