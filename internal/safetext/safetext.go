// Package safetext renders untrusted strings — end users, teams, agent and
// model names, which any gateway caller can set through request tags — for
// text outputs, so that no value can drive a terminal, inject markup, or
// reorder the text shown around it.
package safetext

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// isBidi reports the Unicode bidirectional formatting characters: marks,
// embeddings, overrides and isolates. U+202E alone turns "gpj.exe" into
// what reads as "exe.jpg".
func isBidi(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// isControl reports C0 and C1 control characters and DEL: ESC starts
// terminal sequences (clear the screen, set the title), BEL rings, CR
// overwrites the line.
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7F && r <= 0x9F)
}

// needsRewrite reports whether s holds a rune Visible must rewrite.
func needsRewrite(s string) bool {
	for _, r := range s {
		if r < 0x20 || r >= 0x7F && (isControl(r) || isBidi(r) || r == utf8.RuneError) {
			return true
		}
	}
	return false
}

// Visible replaces control characters and bidi formatting characters with
// visible escapes (\x1b, \u202e) and invalid UTF-8 with U+FFFD; other text
// is unchanged. A string without them is returned as it is.
func Visible(s string) string {
	if !needsRewrite(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				b.WriteRune(utf8.RuneError)
			} else {
				b.WriteRune(r) // a real U+FFFD
			}
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80 && isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isControl(r) || isBidi(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// markdownSpecial is the ASCII punctuation that means something inside a
// Markdown table cell: links ([ ]), raw HTML and autolinks (< >), entities
// (&), code, emphasis and strikethrough, the cell separator, and the escape.
const markdownSpecial = "\\|[]<>&`*_~"

// Markdown renders s as the literal text of one Markdown table cell:
// Visible, then every character Markdown would interpret backslash-escaped,
// so no value becomes a link, HTML, or formatting.
func Markdown(s string) string {
	s = Visible(s)
	if !strings.ContainsAny(s, markdownSpecial) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		if r < 0x80 && strings.ContainsRune(markdownSpecial, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
