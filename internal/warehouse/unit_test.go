package warehouse

import (
	"encoding/json"
	"flag"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/internal/warehouse/tcli"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestRewriteSQL(t *testing.T) {
	named := map[string]placeholder{"id": {}, "d": {cast: "DATE"}}
	cases := []struct {
		name       string
		in         string
		positional []placeholder
		want       string
		statements int
	}{
		{"backticks", "SELECT `a b`, `x\"y`, `p``q` FROM `t`", nil, `SELECT "a b", "x""y", "p` + "`" + `q" FROM "t"`, 1},
		{"backticks in literals stay", "SELECT '`x`', \"`y`\" -- `z`", nil, "SELECT '`x`', \"`y`\" -- `z`", 1},
		{"array functions", "SELECT array_min(filter(map_keys(m), k -> k <> '')), ARRAY_MAX (x), array_min, 'array_min(x)'", nil,
			"SELECT list_min(filter(map_keys(m), k -> k <> '')), list_max (x), array_min, 'array_min(x)'", 1},
		{"json functions", "SELECT get_json_object(to_json(u.m), '$.a.b'), 'get_json_object(x)'", nil,
			"SELECT json_extract_string(to_json(u.m), '$.a.b'), 'get_json_object(x)'", 1},
		{"current_timestamp()", "SELECT current_timestamp(), CURRENT_TIMESTAMP ( ), current_date(), current_timestamp, 'current_timestamp()'", nil,
			"SELECT current_timestamp, CURRENT_TIMESTAMP, current_date, current_timestamp, 'current_timestamp()'", 1},
		{"named markers", "SELECT :id, ':id', :other /* :id */ -- :id\n, :d", nil,
			"SELECT $id, ':id', :other /* :id */ -- :id\n, CAST($d AS DATE)", 1},
		{"casts are not markers", "SELECT x::INT, :id::BIGINT, a[1:2]", nil, "SELECT x::INT, $id::BIGINT, a[1:2]", 1},
		{"positional markers", "SELECT ?, '?', \"?\", /* ? */ ?", []placeholder{{}, {cast: "DECIMAL(5, 2)"}},
			`SELECT ?, '?', "?", /* ? */ CAST(? AS DECIMAL(5, 2))`, 1},
		{"reserved catalog in three-part names", "SELECT * FROM system.ai_gateway.usage u JOIN `main`.`default`.t ON u.x = t.x",
			nil, `SELECT * FROM "system_catalog".ai_gateway.usage u JOIN "main_catalog"."default".t ON u.x = t.x`, 1},
		{"two-part names are schema.table", "SELECT main.t.a, system.x FROM main.t, a.system.b.c", nil,
			`SELECT "main_catalog".t.a, system.x FROM main.t, a.system.b.c`, 1},
		{"create catalog", "CREATE CATALOG IF NOT EXISTS main;", nil, `ATTACH IF NOT EXISTS ':memory:' AS "main_catalog"`, 1},
		{"use catalog", "USE CATALOG `system`", nil, `USE "system_catalog"`, 1},
		{"use schema", "use schema ai_gateway", nil, `USE "ai_gateway"`, 1},
		{"use catalog.schema", "USE system.ai_gateway", nil, `USE "system_catalog"."ai_gateway"`, 1},
		{"use after comments", "-- a script's comment\n  -- another\nUSE `main`.`obolus`", nil, "-- a script's comment\n  -- another\nUSE \"main_catalog\".\"obolus\"", 1},
		{"use schema-like name", "USE schema_x", nil, `USE "schema_x"`, 1},
		{"create schema in catalog", "CREATE DATABASE if not exists main.`default` COMMENT 'x'", nil,
			`CREATE SCHEMA IF NOT EXISTS "main_catalog"."default" COMMENT 'x'`, 1},
		{"volume literal", "SELECT * FROM read_parquet('/Volumes/c/s/v/f.parquet'), '/tmp/x'", nil,
			"SELECT * FROM read_parquet('/vol/c/s/v/f.parquet'), '/tmp/x'", 1},
		{"statement count", "SELECT 1; SELECT 2; -- trailing\n", nil, "SELECT 1; SELECT 2; -- trailing\n", 2},
		{"empty", "  -- nothing\n", nil, "  -- nothing\n", 0},
		{"declare variable with default", "-- the end\nDECLARE OR REPLACE VARIABLE obolus_Now TIMESTAMP DEFAULT current_timestamp();", nil,
			"-- the end\nSET VARIABLE obolus_now = CAST(current_timestamp AS TIMESTAMP)", 1},
		{"declare variable without default", "DECLARE VARIABLE session.v BIGINT", nil, "SET VARIABLE v = CAST(NULL AS BIGINT)", 1},
		{"declare variable, type from the default", "declare system.session.v = 'x'", nil, "SET VARIABLE v = 'x'", 1},
		{"declare variable with a parameterised type", "DECLARE v DECIMAL(10, 2) = 1", nil, "SET VARIABLE v = CAST(1 AS DECIMAL(10, 2))", 1},
		{"set var from a query", "SET VAR v = (SELECT max(window_end) FROM main.obolus.checkpoints WHERE job = 'j');", nil,
			`SET VARIABLE v = (SELECT max(window_end) FROM "main_catalog".obolus.checkpoints WHERE job = 'j')`, 1},
		{"set variable", "SET VARIABLE session.v = system.session.w + 1", nil, "SET VARIABLE v = getvariable('w') + 1", 1},
		{"set is not set var", "SET TIME ZONE 'UTC'", nil, "SET TIME ZONE 'UTC'", 1},
		{"variable references", "SELECT system.session.v, System . Session . W, 'system.session.v', a.system.session.v, system.x FROM t", nil,
			"SELECT getvariable('v'), getvariable('w'), 'system.session.v', a.system.session.v, system.x FROM t", 1},
		{"epoch and errors", "SELECT unix_micros(x), raise_error('no'), unix_micros", nil, "SELECT epoch_us(x), error('no'), unix_micros", 1},
		{"array_join", "SELECT array_join(map_keys(m), chr(1)), array_join", nil, "SELECT array_to_string(map_keys(m), chr(1)), array_join", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rewriteSQL(tc.in, rewriteInput{named: named, positional: tc.positional, catalogs: reservedCatalogs, volumeRoot: "/vol"})
			if err != nil {
				t.Fatal(err)
			}
			if got.sql != tc.want {
				t.Errorf("rewrite(%q)\n got %q\nwant %q", tc.in, got.sql, tc.want)
			}
			if got.statements != tc.statements {
				t.Errorf("statements = %d, want %d", got.statements, tc.statements)
			}
		})
	}
	for _, bad := range []string{"SELECT 'open", "SELECT `open", `SELECT "open`, "SELECT /* open"} {
		if _, err := rewriteSQL(bad, rewriteInput{}); err == nil {
			t.Errorf("rewrite(%q) accepted an unterminated token", bad)
		}
	}
}

