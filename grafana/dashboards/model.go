package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// DatasourceUID is the uid of the Prometheus datasource that
// grafana/provisioning/datasources/prometheus.yaml provisions; every panel,
// query and variable names it directly.
const DatasourceUID = "clusterkit-prometheus"

// board is a dashboard as this package declares it: rows of panels, each
// panel a list of queries. The JSON and Expressions are both made from it.
type board struct {
	uid, title, help, file string
	rows                   []row
}

type row struct {
	title  string
	panels []panel
}

type kind int

const (
	graphKind kind = iota // a time series
	statKind              // the latest value of each series, with its name
	barsKind              // the latest value of each series as a bar
)

type panel struct {
	kind    kind
	title   string
	help    string
	unit    string
	targets []target
	// width in grid columns (of 24), 0 for the kind's default.
	width uint32
	// alarm colours a stat red from 1: a count that should be 0.
	alarm bool
	// names shows the series' names instead of their values (a stat of
	// which node leads).
	names bool
}

// target is one query of a panel.
type target struct {
	expr, legend string
}

func q(expr, legend string) target { return target{expr: expr, legend: legend} }

func graph(title, unit, help string, targets ...target) panel {
	return panel{kind: graphKind, title: title, unit: unit, help: help, targets: targets}
}

func single(title, unit, help string, targets ...target) panel {
	return panel{kind: statKind, title: title, unit: unit, help: help, targets: targets}
}

func bars(title, unit, help string, targets ...target) panel {
	return panel{kind: barsKind, title: title, unit: unit, help: help, targets: targets}
}

func (p panel) wide(columns uint32) panel { p.width = columns; return p }
func (p panel) alarming() panel           { p.alarm = true; return p }
func (p panel) naming() panel             { p.names = true; return p }

// boards are the dashboards, in the order they are written.
func boards() []board { return []board{clusterBoard(), strategiesBoard()} }

// Expr is one query of one panel.
type Expr struct {
	// Dashboard is the dashboard's uid.
	Dashboard string
	// Panel is the panel's title, unique within its dashboard.
	Panel string
	// Expr is the PromQL expression as Grafana sends it, with the
	// variables $strategy, $node and $__rate_interval (see ForPrometheus).
	Expr string
}

// Expressions lists every query of every panel of every dashboard, in
// dashboard and panel order: what the JSON files hold as targets[].expr.
func Expressions() []Expr {
	var out []Expr
	for _, b := range boards() {
		for _, r := range b.rows {
			for _, p := range r.panels {
				for _, t := range p.targets {
					out = append(out, Expr{Dashboard: b.uid, Panel: p.title, Expr: t.expr})
				}
			}
		}
	}
	return out
}

// File is one generated dashboard file.
type File struct {
	// Name is the file's name in grafana/dashboards.
	Name string
	// UID is the dashboard's uid.
	UID  string
	JSON []byte
}

// Files returns the dashboards as the JSON files that Grafana's file
// provider loads.
func Files() ([]File, error) {
	var out []File
	for _, b := range boards() {
		d, err := b.build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", b.uid, err)
		}
		j, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", b.uid, err)
		}
		out = append(out, File{Name: b.file, UID: b.uid, JSON: append(j, '\n')})
	}
	return out, nil
}

// Write writes every dashboard file into dir.
func Write(dir string) error {
	files, err := Files()
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.JSON, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr(DatasourceUID)}
}

// build makes the dashboard in Grafana's classic JSON model, which every
// Grafana's file provider loads; the SDK marks it deprecated in favour of
// the v2 schema, which only Grafana 12 with a feature toggle provisions.
//
//lint:ignore SA1019 the classic model is what the file provider loads
func (b board) build() (dashboard.Dashboard, error) {
	//lint:ignore SA1019 the classic model is what the file provider loads
	db := dashboard.NewDashboardBuilder(b.title).
		Uid(b.uid).
		Description(b.help).
		Tags([]string{"clusterkit"}).
		Time("now-30m", "now").
		Refresh("10s").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(dashboard.NewDashboardLinkBuilder("ClusterKit").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"clusterkit"}).
			AsDropdown(false).
			IncludeVars(true).
			KeepTime(true)).
		WithVariable(variable("strategy", "Strategy", `label_values(clusterkit_map_version, strategy)`)).
		WithVariable(variable("node", "Node", `label_values(clusterkit_map_version{strategy=~"`+VarStrategy+`"}, node)`))
	id := uint32(0)
	for _, r := range b.rows {
		id++
		db = db.WithRow(dashboard.NewRowBuilder(r.title).Id(id))
		for _, p := range r.panels {
			id++
			db = db.WithPanel(p.build(id))
		}
	}
	return db.Build()
}

// variable is a multi-value query variable whose "All" is `.*`.
func variable(name, label, query string) *dashboard.QueryVariableBuilder {
	all := "$__all"
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*").
		Current(dashboard.VariableOption{
			Text:  dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value: dashboard.StringOrArrayOfString{ArrayOfString: []string{all}},
		})
}

func (p panel) queries() []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], 0, len(p.targets))
	for i, t := range p.targets {
		b := prometheus.NewDataqueryBuilder().
			Datasource(datasource()).
			RefId(string(rune('A' + i))).
			Expr(t.expr).
			LegendFormat(t.legend)
		if p.kind == graphKind {
			b = b.Range()
		} else {
			b = b.Instant()
		}
		out = append(out, b)
	}
	return out
}

func (p panel) build(id uint32) cog.Builder[dashboard.Panel] {
	width, height := p.width, uint32(8)
	switch p.kind {
	case statKind:
		if width == 0 {
			width = 4
		}
		height = 4
		thresholds := []dashboard.Threshold{{Color: "green"}}
		if p.alarm {
			thresholds = append(thresholds, dashboard.Threshold{Value: cog.ToPtr(1.0), Color: "red"})
		}
		textMode := common.BigValueTextModeValueAndName
		if p.names {
			textMode = common.BigValueTextModeName
		}
		return stat.NewPanelBuilder().
			Id(id).Title(p.title).Description(p.help).Datasource(datasource()).
			Span(width).Height(height).Unit(p.unit).
			Targets(p.queries()).
			GraphMode(common.BigValueGraphModeNone).
			ColorMode(common.BigValueColorModeValue).
			TextMode(textMode).
			Orientation(common.VizOrientationAuto).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
			Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(thresholds))
	case barsKind:
		if width == 0 {
			width = 12
		}
		height = 12 // a bar for each node of three clusters
		return bargauge.NewPanelBuilder().
			Id(id).Title(p.title).Description(p.help).Datasource(datasource()).
			Span(width).Height(height).Unit(p.unit).Min(0).
			Targets(p.queries()).
			Orientation(common.VizOrientationHorizontal).
			DisplayMode(common.BarGaugeDisplayModeGradient).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
			Thresholds(dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).
				Steps([]dashboard.Threshold{{Color: "blue"}}))
	default:
		if width == 0 {
			width = 12
		}
		return timeseries.NewPanelBuilder().
			Id(id).Title(p.title).Description(p.help).Datasource(datasource()).
			Span(width).Height(height).Unit(p.unit).Min(0).
			Targets(p.queries()).
			FillOpacity(10).
			ShowPoints(common.VisibilityModeNever).
			Legend(common.NewVizLegendOptionsBuilder().
				ShowLegend(true).
				DisplayMode(common.LegendDisplayModeList).
				Placement(common.LegendPlacementBottom)).
			Tooltip(common.NewVizTooltipOptionsBuilder().
				Mode(common.TooltipDisplayModeMulti).
				Sort(common.SortOrderDescending))
	}
}
