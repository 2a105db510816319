package ingest

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

// sliceRows is a query result held in memory, as database/sql drivers
// deliver values to Scan into *any.
type sliceRows struct {
	cols []string
	rows [][]any
	i    int
	err  error
}

func (r *sliceRows) Columns() ([]string, error) { return r.cols, nil }
func (r *sliceRows) Next() bool                 { r.i++; return r.i <= len(r.rows) }
func (r *sliceRows) Err() error                 { return r.err }
func (r *sliceRows) Scan(dest ...any) error {
	for j, d := range dest {
		*d.(*any) = r.rows[r.i-1][j]
	}
	return nil
}

// ordered mimics duckdb-go's OrderedMap: pointer-receiver Keys and Values.
type ordered struct{ k, v []any }

func (o *ordered) Keys() []any   { return o.k }
func (o *ordered) Values() []any { return o.v }

func TestReadRows(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	src := &sliceRows{
		cols: []string{"databricks_request_id", "client_request_id", "requester", "request_time", "input_token_count",
			"output_token_count", "usage_context", "request_streaming", "status_code", "served_entity_id", "extra"},
		rows: [][]any{
			{"dbr-1", []byte("c-1"), "sp", t0, int64(10), int32(5), map[any]any{"end_user": "ann@example.com", "app": nil}, true, int32(200), "se", big.NewInt(7)},
			{"dbr-2", nil, "sp", t0.Add(time.Minute), uint64(1), nil, ordered{k: []any{"end_user"}, v: []any{"bob@example.com"}}, false, nil, "se", nil},
			{"dbr-3", nil, "sp", t0.UnixMilli(), 1.0, 2, map[string]any{"n": int64(1)}, nil, nil, nil, nil},
			{"dbr-4", nil, "sp", t0, uint64(1 << 63), 0, nil, nil, nil, nil, nil},
			{"dbr-5", nil, "sp", t0.Add(-time.Hour), 0, 0, nil, nil, nil, nil, nil},
		},
	}
	var r result
	st, err := ReadRows(context.Background(), src, "main.endpoint_usage", Spec{Kind: KindLegacyUsage}, Window{From: t0}, collect(&r))
	if err != nil {
		t.Fatal(err)
	}
	r.Stats = st
	checkStats(t, r)
	if st != (Stats{Rows: 5, Emitted: 2, OutsideWindow: 1, Dead: 2}) {
		t.Fatalf("stats %+v; dead %+v", st, r.Dead)
	}
	u := r.Usage[0]
	if u.InvocationID != "dbr-1" || u.TotalTokens != 15 || u.Source != schemas.SourceServingEndpoint ||
		len(u.RequestTags) != 2 || u.RequestTags["end_user"] != "ann@example.com" || u.RequestTags["client_request_id"] != "c-1" {
		t.Fatalf("row 1: %+v", u)
	}
	if r.Usage[1].RequestTags["end_user"] != "bob@example.com" {
		t.Fatalf("ordered map: %+v", r.Usage[1].RequestTags)
	}
	want := []string{
		`row 3 usage_context: value of key "n" is not a string: 1 {"databricks_request_id":"dbr-3"`,
		`row 4 input_token_count: out of range: 9223372036854775808 {"databricks_request_id":"dbr-4"`,
	}
	for i, d := range r.Dead {
		got := d.Location + " " + d.Field + ": " + d.Reason + " " + d.Record
		if !strings.HasPrefix(got, want[i]) || d.Source != "main.endpoint_usage" {
			t.Errorf("dead %d: %s", i, got)
		}
	}

	src = &sliceRows{cols: []string{"invocation_id"}, err: errors.New("connection reset")}
	if _, err := ReadRows(context.Background(), src, "t", Spec{Kind: KindUsage}, Window{}, collect(&result{})); err == nil || !strings.Contains(err.Error(), "t: connection reset") {
		t.Fatalf("driver error: %v", err)
	}
}