func TestParseDuckType(t *testing.T) {
	cases := []struct {
		in   string
		want string // compact rendering of the parsed tree
	}{
		{"INTEGER", "INTEGER"},
		{"DECIMAL(10,2)", "DECIMAL(10,2)"},
		{"INTEGER[]", "LIST<INTEGER>"},
		{"INTEGER[3]", "ARRAY<INTEGER>"},
		{`STRUCT("a" INTEGER, "b c" VARCHAR)[]`, "LIST<STRUCT<a:INTEGER,b c:VARCHAR>>"},
		{`STRUCT("x""y" DECIMAL(4,1), plain BIGINT)`, `STRUCT<x"y:DECIMAL(4,1),plain:BIGINT>`},
		{"MAP(VARCHAR, INTEGER[])", "MAP<VARCHAR,LIST<INTEGER>>"},
		{`UNION("num" INTEGER, "s" VARCHAR)`, "UNION<num:INTEGER,s:VARCHAR>"},
	}
	for _, tc := range cases {
		got, err := parseDuckType(tc.in)
		if err != nil {
			t.Errorf("parse(%q): %v", tc.in, err)
			continue
		}
		if s := renderType(got); s != tc.want {
			t.Errorf("parse(%q) = %s, want %s", tc.in, s, tc.want)
		}
	}
	for _, bad := range []string{"", "DECIMAL(10", "STRUCT(", "MAP(VARCHAR)", "INTEGER]", "DECIMAL(a,b)"} {
		if _, err := parseDuckType(bad); err == nil {
			t.Errorf("parse(%q) succeeded", bad)
		}
	}
}

