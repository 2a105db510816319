package warehouse

import (
	"slices"
	"testing"
)

func TestDeltaForm(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
		want     []string
	}{
		{"plain select", "SELECT 1", false, nil},
		{"plain table", "CREATE TABLE t (a INT)", false, nil},
		{"delta table", `CREATE TABLE IF NOT EXISTS t (
    a STRING NOT NULL COMMENT 'the a',
    b DECIMAL(10, 2)
) USING DELTA CLUSTER BY (a) COMMENT 'a table' TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')`, true, []string{
			"CREATE TABLE IF NOT EXISTS t (\n    a STRING NOT NULL,\n    b DECIMAL (10, 2)\n)",
			"COMMENT ON TABLE t IS 'a table'",
			"COMMENT ON COLUMN t.a IS 'the a'",
		}},
		{"partitioned", "CREATE TABLE IF NOT EXISTS t (a INT) USING DELTA PARTITIONED BY (a)", true, []string{"CREATE TABLE IF NOT EXISTS t (\n    a INT\n)"}},
		{"view with comments", "CREATE OR REPLACE VIEW v (x COMMENT 'it''s x') COMMENT 'v' AS SELECT 1 AS x", true, []string{
			"CREATE OR REPLACE VIEW v (x) AS\nSELECT 1 AS x",
			"COMMENT ON VIEW v IS 'v'",
			"COMMENT ON COLUMN v.x IS 'it''s x'",
		}},
		{"volume", "CREATE VOLUME IF NOT EXISTS main.obolus.staging", true, nil},
		{"add columns", "ALTER TABLE runs ADD COLUMNS (\n  stale BIGINT COMMENT 'rows kept',\n  n INT\n)", true, []string{
			"ALTER TABLE runs ADD COLUMN stale BIGINT",
			"COMMENT ON COLUMN runs.stale IS 'rows kept'",
			"ALTER TABLE runs ADD COLUMN n INT",
		}},
		{"plain alter", "ALTER TABLE runs DROP COLUMN stale", false, nil},
		// Nothing to rewrite: it must not come back as a form of itself,
		// which the server would translate again and again.
		{"delta table as select", "CREATE TABLE t USING DELTA AS SELECT 1 AS a", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := deltaForm(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.ok || !slices.Equal(got, tt.want) {
				t.Errorf("deltaForm(%q) = %q, %v\nwant %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
	if _, _, err := deltaForm("CREATE TABLE t (a STRING COMMENT 'open) USING DELTA"); err == nil {
		t.Error("an unterminated string was accepted")
	}
}

func TestReplaceWhereForm(t *testing.T) {
	tests := []struct {
		in, want string
		ok, err  bool
	}{
		{in: "INSERT INTO c.s.t REPLACE WHERE hour >= ? AND hour < ? SELECT a, b FROM c.s.stage",
			want: "MERGE INTO c.s.t USING (SELECT a, b FROM c.s.stage) AS obolus_replace_source ON FALSE WHEN NOT MATCHED BY TARGET THEN INSERT * " +
				"WHEN NOT MATCHED BY SOURCE AND (hour >= ? AND hour < ?) THEN DELETE", ok: true},
		{in: "insert into table `t` replace where d IN (SELECT d FROM x) WITH q AS (SELECT 1 AS d) SELECT * FROM q;",
			want: "MERGE INTO `t` USING (WITH q AS (SELECT 1 AS d) SELECT * FROM q) AS obolus_replace_source ON FALSE WHEN NOT MATCHED BY TARGET THEN INSERT * " +
				"WHEN NOT MATCHED BY SOURCE AND (d IN (SELECT d FROM x)) THEN DELETE", ok: true},
		{in: "INSERT INTO t REPLACE WHERE d = 1 SELECT * FROM s WHERE e = ?", ok: true, err: true},
		{in: "INSERT INTO t REPLACE WHERE d = 1 SELECT * FROM s WHERE e = :e", ok: true, err: true},
		{in: "INSERT INTO t REPLACE WHERE SELECT 1", ok: true, err: true},
		{in: "INSERT INTO t SELECT * FROM s"},
		{in: "INSERT INTO t VALUES (1)"},
		{in: "SELECT 'INSERT INTO t REPLACE WHERE'"},
	}
	for _, tt := range tests {
		got, ok, err := replaceWhereForm(tt.in)
		if ok != tt.ok || (err != nil) != tt.err || !tt.err && got != tt.want {
			t.Errorf("replaceWhereForm(%q) = %q, %v, %v\nwant %q, %v, error %v", tt.in, got, ok, err, tt.want, tt.ok, tt.err)
		}
	}
}
