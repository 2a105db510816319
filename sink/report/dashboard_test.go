package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/schemas"
)

const deployDir = "../../deploy/databricks"

// databricksToDuckDB rewrites the Databricks SQL of the views and dashboard into
// DuckDB's: the constructs differ in quoting, view comments, the
// system-table names and get_json_object's name, nothing else.
func databricksToDuckDB(sql string) string {
	sql = regexp.MustCompile(`(?m)^COMMENT '(?:[^']|'')*'\n`).ReplaceAllString(sql, "")
	sql = strings.ReplaceAll(sql, "`", `"`)
	sql = strings.ReplaceAll(sql, "system.billing.usage", "billing_usage")
	sql = strings.ReplaceAll(sql, "system.billing.list_prices", "billing_list_prices")
	sql = strings.ReplaceAll(sql, "main.obolus.", "")
	sql = strings.ReplaceAll(sql, "get_json_object(", "json_extract_string(")
	return sql
}

// digest formats a query's result for comparison, numbers to 6 places.
func digest(t *testing.T, q Querier, query string) string {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []string
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case float64:
				cells[i] = fmt.Sprintf("%.6f", v)
			case duckdb.Decimal:
				cells[i] = fmt.Sprintf("%.6f", v.Float64())
			case int64:
				cells[i] = fmt.Sprintf("%.6f", float64(v))
			case int32:
				cells[i] = fmt.Sprintf("%.6f", float64(v))
			case *big.Int: // HUGEINT, e.g. count_if
				cells[i] = fmt.Sprintf("%s.000000", v)
			default:
				cells[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(cells, " | "))
	}
	slices.Sort(out)
	return strings.Join(cols, " | ") + "\n" + strings.Join(out, "\n")
}

// TestDatabricksViewsMatchDuckDB runs the Databricks store's monthly and
// billing views (schemas/ddl/databricks, which obolus init --target
// databricks creates), translated, on the fixture and expects every view to
// return what the embedded store's view of the same name returns.
func TestDatabricksViewsMatchDuckDB(t *testing.T) {
	s := fixtureStore(t)
	persistFixture(t, s.DB())
	stmts, err := schemas.DDL("databricks")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, st := range stmts {
		if strings.HasPrefix(st.Name, "v_monthly_") || st.Name == "v_billing_hourly" || st.Name == "v_coverage_monthly" {
			b.WriteString(st.SQL + "\n")
		}
	}
	create := regexp.MustCompile(`(?m)^CREATE OR REPLACE VIEW (\w+)`)
	views := create.FindAllStringSubmatch(b.String(), -1)
	if len(views) < 6 {
		t.Fatalf("found %d monthly and billing views in the Databricks DDL", len(views))
	}
	sql := create.ReplaceAllString(databricksToDuckDB(stripSQLComments(b.String())), "CREATE OR REPLACE VIEW dbx_$1")
	conn, err := s.DB().Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, stmt := range strings.Split(sql, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := conn.ExecContext(context.Background(), stmt); err != nil {
			t.Fatalf("%v\n%s", err, stmt)
		}
	}
	for _, v := range views {
		name := v[1]
		want := digest(t, conn, "SELECT * FROM "+name)
		got := digest(t, conn, "SELECT * FROM dbx_"+name)
		if got != want {
			t.Errorf("%s: the Databricks view differs from the DuckDB one:\n--- databricks ---\n%s\n--- duckdb ---\n%s", name, got, want)
		}
	}
}

func stripSQLComments(s string) string {
	return regexp.MustCompile(`(?m)--.*$`).ReplaceAllString(s, "")
}

type lvWidget struct {
	Name    string `json:"name"`
	Queries []struct {
		Query struct {
			DatasetName string `json:"datasetName"`
			Fields      []struct {
				Name       string `json:"name"`
				Expression string `json:"expression"`
			} `json:"fields"`
		} `json:"query"`
	} `json:"queries"`
	Spec *struct {
		WidgetType string          `json:"widgetType"`
		Encodings  json.RawMessage `json:"encodings"`
	} `json:"spec"`
	Text *struct {
		Lines []string `json:"lines"`
	} `json:"multilineTextboxSpec"`
}

type lvDashboard struct {
	Datasets []struct {
		Name       string   `json:"name"`
		QueryLines []string `json:"queryLines"`
	} `json:"datasets"`
	Pages []struct {
		Name   string `json:"name"`
		Layout []struct {
			Widget   lvWidget                          `json:"widget"`
			Position struct{ X, Y, Width, Height int } `json:"position"`
		} `json:"layout"`
	} `json:"pages"`
}

// TestLakeviewDashboard checks the dashboard definition and runs every one of
// its queries on the fixture store: each dataset, and each widget's fields
// over its dataset (the fixture's allocation persisted into cost_allocation).
func TestLakeviewDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "obolus-chargeback.lvdash.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d lvDashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	s := fixtureStore(t)
	persistFixture(t, s.DB())

	datasets := map[string]string{}
	for _, ds := range d.Datasets {
		q := strings.Join(ds.QueryLines, "")
		if !strings.Contains(q, "main.obolus.") {
			t.Errorf("dataset %s does not read main.obolus.*: %s", ds.Name, q)
		}
		datasets[ds.Name] = databricksToDuckDB(q)
		if n := len(digest(t, s.DB(), datasets[ds.Name])); n == 0 {
			t.Errorf("dataset %s returned nothing", ds.Name)
		}
	}
	agg := regexp.MustCompile(`(?i)\b(SUM|COUNT|AVG|MIN|MAX)\(`)
	names := map[string]bool{}
	for _, p := range d.Pages {
		for _, l := range p.Layout {
			w := l.Widget
			if names[w.Name] {
				t.Errorf("widget name %s repeats", w.Name)
			}
			names[w.Name] = true
			if pos := l.Position; pos.X < 0 || pos.Width < 1 || pos.X+pos.Width > 6 || pos.Height < 1 {
				t.Errorf("%s: position %+v is off the 6-column grid", w.Name, pos)
			}
			if w.Text != nil {
				continue
			}
			if w.Spec == nil || len(w.Queries) != 1 {
				t.Errorf("%s: want one query and a spec", w.Name)
				continue
			}
			q := w.Queries[0].Query
			base, ok := datasets[q.DatasetName]
			if !ok {
				t.Errorf("%s: unknown dataset %q", w.Name, q.DatasetName)
				continue
			}
			var sel, group []string
			for _, f := range q.Fields {
				expr := strings.ReplaceAll(f.Expression, "`", `"`)
				sel = append(sel, expr+` AS "`+f.Name+`"`)
				if !agg.MatchString(expr) {
					group = append(group, expr)
				}
				if !bytes.Contains(w.Spec.Encodings, []byte(`"fieldName": "`+f.Name+`"`)) && !bytes.Contains(w.Spec.Encodings, []byte(`"fieldName":"`+f.Name+`"`)) {
					t.Errorf("%s: field %s is queried but not drawn", w.Name, f.Name)
				}
			}
			query := "SELECT " + strings.Join(sel, ", ") + " FROM (" + base + ")"
			if len(group) > 0 && len(group) < len(q.Fields) {
				query += " GROUP BY " + strings.Join(group, ", ")
			}
			digest(t, s.DB(), query)
		}
	}
}
