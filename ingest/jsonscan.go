package ingest

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds nesting in skipped values, so hostile input cannot exhaust
// the stack.
const maxDepth = 512

// scanner reads one JSON text. It is hand-written rather than encoding/json
// because decoding is the batch path's hot loop: it hands out string contents
// as sub-slices of the input (or of buf when they hold escapes) and allocates
// only for what the caller keeps.
type scanner struct {
	b   []byte
	i   int
	buf []byte // unescaped string contents; reused by every readString
}

// plain marks bytes a string can hold that need no attention: printable
// ASCII other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Byte-lane masks for scanning eight string bytes at once.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// syntaxError is a JSON grammar error; the decoder reports it for the whole record.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

// utf8Error is invalid UTF-8 inside a string; the decoder names the field.
type utf8Error struct{}

func (utf8Error) Error() string { return "invalid UTF-8" }

func (s *scanner) errf(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf("invalid JSON at byte %d: ", s.i) + fmt.Sprintf(format, args...)}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		if s.i >= len(s.b) {
			return s.errf("unexpected end, want %q", c)
		}
		return s.errf("unexpected %q, want %q", s.b[s.i], c)
	}
	s.i++
	return nil
}

// readString reads a string starting at the opening quote and returns its
// contents, valid until the next readString.
func (s *scanner) readString() ([]byte, error) {
	if s.i >= len(s.b) {
		return nil, s.errf("unexpected end, want a string")
	}
	if s.b[s.i] != '"' {
		return nil, s.errf("unexpected %q, want a string", s.b[s.i])
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		// Eight bytes at a time while none needs attention: most of a row is
		// string contents, so this loop is where decoding spends its time.
		for s.i+8 <= len(s.b) {
			x := binary.LittleEndian.Uint64(s.b[s.i:])
			q, bs := x^(lsb*'"'), x^(lsb*'\\')
			if ((q-lsb)&^q|(bs-lsb)&^bs|(x-lsb*0x20)&^x|x)&msb != 0 {
				break
			}
			s.i += 8
		}
		for s.i < len(s.b) && plain[s.b[s.i]] {
			s.i++
		}
		if s.i >= len(s.b) {
			break
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			return out, nil
		case c == '\\':
			s.buf = append(s.buf[:0], s.b[start:s.i]...)
			return s.readEscaped()
		case c < 0x20:
			return nil, s.errf("control character in string")
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n <= 1 {
				return nil, utf8Error{}
			}
			s.i += n
		}
	}
	return nil, s.errf("unterminated string")
}

func (s *scanner) readEscaped() ([]byte, error) {
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.buf, nil
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return nil, s.errf("unterminated string")
			}
			e := s.b[s.i+1]
			s.i += 2
			switch e {
			case '"', '\\', '/':
				s.buf = append(s.buf, e)
			case 'b':
				s.buf = append(s.buf, '\b')
			case 'f':
				s.buf = append(s.buf, '\f')
			case 'n':
				s.buf = append(s.buf, '\n')
			case 'r':
				s.buf = append(s.buf, '\r')
			case 't':
				s.buf = append(s.buf, '\t')
			case 'u':
				r, err := s.readU()
				if err != nil {
					return nil, err
				}
				if r >= 0xD800 && r < 0xDC00 { // high surrogate: a low one must follow
					if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
						s.i += 2
						lo, err := s.readU()
						if err != nil {
							return nil, err
						}
						if lo < 0xDC00 || lo > 0xDFFF {
							return nil, utf8Error{}
						}
						r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					} else {
						return nil, utf8Error{}
					}
				} else if r >= 0xDC00 && r <= 0xDFFF {
					return nil, utf8Error{}
				}
				s.buf = utf8.AppendRune(s.buf, r)
			default:
				return nil, s.errf("invalid escape \\%c", e)
			}
		case c < 0x20:
			return nil, s.errf("control character in string")
		case c < utf8.RuneSelf:
			s.buf = append(s.buf, c)
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n <= 1 {
				return nil, utf8Error{}
			}
			s.buf = append(s.buf, s.b[s.i:s.i+n]...)
			s.i += n
		}
	}
	return nil, s.errf("unterminated string")
}

func (s *scanner) readU() (rune, error) {
	if s.i+4 > len(s.b) {
		return 0, s.errf("short \\u escape")
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, s.errf("invalid \\u escape")
		}
	}
	s.i += 4
	return r, nil
}

// readNumber reads a number literal and returns its text.
func (s *scanner) readNumber() ([]byte, error) {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.b) {
		return nil, s.errf("invalid number")
	}
	if s.b[s.i] == '0' {
		s.i++
	} else if !s.digits() {
		return nil, s.errf("invalid number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return nil, s.errf("invalid number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return nil, s.errf("invalid number")
		}
	}
	return s.b[start:s.i], nil
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func (s *scanner) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return s.errf("invalid literal")
	}
	s.i += len(word)
	return nil
}

// readValue reads the value at the cursor. Objects and arrays come back as
// their raw text, to be parsed by the field that wants them.
func (s *scanner) readValue(v *value) error {
	switch c := s.peek(); {
	case c == '"':
		t, err := s.readString()
		*v = value{k: vString, text: t}
		return err
	case c == '{' || c == '[':
		start := s.i
		if err := s.skip(0); err != nil {
			return err
		}
		k := vObject
		if c == '[' {
			k = vArray
		}
		*v = value{k: k, text: s.b[start:s.i]}
		return nil
	case c == 't':
		*v = value{k: vBool, b: true}
		return s.literal("true")
	case c == 'f':
		*v = value{k: vBool}
		return s.literal("false")
	case c == 'n':
		*v = value{}
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		t, err := s.readNumber()
		*v = value{k: vNumber, text: t}
		return err
	case c == 0:
		return s.errf("unexpected end")
	default:
		return s.errf("unexpected %q", c)
	}
}

// skip validates and passes over one value.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return s.errf("nesting deeper than %d", maxDepth)
	}
	switch c := s.peek(); c {
	case '{':
		s.i++
		if s.peek() == '}' {
			s.i++
			return nil
		}
		for {
			s.ws()
			if _, err := s.readString(); err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case '}':
				s.i++
				return nil
			default:
				return s.errf("want ',' or '}' in object")
			}
		}
	case '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return nil
			default:
				return s.errf("want ',' or ']' in array")
			}
		}
	default:
		var v value
		return s.readValue(&v)
	}
}

// objectMembers walks the members of the object at the cursor, calling fn
// with each key (valid only during the call) and leaving the cursor on the
// member's value, which fn must consume.
func (s *scanner) objectMembers(fn func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		key, err := s.readString()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		s.ws()
		if err := fn(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errf("want ',' or '}' in object")
		}
	}
}

// arrayElements walks the elements of the array at the cursor; fn must
// consume each element.
func (s *scanner) arrayElements(fn func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if err := fn(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errf("want ',' or ']' in array")
		}
	}
}

// end checks that only whitespace follows.
func (s *scanner) end() error {
	if s.peek() != 0 || s.i < len(s.b) {
		return s.errf("data after the JSON value")
	}
	return nil
}
