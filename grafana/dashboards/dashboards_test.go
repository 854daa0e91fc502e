package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The committed JSON is what Grafana loads: it must be what the generator
// writes from the Go definitions.
func TestCommittedJSONIsGenerated(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("got %d dashboard files, want 2", len(files))
	}
	for _, f := range files {
		committed, err := os.ReadFile(f.Name)
		if err != nil {
			t.Fatalf("%v: run `go run ./grafana/cmd/dashboards` from the repository root", err)
		}
		if !bytes.Equal(committed, f.JSON) {
			t.Errorf("grafana/dashboards/%s differs from what the generator writes: run `go run ./grafana/cmd/dashboards` from the repository root (or `go generate ./...` in grafana/) and commit the result", f.Name)
		}
	}
}

// jsonPanel is what the tests read of a panel of the generated JSON.
type jsonPanel struct {
	Type       string          `json:"type"`
	ID         int             `json:"id"`
	Title      string          `json:"title"`
	Datasource *jsonDatasource `json:"datasource"`
	Targets    []struct {
		Datasource *jsonDatasource `json:"datasource"`
		Expr       string          `json:"expr"`
		RefID      string          `json:"refId"`
	} `json:"targets"`
	Panels []jsonPanel `json:"panels"`
}

type jsonDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type jsonDashboard struct {
	UID        string      `json:"uid"`
	Panels     []jsonPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Datasource *jsonDatasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

func parsed(t *testing.T) []jsonDashboard {
	t.Helper()
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	var out []jsonDashboard
	for _, f := range files {
		var d jsonDashboard
		if err := json.Unmarshal(f.JSON, &d); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if d.UID != f.UID {
			t.Fatalf("%s: uid %q, want %q", f.Name, d.UID, f.UID)
		}
		out = append(out, d)
	}
	return out
}

// panels flattens the panels of d, those inside rows included.
func panels(ps []jsonPanel) []jsonPanel {
	var out []jsonPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, panels(p.Panels)...)
	}
	return out
}

// Expressions is exactly what a reader of the JSON finds in targets[].expr.
func TestExpressionsAreTheJSONTargets(t *testing.T) {
	var fromJSON []Expr
	for _, d := range parsed(t) {
		for _, p := range panels(d.Panels) {
			for _, tg := range p.Targets {
				fromJSON = append(fromJSON, Expr{Dashboard: d.UID, Panel: p.Title, Expr: tg.Expr})
			}
		}
	}
	exprs := Expressions()
	if len(exprs) == 0 {
		t.Fatal("no expressions")
	}
	if len(fromJSON) != len(exprs) {
		t.Fatalf("JSON has %d targets, Expressions %d", len(fromJSON), len(exprs))
	}
	for i := range exprs {
		if fromJSON[i] != exprs[i] {
			t.Errorf("target %d: JSON %+v, Expressions %+v", i, fromJSON[i], exprs[i])
		}
	}
}

// Every panel, query and variable names the provisioned datasource by its
// uid: no datasource input to fill in on import.
func TestEverythingUsesTheDatasourceUID(t *testing.T) {
	for _, f := range mustFiles(t) {
		if bytes.Contains(f.JSON, []byte("${DS_")) || bytes.Contains(f.JSON, []byte(`"__inputs"`)) {
			t.Errorf("%s has a datasource input", f.Name)
		}
	}
	want := jsonDatasource{Type: "prometheus", UID: DatasourceUID}
	for _, d := range parsed(t) {
		ids := map[int]bool{}
		for _, p := range panels(d.Panels) {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("%s: panel %q has id %d, not unique and positive", d.UID, p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || *p.Datasource != want {
				t.Errorf("%s: panel %q datasource %+v, want %+v", d.UID, p.Title, p.Datasource, want)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", d.UID, p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Datasource == nil || *tg.Datasource != want {
					t.Errorf("%s: panel %q query %s datasource %+v, want %+v", d.UID, p.Title, tg.RefID, tg.Datasource, want)
				}
			}
		}
		if len(d.Templating.List) == 0 {
			t.Errorf("%s has no variables", d.UID)
		}
		for _, v := range d.Templating.List {
			if v.Datasource == nil || *v.Datasource != want {
				t.Errorf("%s: variable %s datasource %+v, want %+v", d.UID, v.Name, v.Datasource, want)
			}
		}
	}
}

func mustFiles(t *testing.T) []File {
	t.Helper()
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var variableRef = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*`)

func TestExpressions(t *testing.T) {
	allowed := map[string]bool{VarStrategy: true, VarNode: true, VarRateInterval: true}
	seen := map[string]Expr{}
	panelsSeen := map[[2]string]bool{}
	prev := Expr{}
	for _, e := range Expressions() {
		key := [2]string{e.Dashboard, e.Panel}
		if key != [2]string{prev.Dashboard, prev.Panel} && panelsSeen[key] {
			t.Errorf("%s: two panels are titled %q", e.Dashboard, e.Panel)
		}
		panelsSeen[key] = true
		prev = e
		// A query is defined once: two panels showing the same query is
		// one too many.
		if other, dup := seen[e.Expr]; dup {
			t.Errorf("%s %q and %s %q both query %s", other.Dashboard, other.Panel, e.Dashboard, e.Panel, e.Expr)
		}
		seen[e.Expr] = e
		for _, v := range variableRef.FindAllString(e.Expr, -1) {
			if !allowed[v] {
				t.Errorf("%s %q: variable %s in %s (allowed: $strategy, $node, $__rate_interval)", e.Dashboard, e.Panel, v, e.Expr)
			}
		}
		if !balanced(e.Expr) {
			t.Errorf("%s %q: unbalanced brackets in %s", e.Dashboard, e.Panel, e.Expr)
		}
		p := ForPrometheus(e.Expr)
		if strings.Contains(p, "$") {
			t.Errorf("ForPrometheus(%s) = %s: a variable is left", e.Expr, p)
		}
	}
}

// balanced reports whether the brackets of a PromQL expression pair up
// (outside its quoted strings).
func balanced(s string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case quoted:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && !quoted
}

func TestForPrometheus(t *testing.T) {
	got := ForPrometheus(`sum by (strategy) (rate(x{strategy=~"$strategy", node=~"$node"}[$__rate_interval]))`)
	want := `sum by (strategy) (rate(x{strategy=~".*", node=~".*"}[1m]))`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// The provisioned datasource has the uid the panels name.
func TestProvisionedDatasourceUID(t *testing.T) {
	b, err := os.ReadFile("../provisioning/datasources/prometheus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "uid: "+DatasourceUID+"\n") {
		t.Errorf("provisioning/datasources/prometheus.yaml does not provision uid %s", DatasourceUID)
	}
}
