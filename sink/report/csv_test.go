package report

import (
	"bytes"
	"strings"
	"testing"
)

// Text cells a spreadsheet would evaluate are defused, controls and bidi
// overrides made visible; numbers and JSON are not touched; RawCSV writes
// them as they are.
func TestCSVFormulaInjection(t *testing.T) {
	tb := &table{cols: []column{{name: "end_user", kind: kString}, {name: "cost", kind: kDecimal, scale: 2}},
		rows: [][]any{
			{`=HYPERLINK("http://evil.example","x")`, "-1.50"},
			{"+1", "2.00"}, {"-2", "3.00"}, {"@SUM(A1)", "4.00"}, {"\tx", "5.00"}, {"\rx", "6.00"},
			{"ana@example.com", "-7.00"}, {`{"k":"=v"}`, "8.00"},
			{"\x1b]0;pwned\x07x", "9.00"}, {"inv\u202Egpj.exe", "10.00"},
		}}
	var safe, raw bytes.Buffer
	if err := tb.writeCSV(&safe, false); err != nil {
		t.Fatal(err)
	}
	if err := tb.writeCSV(&raw, true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"'=HYPERLINK(""http://evil.example"",""x"")",-1.50`, "'+1,2.00", "'-2,3.00", "'@SUM(A1),4.00",
		// Controls and bidi overrides show as escapes: a leading TAB or CR is
		// no longer a formula prefix, and no cell can drive a terminal.
		`\tx,5.00`, `\rx,6.00`, "ana@example.com,-7.00", `"{""k"":""=v""}",8.00`, `\x1b]0;pwned\x07x,9.00`, `inv\u202egpj.exe,10.00`} {
		if !strings.Contains(safe.String(), want) {
			t.Errorf("safe CSV lacks %q:\n%s", want, safe.String())
		}
	}
	if !strings.Contains(raw.String(), `"=HYPERLINK(`) || !strings.Contains(raw.String(), "\n+1,") {
		t.Errorf("raw CSV changed cells:\n%s", raw.String())
	}
}
