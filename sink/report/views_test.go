package report

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestAnalystViews queries the monthly views and the billing view on the
// fixture and compares with testdata/views.golden; it also checks that the
// views agree with the report where they overlap.
func TestAnalystViews(t *testing.T) {
	s := fixtureStore(t)
	ctx := context.Background()
	var out strings.Builder
	for _, v := range []struct{ name, order string }{
		{"v_monthly_user", "month, end_user"},
		{"v_monthly_team", "month, team, cost_center"},
		{"v_monthly_agent", "month, agent_endpoint"},
		{"v_monthly_model", "month, endpoint_name, destination_model"},
		{"v_coverage_monthly", "month, match_method"},
		{"v_billing_hourly", "usage_hour, gateway_endpoint_id, gateway_endpoint_name, destination_model, sku_name"},
	} {
		rows, err := s.DB().QueryContext(ctx, "SELECT * FROM "+v.name+" ORDER BY "+v.order)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(&out, "# %s\n%s\n", v.name, strings.Join(cols, " | "))
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			cells := make([]string, len(vals))
			for i, x := range vals {
				switch x := x.(type) {
				case float64:
					cells[i] = fmt.Sprintf("%.6f", x)
				default:
					cells[i] = fmt.Sprint(x)
				}
			}
			out.WriteString(strings.Join(cells, " | ") + "\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		out.WriteString("\n")
	}
	golden(t, "views.golden", []byte(out.String()))

	rep, err := Build(ctx, NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11")})
	if err != nil {
		t.Fatal(err)
	}
	var share float64
	if err := s.DB().QueryRow(`SELECT sum(share_of_cost) FILTER (WHERE basis = 'id') FROM v_coverage_monthly WHERE month = DATE '2026-11-01'`).Scan(&share); err != nil {
		t.Fatal(err)
	}
	var id, all int64
	for _, m := range rep.Methods {
		if m.Basis == "id" {
			id += m.ListMicros
		}
		all += m.ListMicros
	}
	if d := share - float64(id)/float64(all); d > 1e-6 || d < -1e-6 {
		t.Errorf("v_coverage_monthly id share of list cost %.6f, report %.6f", share, float64(id)/float64(all))
	}
}
