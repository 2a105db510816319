package safetext

import "testing"

func TestVisible(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ana@example.com", "ana@example.com"},
		{"Zoë Ünal 日本", "Zoë Ünal 日本"},
		{"\x1b[2J\x1b]0;pwned\x07", `\x1b[2J\x1b]0;pwned\x07`},
		{"a\nb\tc\rd", `a\nb\tc\rd`},
		{"del\x7f", `del\x7f`},
		{"c1\u0085\u009b", `c1\u0085\u009b`},
		{"invoice\u202Egpj.exe", `invoice\u202egpj.exe`},
		{"\u2066iso\u2069 \u200f\u061c", `\u2066iso\u2069 \u200f\u061c`},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"real \uFFFD", "real \uFFFD"},
	}
	for _, tt := range tests {
		if got := Visible(tt.in); got != tt.want {
			t.Errorf("Visible(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMarkdown(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ana@example.com", "ana@example.com"},
		{"[click](javascript:alert(1))", `\[click\](javascript:alert(1))`},
		{"<script>alert(1)</script>", `\<script\>alert(1)\</script\>`},
		{"<javascript:alert(1)>", `\<javascript:alert(1)\>`},
		{"a|b", `a\|b`},
		{"**bold** _it_ `code` ~~s~~ &amp;", `\*\*bold\*\* \_it\_ \` + "`" + `code\` + "`" + ` \~\~s\~\~ \&amp;`},
		// The escapes Visible writes are themselves escaped: the cell shows them.
		{"x\u202Ey\n", `x\\u202ey\\n`},
	}
	for _, tt := range tests {
		if got := Markdown(tt.in); got != tt.want {
			t.Errorf("Markdown(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkVisibleClean(b *testing.B) {
	for b.Loop() {
		Visible("ana.silva@example.com")
	}
}
