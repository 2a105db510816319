package schemas

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

// FuzzAppendJSON holds AppendJSON to encoding/json's Marshal, byte for
// byte, on rows whose strings, floats and times vary.
func FuzzAppendJSON(f *testing.F) {
	f.Add("inv-1", "rafael.silva@example.com", "time_window", 0.5, 1.25e-7, 3.0e21, int64(1793496846195205), int64(1700000000123456789), "Z")
	f.Add("a<b>&c", "\u2028line\u2029", "\x00\x1f\"\\", math.Copysign(0, -1), 1e-6, 123456.789, int64(-1), int64(0), "+05:30")
	f.Add("\xff\xfe", "日本語", "tab\tnl\n", 0.1+0.2, 5e-324, math.MaxFloat64, int64(math.MaxInt64), int64(-62135596800000000), "UTC")
	f.Fuzz(func(t *testing.T, id, user, method string, conf, weight, cost float64, version, nanos int64, zone string) {
		loc := time.UTC
		if zone == "+05:30" {
			loc = time.FixedZone("", 5*3600+1800)
		}
		at := time.Unix(0, nanos).In(loc)
		a := Attribution{InvocationID: id, RequestID: id + user, EventTime: at, EventDate: "2026-11-02",
			EndUser: user, Team: method, MatchMethod: method, MatchConfidence: conf, Weight: weight,
			CostUSD: cost, Version: version, StatusCode: int32(version), Candidates: int32(nanos),
			InputTokens: nanos, OutputTokens: version, ProcessedAt: at.Add(time.Duration(version))}
		want, werr := json.Marshal(&a)
		got, gerr := a.AppendJSON([]byte("prefix"))
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("Marshal error %v, AppendJSON error %v", werr, gerr)
		}
		if werr != nil {
			return
		}
		if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("AppendJSON\n%s\nMarshal\n%s", got, want)
		}
	})
}

// TestAppendJSONEveryField gives every field its own value, so a field
// written under another's key cannot pass.
func TestAppendJSONEveryField(t *testing.T) {
	var a Attribution
	v := reflect.ValueOf(&a).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case reflect.Int32, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i) + 0.25)
		case reflect.Struct:
			f.Set(reflect.ValueOf(time.Date(2026, 11, 2, 10, 0, i, i*1000, time.UTC)))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	want, err := json.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.AppendJSON(nil)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON (%v)\n%s\nMarshal\n%s", err, got, want)
	}
}
