package kittest

import (
	"net/http"
	"strconv"
	"strings"
)

// Metric returns the value of the sample named series (with its labels,
// in the exposition's order) on member i's /metrics; a series it does not
// export fails the test.
func (tc *Cluster[S, V]) Metric(i int, series string) float64 {
	tc.T.Helper()
	a := tc.Do(i, http.MethodGet, "/metrics", nil, nil)
	for line := range strings.SplitSeq(string(a.Body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tc.T.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	tc.T.Fatalf("no metric %s on node %d", series, i)
	return 0
}
