package ingest

import (
	"errors"
	"time"

	"github.com/obolus/obolus/schemas"
)

// field is one column a record type reads. An alias (a column's older name)
// writes the same target as its canonical field; the canonical column wins
// when a row has both.
type field[T any] struct {
	name     string
	canon    int // index of the canonical field; its own index if canonical
	required bool
	set      func(d *decoder, dst *T, name string, v *value) error
}

// fieldSet is the column list of one record type.
type fieldSet[T any] struct {
	fields []field[T]
	index  map[string]int
	// slots is an open-addressing table of field index+1 by keyHash: the
	// lookup of every JSON key is on the hot path, and this is about three
	// times cheaper than the map.
	slots [256]uint8
}

// keyHash mixes a key's length and three of its bytes; column names differ
// enough there for few collisions, and lookup compares the whole name anyway.
func keyHash(k []byte) uint32 {
	n := len(k)
	if n == 0 {
		return 0
	}
	h := uint32(n)*0x9E3779B1 ^ uint32(k[0])<<16 ^ uint32(k[n-1])<<8 ^ uint32(k[n/2])
	h *= 0x85EBCA6B
	return h ^ h>>15
}

func (fs *fieldSet[T]) addSlot(name string, idx int) {
	for h := keyHash([]byte(name)); ; h++ {
		if slot := &fs.slots[h%uint32(len(fs.slots))]; *slot == 0 {
			*slot = uint8(idx + 1)
			return
		}
	}
}

func newFieldSet[T any](fields ...field[T]) *fieldSet[T] {
	fs := &fieldSet[T]{fields: fields, index: make(map[string]int, len(fields))}
	for i := range fs.fields {
		f := &fs.fields[i]
		if _, dup := fs.index[f.name]; dup || len(fields) > 64 {
			panic("ingest: bad field table at " + f.name) // programming error, caught by any test
		}
		fs.index[f.name] = i
		fs.addSlot(f.name, i)
		f.canon = i
	}
	return fs
}

// alias adds name as another column for the canonical field.
func (fs *fieldSet[T]) alias(name, canonical string) *fieldSet[T] {
	c := fs.index[canonical]
	f := fs.fields[c]
	f.name, f.canon, f.required = name, c, false
	fs.index[name] = len(fs.fields)
	fs.addSlot(name, len(fs.fields))
	fs.fields = append(fs.fields, f)
	return fs
}

func (fs *fieldSet[T]) lookup(name []byte) int {
	for h := keyHash(name); ; h++ {
		slot := fs.slots[h%uint32(len(fs.slots))]
		if slot == 0 {
			return -1
		}
		if i := int(slot) - 1; fs.fields[i].name == string(name) {
			return i
		}
	}
}

// columns lists every column name the set reads, aliases included.
func (fs *fieldSet[T]) columns() []string {
	out := make([]string, len(fs.fields))
	for i, f := range fs.fields {
		out[i] = f.name
	}
	return out
}

// rowState tracks which fields a row gave.
type rowState struct{ canonSeen, present uint64 }

func (fs *fieldSet[T]) apply(d *decoder, st *rowState, idx int, v *value, dst *T) error {
	f := &fs.fields[idx]
	if v.k == vInvalid {
		return &FieldError{Field: f.name, Reason: "invalid UTF-8"}
	}
	if v.empty() {
		return nil
	}
	bit := uint64(1) << f.canon
	if f.canon != idx {
		if st.canonSeen&bit != 0 {
			return nil
		}
	} else {
		st.canonSeen |= bit
	}
	if err := f.set(d, dst, f.name, v); err != nil {
		return err
	}
	st.present |= bit
	return nil
}

func (fs *fieldSet[T]) checkRequired(st *rowState) error {
	for i := range fs.fields {
		f := &fs.fields[i]
		if f.required && st.present&(1<<i) == 0 {
			return &FieldError{Field: f.name, Reason: "missing"}
		}
	}
	return nil
}

