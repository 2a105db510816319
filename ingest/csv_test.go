package ingest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every physical line of a CSV file is a row that is used, or is part of a
// dead letter with its raw text: a stray quote must not hide the rows after
// it (it used to swallow 1,000 valid rows into one dead letter with an empty
// record, and the run still reconciled).
func TestCSVEveryLineAccounted(t *testing.T) {
	const header = "invocation_id,event_time,requester,total_tokens\n"
	row := func(i int) string { return fmt.Sprintf("inv-%d,2026-11-01T10:00:00Z,sp-1,%d\n", i, i) }
	rows := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			b.WriteString(row(i))
		}
		return b.String()
	}
	tests := []struct {
		name string
		body string
		used int
		dead []string // location of each dead letter, in order
		raw  []string // its record
	}{
		{"unclosed quote before 1000 rows", header + rows(0, 10) + "inv-x,\"2026-11-01T10:00:00Z,sp-1,5\n" + rows(10, 1000),
			1000, []string{"line 12"}, []string{`inv-x,"2026-11-01T10:00:00Z,sp-1,5`}},
		{"quote closed lines later, then text", header + rows(0, 3) + "inv-x,\"2026-11-01\n" + rows(3, 5) + "x\"y,sp-1,5\n" + rows(5, 8),
			// line 5 opens the quote; lines 6 and 7 are rows again; line 8
			// has a bare quote.
			8, []string{"line 5", "line 8"}, []string{`inv-x,"2026-11-01`, `x"y,sp-1,5`}},
		{"bare quote", header + rows(0, 2) + "inv-\"x,2026-11-01T10:00:00Z,sp-1,5\n" + rows(2, 4),
			4, []string{"line 4"}, []string{`inv-"x,2026-11-01T10:00:00Z,sp-1,5`}},
		{"two unclosed quotes", header + "\"inv-a,2026\n" + rows(0, 2) + "inv-b,\"2026\n" + rows(2, 4),
			4, []string{"line 2", "line 5"}, []string{`"inv-a,2026`, `inv-b,"2026`}},
		{"quoted newline is one row", header + "inv-q,2026-11-01T10:00:00Z,\"sp-1\",\"5\"\n" + "inv-m,2026-11-01T10:00:00Z,sp-1,\"7\n\"\n" + rows(0, 1),
			3, nil, nil},
		{"CRLF", strings.ReplaceAll(header+rows(0, 2)+"inv-x,\"2026\n"+rows(2, 3), "\n", "\r\n"),
			3, []string{"line 4"}, []string{`inv-x,"2026`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "usage.csv")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			r := read(t, Spec{Kind: KindUsage, Path: path}, Window{})
			if len(r.Usage) != tt.used || len(r.Dead) != len(tt.dead) {
				for _, d := range r.Dead {
					t.Logf("dead %s: %s %q", d.Location, d.Reason, d.Record)
				}
				t.Fatalf("%d rows used and %d dead, want %d and %d", len(r.Usage), len(r.Dead), tt.used, len(tt.dead))
			}
			for i, d := range r.Dead {
				if d.Location != tt.dead[i] || d.Record != tt.raw[i] {
					t.Errorf("dead letter %d at %s record %q, want %s %q (%s)", i, d.Location, d.Record, tt.dead[i], tt.raw[i], d.Reason)
				}
			}
		})
	}
}

// A CSV file whose first line names no known column has no header: the
// file fails instead of losing its first row as column names.
func TestCSVWithoutHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.csv")
	if err := os.WriteFile(path, []byte("inv-1,2026-11-01T10:00:00Z,sp-1,5\ninv-2,2026-11-01T10:00:00Z,sp-1,5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFiles(context.Background(), Spec{Kind: KindUsage, Path: path}, Window{}, collect(&result{}))
	if err == nil || !strings.Contains(err.Error(), "usage.csv") || !strings.Contains(err.Error(), "header row missing") {
		t.Fatalf("err %v", err)
	}
}
