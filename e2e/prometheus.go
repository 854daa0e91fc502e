package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Prometheus queries a Prometheus server's HTTP API.
type Prometheus struct {
	Addr string // host:port
	HC   *http.Client
}

// QueryResult is the answer to an instant query: its type and how many
// series (or, for a scalar or string, one value) it holds.
type QueryResult struct {
	Type   string
	Series int
}

// Query runs an instant query. An expression Prometheus cannot parse or
// evaluate is an error that carries Prometheus's message.
func (p *Prometheus) Query(ctx context.Context, expr string) (QueryResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		"http://"+p.Addr+"/api/v1/query?query="+url.QueryEscape(expr), nil)
	if err != nil {
		return QueryResult{}, err
	}
	resp, err := p.HC.Do(req)
	if err != nil {
		return QueryResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return QueryResult{}, err
	}
	var body struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return QueryResult{}, fmt.Errorf("query %q: HTTP %d: %w", expr, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return QueryResult{}, fmt.Errorf("query %q: %s: %s", expr, body.ErrorType, body.Error)
	}
	r := QueryResult{Type: body.Data.ResultType}
	switch r.Type {
	case "vector", "matrix":
		var series []json.RawMessage
		if err := json.Unmarshal(body.Data.Result, &series); err != nil {
			return r, fmt.Errorf("query %q: %w", expr, err)
		}
		r.Series = len(series)
	default: // scalar, string
		r.Series = 1
	}
	return r, nil
}

// Up returns the value of up for every target of job, by its node label.
func (p *Prometheus) Up(ctx context.Context, job string) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		"http://"+p.Addr+"/api/v1/query?query="+url.QueryEscape(fmt.Sprintf("up{job=%q}", job)), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.HC.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	up := map[string]string{}
	for _, r := range body.Data.Result {
		v, _ := r.Value[1].(string)
		up[r.Metric["node"]] = v
	}
	return up, nil
}
