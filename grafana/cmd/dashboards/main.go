// Command dashboards writes ClusterKit's Grafana dashboards as JSON into
// grafana/dashboards (or -dir), from their definitions in package
// clusterkit.dev/grafana/dashboards.
package main

import (
	"flag"
	"fmt"
	"os"

	"clusterkit.dev/grafana/dashboards"
)

func main() {
	dir := flag.String("dir", "grafana/dashboards", "directory to write the dashboard files into (the default is relative to the repository root)")
	flag.Parse()
	if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
		fmt.Fprintf(os.Stderr, "dashboards: %s is not a directory: run from the repository root or give -dir\n", *dir)
		os.Exit(2)
	}
	if err := dashboards.Write(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "dashboards:", err)
		os.Exit(1)
	}
}
