package score

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func truthOf(pairs ...string) map[string]Truth {
	t := map[string]Truth{}
	for i := 0; i < len(pairs); i += 2 {
		t[pairs[i]] = Truth{InvocationID: pairs[i], EndUser: pairs[i+1]}
	}
	return t
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

var nan = math.NaN()

func TestScore(t *testing.T) {
	truth := truthOf("i1", "ana", "i2", "ben", "i3", "carla", "i4", "dana")
	for _, tc := range []struct {
		name                                   string
		rows                                   []Row
		attributed, correct, precision, recall float64
		unknown, missing, overweight           int
	}{
		{
			name: "all right",
			rows: []Row{
				{"i1", "ana", "trace_id", 1, nan}, {"i2", "ben", "request_id", 1, nan},
				{"i3", "carla", "time_window", 1, nan}, {"i4", "dana", "tag_user", 1, nan},
			},
			attributed: 4, correct: 4, precision: 1, recall: 1,
		},
		{
			name: "wrong user and unattributed",
			rows: []Row{
				{"i1", "ana", "trace_id", 1, nan}, {"i2", "ana", "time_window", 1, nan},
				{"i3", "sp-1", "unattributed", 1, nan}, {"i4", "dana", "tag_user", 1, nan},
			},
			attributed: 3, correct: 2, precision: 2.0 / 3, recall: 0.5,
		},
		{
			name: "split rows count by weight",
			rows: []Row{
				{"i1", "ana", "time_window_split", 0.5, nan}, {"i1", "ben", "time_window_split", 0.5, nan},
				{"i2", "ben", "time_window_split", 1.0 / 3, nan}, {"i2", "carla", "time_window_split", 1.0 / 3, nan}, {"i2", "dana", "time_window_split", 1.0 / 3, nan},
			},
			attributed: 2, correct: 0.5 + 1.0/3, precision: (0.5 + 1.0/3) / 2, recall: (0.5 + 1.0/3) / 4, missing: 2,
		},
		{
			name: "unknown invocation counts against precision",
			rows: []Row{
				{"i1", "ana", "trace_id", 1, nan}, {"i9", "ana", "trace_id", 1, nan}, {"i10", "sp", "unattributed", 1, nan},
			},
			attributed: 2, correct: 1, precision: 0.5, recall: 0.25, unknown: 2, missing: 3,
		},
		{
			name: "undeduplicated row is flagged",
			rows: []Row{
				{"i1", "ana", "trace_id", 1, nan}, {"i1", "ana", "trace_id", 1, nan},
			},
			attributed: 2, correct: 2, precision: 1, recall: 0.5, missing: 3, overweight: 1,
		},
		{name: "no rows", missing: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Score(truth, tc.rows)
			if r.Truth != 4 || !near(r.Attributed, tc.attributed) || !near(r.Correct, tc.correct) ||
				!near(r.Precision, tc.precision) || !near(r.Recall, tc.recall) ||
				r.Unknown != tc.unknown || r.Missing != tc.missing || r.Overweight != tc.overweight {
				t.Errorf("got %+v", r)
			}
		})
	}
}

func TestScorePerMethod(t *testing.T) {
	truth := truthOf("i1", "ana", "i2", "ben", "i3", "carla", "i4", "dana", "i5", "eve")
	rows := []Row{
		{"i1", "ana", "trace_id", 1, nan},
		{"i2", "ben", "time_window", 1, nan},
		{"i3", "ana", "time_window", 1, nan},
		{"i4", "dana", "time_window_split", 0.5, nan}, {"i4", "eve", "time_window_split", 0.5, nan},
		{"i5", "sp", "unattributed", 1, nan},
		{"i6", "ana", "trace_id", 1, nan}, // unknown
	}
	r := Score(truth, rows)
	want := []MethodScore{
		{Method: "time_window", Invocations: 2, Correct: 1, Precision: 0.5, ShareOfTruth: 0.4},
		{Method: "time_window_split", Invocations: 1, Correct: 0.5, Precision: 0.5, ShareOfTruth: 0.2},
		{Method: "trace_id", Invocations: 2, Correct: 1, Precision: 0.5, ShareOfTruth: 0.2},
		{Method: "unattributed", Invocations: 1, Correct: 0, Precision: 0, ShareOfTruth: 0.2},
	}
	if len(r.Methods) != len(want) {
		t.Fatalf("methods %+v", r.Methods)
	}
	for i, m := range r.Methods {
		w := want[i]
		if m.Method != w.Method || !near(m.Invocations, w.Invocations) || !near(m.Correct, w.Correct) ||
			!near(m.Precision, w.Precision) || !near(m.ShareOfTruth, w.ShareOfTruth) {
			t.Errorf("method %d: got %+v, want %+v", i, m, w)
		}
	}
	if !near(r.Precision, 2.5/5) || !near(r.Recall, 2.5/5) || r.Unknown != 1 || r.Missing != 0 {
		t.Errorf("report %+v", r)
	}

	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.txt")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want2, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want2) {
		t.Errorf("report text differs from %s (go test -update to rewrite):\n%s", golden, buf.String())
	}
}

