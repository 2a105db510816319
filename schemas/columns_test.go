package schemas

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The column list, the struct's field order, AppendValues and ScanTargets
// must agree: stores derive their SQL from the list and bind the values.
func TestAttributionColumnsMatchStruct(t *testing.T) {
	var tags []string
	typ := reflect.TypeFor[Attribution]()
	for i := range typ.NumField() {
		tags = append(tags, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
	}
	if cols := AttributionColumns(); !slices.Equal(tags, cols) {
		t.Errorf("columns %v\nstruct  %v", cols, tags)
	}
	var a Attribution
	if n := len(a.AppendValues(nil, time.Time{})); n != NumAttributionColumns {
		t.Errorf("AppendValues gives %d values for %d columns", n, NumAttributionColumns)
	}
	if n := len(a.ScanTargets()); n != NumAttributionColumns {
		t.Errorf("ScanTargets gives %d targets for %d columns", n, NumAttributionColumns)
	}
}

func TestCheckRows(t *testing.T) {
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	row := func(inv, user string, v int64) Attribution {
		return Attribution{InvocationID: inv, EndUser: user, EventTime: at, MatchMethod: MethodUnattributed, Version: v, Weight: 1}
	}
	tests := []struct {
		name string
		rows []Attribution
		want string
	}{
		{"ok", []Attribution{row("a", "u", 1), row("a", "v", 1), row("b", "u", 2)}, ""},
		{"repeated key", []Attribution{row("a", "u", 1), row("a", "u", 1)}, "repeats an earlier row"},
		{"mixed versions", []Attribution{row("a", "u", 1), row("a", "v", 2)}, "carries versions 1 and 2"},
		{"bad utf-8", []Attribution{row("a", "\xff", 1)}, "end_user is not valid UTF-8"},
		{"no invocation", []Attribution{row("", "u", 1)}, "invocation_id is empty"},
		{"bad date", []Attribution{func() Attribution { r := row("a", "u", 1); r.EventDate = "2026-11-02"; return r }()}, "event_date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := CheckRows([][]Attribution{tt.rows[:1], tt.rows[1:]}, nil)
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want == "":
				if set.Rows != 3 || set.Invocations != 2 || !set.First.Equal(at) || !set.Last.Equal(at) {
					t.Errorf("set %+v", set)
				}
			case err == nil || !strings.Contains(err.Error(), tt.want):
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}