// decodeJSON decodes one JSON object into dst.
func decodeJSON[T any](d *decoder, fs *fieldSet[T], b []byte, dst *T) error {
	// Strings with escapes, even in skipped members (a span's prompt), are
	// unescaped into the scanner's buffer: reuse one per decoder.
	s := scanner{b: b, buf: d.rowBuf[:0]}
	defer func() { d.rowBuf = s.buf }()
	if s.peek() != '{' {
		return &FieldError{Reason: "not a JSON object"}
	}
	var st rowState
	v := &d.val
	err := s.objectMembers(func(key []byte) error {
		idx := fs.lookup(key)
		if idx < 0 {
			if err := s.skip(0); err != nil {
				if _, ok := err.(utf8Error); ok {
					return &FieldError{Field: validKey(key), Reason: "invalid UTF-8"}
				}
				return err
			}
			return nil
		}
		name := fs.fields[idx].name
		if err := s.readValue(v); err != nil {
			return nestedErr(name, err)
		}
		return fs.apply(d, &st, idx, v, dst)
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return fe
		}
		if _, ok := err.(utf8Error); ok {
			return &FieldError{Reason: "invalid UTF-8 in a key"}
		}
		return &FieldError{Reason: err.Error()}
	}
	return fs.checkRequired(&st)
}

// validKey is a key as far as it can be shown (keys reaching here are valid UTF-8).
func validKey(key []byte) string { return string(key) }

// decodeValues decodes one row of named columns into dst; cols maps each
// value to its field index (-1: not a column the record reads).
func decodeValues[T any](d *decoder, fs *fieldSet[T], names []string, cols []int, vals []value, dst *T) error {
	var st rowState
	for j := range vals {
		if cols[j] < 0 {
			if vals[j].k == vInvalid {
				return &FieldError{Field: names[j], Reason: "invalid UTF-8"}
			}
			continue
		}
		if err := fs.apply(d, &st, cols[j], &vals[j], dst); err != nil {
			return err
		}
	}
	return fs.checkRequired(&st)
}

// Field constructors. get returns the target inside the record.

func fStr[T any](name string, get func(*T) *string) field[T] {
	return field[T]{name: name, set: func(d *decoder, dst *T, n string, v *value) (err error) {
		*get(dst), err = d.asString(n, v, false)
		return err
	}}
}

// fCommon is a string column with few distinct values, interned when reading files.
func fCommon[T any](name string, get func(*T) *string) field[T] {
	return field[T]{name: name, set: func(d *decoder, dst *T, n string, v *value) (err error) {
		*get(dst), err = d.asString(n, v, true)
		return err
	}}
}

func fInt[T any](name string, get func(*T) *int64) field[T] {
	return field[T]{name: name, set: func(d *decoder, dst *T, n string, v *value) (err error) {
		*get(dst), err = d.asInt(n, v)
		return err
	}}
}

func fCount[T any](name string, get func(*T) *int64) field[T] {
	return field[T]{name: name, set: func(d *decoder, dst *T, n string, v *value) (err error) {
		*get(dst), err = d.asCount(n, v)
		return err
	}}
}

func fDuration[T any](name string, get func(*T) *int64) field[T] {
	return field[T]{name: name, set: func(d *decoder, dst *T, n string, v *value) (err error) {
		*get(dst), err = d.asDurationMS(n, v)
		return err
	}}
}

func fInt32[T any](name string, get func(*T) *int32) field[T] {
	return field[T]{name: name, set: func(d *decoder, dst *T, n string, v *value) (err error) {
		*get(dst), err = d.asInt32(n, v)
		return err
	}}
}

func fBool[T any](name string, get func(*T) *bool) field[T] {
	return field[T]{name: name, set: func(d *decoder, dst *T, n string, v *value) (err error) {
		*get(dst), err = d.asBool(n, v)
		return err
	}}
}

func fTime[T any](name string, get func(*T) *time.Time) field[T] {
	return field[T]{name: name, set: func(d *decoder, dst *T, n string, v *value) (err error) {
		*get(dst), err = d.asTime(n, v)
		return err
	}}
}

func fMap[T any](name string, get func(*T) *map[string]string) field[T] {
	return field[T]{name: name, set: func(d *decoder, dst *T, n string, v *value) (err error) {
		*get(dst), err = d.asMap(n, v)
		return err
	}}
}

func fTokenDetails[T any](name string, get func(*T) *schemas.TokenDetails) field[T] {
	return field[T]{name: name, set: func(d *decoder, dst *T, n string, v *value) (err error) {
		*get(dst), err = d.asTokenDetails(n, v)
		return err
	}}
}

func required[T any](f field[T]) field[T] {
	f.required = true
	return f
}
