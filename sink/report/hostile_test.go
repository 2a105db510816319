package report

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// End users, teams and agents come from request tags, which any gateway
// caller can set. In every text format a hostile value stays literal text:
// no Markdown link or raw HTML, no terminal control, no bidi override.
func TestHostileValuesInTextOutputs(t *testing.T) {
	hostile := []string{
		"[click](javascript:alert(1))",
		"<img src=x onerror=alert(1)>",
		"\x1b[2J\x1b]0;pwned\x07eve",
		"invoice\u202Egpj.exe",
	}
	rows := fixtureRows()
	for i, h := range hostile {
		rows[i].EndUser, rows[i].Team = h, "team-"+h
	}
	s := openStore(t, rows)
	by, err := ParseDimensions("team,user")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Build(context.Background(), NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11"), By: by})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]func(*bytes.Buffer) error{
		"markdown": func(b *bytes.Buffer) error { return rep.WriteMarkdown(b) },
		"csv":      func(b *bytes.Buffer) error { return rep.WriteCSV(b) },
		"html":     func(b *bytes.Buffer) error { return rep.WriteHTML(b) },
	}
	for name, write := range outputs {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out := b.String()
		for _, bad := range []string{"\x1b", "\x07", "\u202E"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s output holds %q", name, bad)
			}
		}
		markup := map[string]*regexp.Regexp{
			// An unescaped < or ] starts HTML or a link in Markdown.
			"markdown": regexp.MustCompile(`(^|[^\\])(<img|\]\(javascript)`),
			"html":     regexp.MustCompile(`<img src=x`),
		}
		if re := markup[name]; re != nil && re.MatchString(out) {
			t.Errorf("%s output holds live markup: %q", name, re.FindString(out))
		}
		if !strings.Contains(out, `u202egpj.exe`) {
			t.Errorf("%s output lost the bidi override's escape", name)
		}
	}
}