func renderType(t *duckType) string {
	switch t.base {
	case "DECIMAL":
		return "DECIMAL(" + itoa(t.precision) + "," + itoa(t.scale) + ")"
	case "LIST", "ARRAY":
		return t.base + "<" + renderType(t.elem) + ">"
	case "MAP":
		return "MAP<" + renderType(t.key) + "," + renderType(t.value) + ">"
	case "STRUCT", "UNION":
		var parts []string
		for _, f := range t.fields {
			parts = append(parts, f.name+":"+renderType(f.typ))
		}
		return t.base + "<" + strings.Join(parts, ",") + ">"
	}
	return t.base
}

func itoa(n int32) string { return big.NewInt(int64(n)).String() }

func TestFormatUnscaled(t *testing.T) {
	cases := []struct {
		v     int64
		scale int
		want  string
	}{
		{123, 2, "1.23"}, {1230, 2, "12.30"}, {5, 3, "0.005"}, {-5, 3, "-0.005"}, {0, 2, "0.00"}, {7, 0, "7"}, {-120, 1, "-12.0"},
	}
	for _, tc := range cases {
		if got := formatUnscaled(big.NewInt(tc.v), tc.scale); got != tc.want {
			t.Errorf("formatUnscaled(%d, %d) = %s, want %s", tc.v, tc.scale, got, tc.want)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	var om duckdb.OrderedMap
	om.Set("z", "last-inserted-first")
	om.Set("a", nil)
	ts := time.Date(2024, 1, 2, 3, 4, 5, 600000000, time.UTC)
	cases := []struct {
		name string
		typ  string
		v    any
		want string
	}{
		{"struct keeps field order", `STRUCT("z" INTEGER, "a" VARCHAR)`, map[string]any{"a": "x", "z": int32(1)}, `{"z":1,"a":"x"}`},
		{"map keeps key order", "MAP(VARCHAR, VARCHAR)", om, `{"z":"last-inserted-first","a":null}`},
		{"list of structs with timestamp and decimal", `STRUCT("t" TIMESTAMP, "d" DECIMAL(5,2))[]`,
			[]any{map[string]any{"t": ts, "d": duckdb.Decimal{Width: 5, Scale: 2, Value: big.NewInt(150)}}, nil},
			`[{"t":"2024-01-02 03:04:05.6","d":1.50},null]`},
		{"escaping", "VARCHAR[]", []any{"quote\" back\\ nl\n tab\t ctl\x01 <html>"}, `["quote\" back\\ nl\n tab\t ctl\u0001 <html>"]`},
		{"floats", "DOUBLE[]", []any{1.5, math.NaN(), math.Inf(-1)}, `[1.5,"NaN","-Inf"]`},
		{"uuid in list", "UUID[]", []any{[]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}},
			`["12345678-9abc-def0-1234-56789abcdef0"]`},
		{"union", `UNION("n" INTEGER, "s" VARCHAR)`, duckdb.Union{Tag: "s", Value: "x"}, `"x"`},
		{"json column", "JSON", map[string]any{"b": []any{1.0, true}, "a": nil}, `{"a":null,"b":[1,true]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			typ, err := parseDuckType(tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendJSON(nil, typ, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestFormatInterval(t *testing.T) {
	cases := []struct {
		iv   duckdb.Interval
		want string
	}{
		{duckdb.Interval{Months: 14, Days: 3, Micros: (4*3600 + 5*60 + 6) * 1_000_000}, "1 year 2 months 3 days 04:05:06"},
		{duckdb.Interval{Days: 1}, "1 day"},
		{duckdb.Interval{Micros: -1_500_000}, "-00:00:01.5"},
		{duckdb.Interval{}, "00:00:00"},
	}
	for _, tc := range cases {
		if got := formatInterval(tc.iv); got != tc.want {
			t.Errorf("formatInterval(%+v) = %q, want %q", tc.iv, got, tc.want)
		}
	}
}

func strp(s string) *string { return &s }

func TestSparkParamValue(t *testing.T) {
	cases := []struct {
		typ, val string
		want     any
		cast     string
		err      string
	}{
		{"STRING", "x", "x", "", ""},
		{"INTEGER", "-5", int32(-5), "", ""},
		{"BIGINT", "9007199254740993", int64(9007199254740993), "", ""},
		{"SMALLINT", "7", int16(7), "", ""},
		{"TINYINT", "300", nil, "", "out of range"},
		{"DOUBLE", "2.5", 2.5, "", ""},
		{"FLOAT", "1.5", float32(1.5), "", ""},
		{"BOOLEAN", "true", true, "", ""},
		{"BOOLEAN", "maybe", nil, "", "BOOLEAN"},
		{"DATE", "2024-02-29", "2024-02-29", "DATE", ""},
		{"DATE", "29/02/2024", nil, "", "YYYY-MM-DD"},
		{"TIMESTAMP", "2024-02-29T10:00:00+02:00", time.Date(2024, 2, 29, 8, 0, 0, 0, time.UTC), "", ""},
		{"DECIMAL(6,3)", "1.250", "1.250", "DECIMAL(6, 3)", ""},
		{"DECIMAL(60,3)", "1", "1", "DECIMAL(38, 3)", ""},
		{"DECIMAL(2,1)", "one", nil, "", "not a number"},
		{"INTERVAL DAY", "3 days", "3 days", "INTERVAL", ""},
		{"MAP<STRING,STRING>", "{}", nil, "", "not supported"},
	}
	for _, tc := range cases {
		p := &tcli.TSparkParameter{Name: strp("p"), Type: strp(tc.typ), Value: &tcli.TSparkParameterValue{StringValue: strp(tc.val)}}
		got, cast, err := sparkParamValue(p)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s %q: error %v, want one mentioning %q", tc.typ, tc.val, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %q: %v", tc.typ, tc.val, err)
			continue
		}
		if gt, isTime := got.(time.Time); isTime {
			if !gt.Equal(tc.want.(time.Time)) {
				t.Errorf("%s %q = %v, want %v", tc.typ, tc.val, gt, tc.want)
			}
		} else if got != tc.want {
			t.Errorf("%s %q = %#v, want %#v", tc.typ, tc.val, got, tc.want)
		}
		if cast != tc.cast {
			t.Errorf("%s %q cast = %q, want %q", tc.typ, tc.val, cast, tc.cast)
		}
	}

	_, _, err := bindParameters([]*tcli.TSparkParameter{
		{Name: strp("a"), Type: strp("INTEGER"), Value: &tcli.TSparkParameterValue{StringValue: strp("1")}},
		{Type: strp("INTEGER"), Value: &tcli.TSparkParameterValue{StringValue: strp("2")}},
	})
	if err == nil || !strings.Contains(err.Error(), "mixed") {
		t.Errorf("mixing named and positional parameters: %v", err)
	}
	_, _, err = bindParameters([]*tcli.TSparkParameter{{Name: strp("limit"), Type: strp("BIGINT"), Value: &tcli.TSparkParameterValue{StringValue: strp("ten")}}})
	if err == nil || !strings.Contains(err.Error(), "parameter limit") || !strings.Contains(err.Error(), `"ten"`) {
		t.Errorf("bad BIGINT value: error %v should name the parameter and the value", err)
	}
}

// TestColumnDescriptorsGolden pins the HiveServer2 column descriptors (what
// the driver reports as column types) for DuckDB's result types.
func TestColumnDescriptorsGolden(t *testing.T) {
	s, err := New(Config{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.DB().QueryContext(testCtx(t), `SELECT
		true AS bool, 1::TINYINT AS tiny, 1::SMALLINT AS small, 1::INTEGER AS int, 1::BIGINT AS big, 1::HUGEINT AS huge,
		1::UTINYINT AS utiny, 1::UBIGINT AS ubig, 1.5::FLOAT AS float, 1.5::DOUBLE AS double, 1.5::DECIMAL(18,3) AS dec,
		'x' AS str, 'x'::BLOB AS blob, DATE '2024-01-01' AS date, TIMESTAMP '2024-01-01 00:00:00' AS ts,
		TIMESTAMPTZ '2024-01-01 00:00:00+00' AS tstz, TIME '10:00:00' AS time, INTERVAL 1 DAY AS iv, uuid() AS id,
		[1, 2] AS list, [1, 2]::INTEGER[2] AS arr, MAP {'k': 1} AS map, {'a': 1} AS struct, '{"a":1}'::JSON AS json,
		NULL AS nothing`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	var cols []column
	for _, ct := range types {
		c, err := newColumn(ct.Name(), ct.DatabaseTypeName())
		if err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	enc, err := newEncoding(cols, true, &tcli.TSparkArrowTypes{TimestampAsArrow: boolp(true), DecimalAsArrow: boolp(false)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Column string `json:"column"`
		DuckDB string `json:"duckdb"`
		Hive   string `json:"hive"`
		Arrow  string `json:"arrow"`
	}
	var got []entry
	for i, c := range cols {
		d := c.desc(i)
		hive := d.TypeDesc.Types[0].PrimitiveEntry.Type.String()
		if q := d.TypeDesc.Types[0].PrimitiveEntry.TypeQualifiers; q != nil {
			hive += "(" + itoa(q.Qualifiers["precision"].GetI32Value()) + "," + itoa(q.Qualifiers["scale"].GetI32Value()) + ")"
		}
		got = append(got, entry{Column: c.name, DuckDB: types[i].DatabaseTypeName(), Hive: hive, Arrow: enc.schema.Field(i).Type.String()})
	}
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	golden := filepath.Join("testdata", "column_descriptors.golden.json")
	if *update {
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestColumnDescriptorsGolden -update to create it)", err)
	}
	if string(want) != string(b) {
		t.Errorf("column descriptors changed; got:\n%s", b)
	}
}

func boolp(b bool) *bool { return &b }

func TestSparkTypeToDuck(t *testing.T) {
	cases := map[string]string{
		"string":                 "VARCHAR",
		"BIGINT":                 "BIGINT",
		"timestamp":              "TIMESTAMPTZ",
		"timestamp_ntz":          "TIMESTAMP",
		"decimal(10, 2)":         "DECIMAL(10,2)",
		"decimal":                "DECIMAL(10,0)",
		"varchar(20)":            "VARCHAR",
		"array<int>":             "INTEGER[]",
		"map<string, string>":    "MAP(VARCHAR, VARCHAR)",
		"map<string,array<int>>": "MAP(VARCHAR, INTEGER[])",
		"struct<creator:string,creation_time:timestamp,destinations:array<struct<name:string,traffic_percent:double>>>": `STRUCT("creator" VARCHAR, "creation_time" TIMESTAMPTZ, "destinations" STRUCT("name" VARCHAR, "traffic_percent" DOUBLE)[])`,
	}
	for in, want := range cases {
		got, err := sparkTypeToDuck(in)
		if err != nil || got != want {
			t.Errorf("sparkTypeToDuck(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "map<string>", "struct<a string>", "decimal(0)", "decimal(5,6)", "array<int", "int extra", "geography"} {
		if got, err := sparkTypeToDuck(bad); err == nil {
			t.Errorf("sparkTypeToDuck(%q) = %q, want an error", bad, got)
		}
	}
}

// TestCloseWithSpareConnection: Go's HTTP client opens spare connections
// when requests overlap, and may never send a request on one. Close must
// not wait for them (http.Server.Shutdown would, for up to six seconds).
func TestCloseWithSpareConnection(t *testing.T) {
	s, err := New(Config{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	spare, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer spare.Close()
	if err := s.Close(); err != nil {
		t.Fatalf("Close with a spare connection open: %v", err)
	}
	// The spare connection was closed by the server.
	if _, err := spare.Read(make([]byte, 1)); err == nil {
		t.Error("spare connection still open after Close")
	}
}