func TestLoadTruth(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body, wantErr string
		want                int
	}{
		{name: "good", want: 2, body: `{"invocation_id":"a","end_user":"ana@example.com","agent_request_id":"r1","agent_endpoint":"bot","service_principal":"sp","tagged":true,"late":false}
{"invocation_id":"b","end_user":"ben@example.com","agent_request_id":"r2","agent_endpoint":"bot","service_principal":"sp","tagged":false,"late":true}
`},
		{name: "blank lines skipped", want: 1, body: "\n{\"invocation_id\":\"a\",\"end_user\":\"u\"}\n\n"},
		{name: "bad json", body: "{\"invocation_id\":\"a\",\"end_user\":\"u\"}\nnot json\n", wantErr: "line 2"},
		{name: "missing id", body: `{"end_user":"u"}`, wantErr: "invocation_id is empty"},
		{name: "missing user", body: `{"invocation_id":"a"}`, wantErr: "end_user is empty for invocation a"},
		{name: "duplicate", body: "{\"invocation_id\":\"a\",\"end_user\":\"u\"}\n{\"invocation_id\":\"a\",\"end_user\":\"v\"}\n", wantErr: "listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".jsonl")
			if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := LoadTruth(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Errorf("%d entries, want %d", len(got), tc.want)
			}
		})
	}
	if tr, err := LoadTruth(filepath.Join(dir, "good.jsonl")); err == nil {
		if b := tr["b"]; b.EndUser != "ben@example.com" || b.AgentRequestID != "r2" || b.Tagged || !b.Late {
			t.Errorf("b = %+v", b)
		}
	}
	if _, err := LoadTruth(filepath.Join(dir, "absent.jsonl")); err == nil {
		t.Error("no error for a missing file")
	}
}

// ECE weighs each confidence decile's |mean confidence − precision| by its
// rows; only time-window picks with a confidence count.
func TestCalibrationScore(t *testing.T) {
	truth := truthOf("a", "ana", "b", "ben", "c", "carla", "d", "dana", "e", "eve")
	rows := []Row{
		{"a", "ana", "time_window", 1, 0.95},       // decile 9: right
		{"b", "x", "time_window_nearest", 1, 0.91}, // decile 9: wrong
		{"c", "carla", "time_window", 1, 0.25},     // decile 2: right
		{"d", "dana", "trace_id", 1, 1},            // not a time-window pick
		{"e", "eve", "time_window", 1, nan},        // no confidence
		{"zz", "nobody", "time_window", 1, 0.5},    // not in the truth
	}
	c := Score(truth, rows).Calibration
	// Decile 9: mean 0.93, precision 0.5; decile 2: 0.25 against 1.
	want := 2.0/3*0.43 + 1.0/3*0.75
	if c.Rows != 3 || len(c.Deciles) != 2 || math.Abs(c.ECE-want) > 1e-9 {
		t.Errorf("calibration %+v, want 3 rows in 2 deciles, ECE %.4f", c, want)
	}
}

func TestRecallAtPrecision(t *testing.T) {
	// 200 invocations: 100 id matches (confidence 1, right), 50 picks at 0.9
	// (one wrong), 50 picks at 0.4 (25 wrong).
	truth := map[string]Truth{}
	var rows []Row
	for i := range 200 {
		id := "i" + strings.Repeat("x", i/26) + string(rune('a'+i%26))
		truth[id] = Truth{InvocationID: id, EndUser: "right"}
		user, method, conf := "right", "trace_id", 1.0
		switch {
		case i >= 150:
			method, conf = "time_window_likely", 0.4
			if i%2 == 0 {
				user = "wrong"
			}
		case i >= 100:
			method, conf = "time_window_likely", 0.9
			if i == 100 {
				user = "wrong"
			}
		}
		rows = append(rows, Row{id, user, method, 1, conf})
	}
	for _, tt := range []struct {
		name string
		rows []Row
		want RecallAtPrecision
	}{
		{"the 0.9 picks stay in, the 0.4 ones go", rows, RecallAtPrecision{Found: true, Threshold: 0.9, Precision: 149.0 / 150, Recall: 149.0 / 200}},
		{"unattributed rows do not count", append(rows[:100:100], Row{"extra", "", Unattributed, 1, 0}), RecallAtPrecision{Found: true, Threshold: 1, Precision: 1, Recall: 100.0 / 200}},
		{"nothing reaches it", rows[150:], RecallAtPrecision{}},
	} {
		got := recallAtPrecision(truth, tt.rows)
		if got.Found != tt.want.Found || !near(got.Threshold, tt.want.Threshold) || !near(got.Precision, tt.want.Precision) || !near(got.Recall, tt.want.Recall) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
