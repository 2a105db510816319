package pushdown

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/internal/dbsql/dbsqltest"
	"github.com/obolus/obolus/internal/warehouse"
	"github.com/obolus/obolus/schemas"
)

// The SQL tag lookups give what enrich.TagValue gives, for request_tags maps
// and for legacy rows (usage_context plus client_request_id), with forgiving
// and exact keys, run on the local warehouse through the driver.
func TestTagLookupSQLMatchesGo(t *testing.T) {
	maps := []map[string]string{
		nil,
		{},
		{"trace_id": "a"},
		{"Trace_Id": "b"},
		{"TRACE-ID": "c", "trace.id": "d"},
		{"trace_id": "", "Trace-Id": "e"},
		{"trace_id": "f", "TRACE_ID": "g"},
		{"traceid": "h", "trace__id": "i", "trace_idx": "j"},
		{"client_request_id": "k"},
		{"Client-Request-Id": "l"},
		{"client_request_id": "", "CLIENT_REQUEST_ID": "m"},
		{"client.request.id": "n", "Client_Request_Id": "o"},
		{"ünïcode": "p", "TRACE_ID": "q"},
		{"end_user": "r", "End-User": "s", "x'y": "t"},
	}
	cids := []string{"", "cid-1"}
	keys := []string{"trace_id", "Trace-ID", "client_request_id", "Client.Request.Id", "end_user", "ünïcode"}

	wh := dbsqltest.Start(t, warehouse.Config{})
	raw := wh.Server.DB()
	for _, q := range []string{
		`ATTACH IF NOT EXISTS ':memory:' AS lakehouse`,
		`CREATE SCHEMA lakehouse.tags`,
		`CREATE TABLE lakehouse.tags.rows (n BIGINT, tags MAP(VARCHAR, VARCHAR), cid VARCHAR)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	type row struct {
		tags map[string]string
		cid  string
	}
	var rows []row
	for _, m := range maps {
		for _, cid := range cids {
			rows = append(rows, row{m, cid})
		}
	}
	for n, r := range rows {
		m := "NULL"
		if r.tags != nil {
			var kv []string
			for k, v := range r.tags {
				kv = append(kv, sqlString(k)+": "+sqlString(v))
			}
			m = "MAP {" + strings.Join(kv, ", ") + "}"
		}
		if _, err := raw.Exec(fmt.Sprintf(`INSERT INTO lakehouse.tags.rows VALUES (%d, %s, %s)`, n, m, sqlString(r.cid))); err != nil {
			t.Fatal(err)
		}
	}
	db := dbsqltest.Open(t, wh.Config)
	for _, exact := range []bool{false, true} {
		for _, key := range keys {
			for _, form := range []struct {
				legacy bool
				folded string // the folded keys column, "" computed in the lookup
				from   string
			}{
				{false, "", "lakehouse.tags.rows r"},
				{true, "", "lakehouse.tags.rows r"},
				{false, "r.fk", "(SELECT r0.*, " + FoldedTagKeysSQL("r0.`tags`") + " AS fk FROM lakehouse.tags.rows r0) r"},
				{true, "r.fk", "(SELECT r0.*, " + FoldedTagKeysSQL("r0.`tags`") + " AS fk FROM lakehouse.tags.rows r0) r"},
			} {
				legacy := form.legacy
				p := &params{}
				l := newTagLookup(p, "k", key, exact)
				expr := l.inMap("r.`tags`", form.folded)
				if legacy {
					expr = l.inLegacy("r.`tags`", form.folded, "r.`cid`", key)
				}
				q := "SELECT n, " + expr + " AS v FROM " + form.from + " ORDER BY n"
				got := queryValues(t, db, q, p.args)
				for n, r := range rows {
					tags := r.tags
					if legacy {
						tags = schemas.LegacyUsage{UsageContext: r.tags, ClientRequestID: r.cid}.UsageEvent().RequestTags
					}
					want := enrich.TagValue(tags, key, exact)
					if got[n] != want {
						t.Errorf("exact=%v legacy=%v folded=%q key %q over %v (cid %q): SQL gives %q, Go gives %q", exact, legacy, form.folded, key, r.tags, r.cid, got[n], want)
					}
				}
			}
		}
	}
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func queryValues(t *testing.T, db *sql.DB, q string, args []any) map[int]string {
	t.Helper()
	rs, err := db.QueryContext(dbsqltest.Context(t), q, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rs.Close()
	out := map[int]string{}
	for rs.Next() {
		var n int
		var v sql.NullString
		if err := rs.Scan(&n, &v); err != nil {
			t.Fatal(err)
		}
		out[n] = v.String
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
