// Package score compares an attribution table with a synthetic workload's
// ground truth and reports precision and recall, overall and per match method.
//
// Definitions. Each attribution row carries an invocation_id, an end_user, a
// match_method and a weight (1, or a share under the split policy).
//
//   - truth: the number of distinct invocations in the ground truth.
//   - attributed: Σ weight of rows whose method is not "unattributed".
//     Rows of invocations missing from the truth count here too: attributing
//     an invocation that never happened is an error, not a free pass.
//   - correct: Σ weight of attributed rows whose end_user equals the truth's
//     end user for that invocation (compared exactly).
//   - precision = correct / attributed; recall = correct / truth.
//   - unknown: rows whose invocation is not in the truth.
//   - missing: truth invocations with no row at all.
//   - overweight: truth invocations whose rows' weights sum to more than 1,
//     the sign of a duplicate that was not removed. Their weight is counted
//     as is, so they can inflate correct.
//
// Per method, Invocations is Σ weight of the method's rows, Correct the
// part of it that names the right user, Precision their ratio (0 for
// "unattributed", which names no user), and ShareOfTruth the method's
// weight on truth invocations divided by truth.
package score

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/obolus/obolus/schemas"
)

// Unattributed is the match method of rows the engine could not place.
const Unattributed = "unattributed"

// Truth is the ground truth of one invocation.
type Truth struct {
	InvocationID   string `json:"invocation_id"`
	EndUser        string `json:"end_user"`
	AgentRequestID string `json:"agent_request_id"`
	Tagged         bool   `json:"tagged"`
	Late           bool   `json:"late"`
}

// Row is one attribution row.
type Row struct {
	InvocationID string
	EndUser      string
	MatchMethod  string
	Weight       float64
	// Confidence is match_confidence, NaN where the table has none.
	Confidence float64
}

// MethodScore is the score of one match method.
type MethodScore struct {
	Method       string
	Invocations  float64
	Correct      float64
	Precision    float64
	ShareOfTruth float64
}

// Report is the outcome of Score; see the package documentation.
type Report struct {
	Truth, Attributed, Correct float64
	Precision, Recall          float64
	// Unknown counts rows whose invocation is not in the truth.
	Unknown int
	// Missing counts truth invocations with no row.
	Missing int
	// Overweight counts truth invocations whose rows weigh more than 1.
	Overweight int
	// Methods are sorted by method name.
	Methods []MethodScore
	// Calibration scores the confidence of time-window picks (time_window,
	// time_window_nearest and time_window_likely rows) against how often
	// they were right.
	Calibration Calibration
	// AtPrecision is the best recall reachable at precision ≥
	// TargetPrecision by keeping only rows of at least some confidence.
	AtPrecision RecallAtPrecision
}

// TargetPrecision is the precision RecallAtPrecision is reported at: the
// bar FinOps can bill on without review.
const TargetPrecision = 0.99

// RecallAtPrecision is the recall of the attributed rows whose confidence
// is at least Threshold, for the Threshold that gives the highest recall
// while their precision stays at least TargetPrecision. Rows without a
// confidence rank last. Found is false when no threshold reaches it.
type RecallAtPrecision struct {
	Found     bool
	Threshold float64
	Precision float64
	Recall    float64
}

// recallAtPrecision walks the attributed rows from the most confident
// down, a confidence at a time.
func recallAtPrecision(truth map[string]Truth, rows []Row) RecallAtPrecision {
	type pick struct{ conf, weight, correct float64 }
	picks := make([]pick, 0, len(rows))
	for _, r := range rows {
		if r.MatchMethod == Unattributed {
			continue
		}
		p := pick{conf: r.Confidence, weight: r.Weight}
		if math.IsNaN(p.conf) {
			p.conf = math.Inf(-1)
		}
		if t, ok := truth[r.InvocationID]; ok && r.EndUser == t.EndUser {
			p.correct = r.Weight
		}
		picks = append(picks, p)
	}
	slices.SortFunc(picks, func(a, b pick) int { return cmp.Compare(b.conf, a.conf) })
	var best RecallAtPrecision
	var weight, correct float64
	for i, p := range picks {
		weight += p.weight
		correct += p.correct
		if i+1 < len(picks) && picks[i+1].conf == p.conf {
			continue
		}
		if prec := ratio(correct, weight); prec >= TargetPrecision {
			if rec := ratio(correct, float64(len(truth))); !best.Found || rec > best.Recall {
				best = RecallAtPrecision{Found: true, Threshold: p.conf, Precision: prec, Recall: rec}
			}
		}
	}
	return best
}

// Calibration is the calibration score of time-window picks: rows are put
// in confidence deciles, and ECE (expected calibration error) is the mean
// over deciles, weighted by rows, of |mean confidence − precision|.
type Calibration struct {
	Rows    int
	ECE     float64
	Deciles []Decile
}

// Decile is one confidence decile's rows, mean confidence and precision.
type Decile struct {
	Lo, Hi     float64
	Rows       int
	Confidence float64
	Precision  float64
}

// calibrationScore computes Calibration over rows of the time-window
// methods that carry a confidence and an invocation in the truth.
func calibrationScore(truth map[string]Truth, rows []Row) Calibration {
	var bins [10]struct {
		n          int
		conf, hits float64
	}
	total := 0
	for _, r := range rows {
		if !schemas.CalibratedMethod(r.MatchMethod) || math.IsNaN(r.Confidence) {
			continue
		}
		t, ok := truth[r.InvocationID]
		if !ok {
			continue
		}
		b := min(int(r.Confidence*10), 9)
		b = max(b, 0)
		bins[b].n++
		bins[b].conf += r.Confidence
		if r.EndUser == t.EndUser {
			bins[b].hits++
		}
		total++
	}
	c := Calibration{Rows: total}
	for i, b := range bins {
		if b.n == 0 {
			continue
		}
		d := Decile{Lo: float64(i) / 10, Hi: float64(i+1) / 10, Rows: b.n, Confidence: b.conf / float64(b.n), Precision: b.hits / float64(b.n)}
		c.Deciles = append(c.Deciles, d)
		c.ECE += float64(b.n) / float64(total) * math.Abs(d.Confidence-d.Precision)
	}
	return c
}

// LoadTruth reads a ground_truth.jsonl file, keyed by invocation id.
func LoadTruth(path string) (map[string]Truth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("score: read truth: %w", err)
	}
	defer f.Close()
	truth := make(map[string]Truth)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var t Truth
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil {
			return nil, fmt.Errorf("score: %s line %d: %w", path, line, err)
		}
		switch {
		case t.InvocationID == "":
			return nil, fmt.Errorf("score: %s line %d: invocation_id is empty", path, line)
		case t.EndUser == "":
			return nil, fmt.Errorf("score: %s line %d: end_user is empty for invocation %s", path, line, t.InvocationID)
		}
		if _, dup := truth[t.InvocationID]; dup {
			return nil, fmt.Errorf("score: %s line %d: invocation_id %s is listed twice", path, line, t.InvocationID)
		}
		truth[t.InvocationID] = t
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("score: read %s: %w", path, err)
	}
	return truth, nil
}

// overweightTolerance absorbs float rounding of split weights.
const overweightTolerance = 1e-9

// Score compares attribution rows with the truth.
func Score(truth map[string]Truth, rows []Row) Report {
	rep := Report{Truth: float64(len(truth))}
	type acc struct{ weight, correct, onTruth float64 }
	methods := make(map[string]*acc)
	weightOf := make(map[string]float64, len(truth))
	for _, r := range rows {
		m := methods[r.MatchMethod]
		if m == nil {
			m = &acc{}
			methods[r.MatchMethod] = m
		}
		m.weight += r.Weight
		t, known := truth[r.InvocationID]
		if known {
			weightOf[r.InvocationID] += r.Weight
			m.onTruth += r.Weight
		} else {
			rep.Unknown++
		}
		if r.MatchMethod == Unattributed {
			continue
		}
		rep.Attributed += r.Weight
		if known && r.EndUser == t.EndUser {
			rep.Correct += r.Weight
			m.correct += r.Weight
		}
	}
	for id := range truth {
		w, ok := weightOf[id]
		switch {
		case !ok:
			rep.Missing++
		case w > 1+overweightTolerance:
			rep.Overweight++
		}
	}
	rep.Precision = ratio(rep.Correct, rep.Attributed)
	rep.Recall = ratio(rep.Correct, rep.Truth)
	for name, m := range methods {
		rep.Methods = append(rep.Methods, MethodScore{
			Method:       name,
			Invocations:  m.weight,
			Correct:      m.correct,
			Precision:    ratio(m.correct, m.weight),
			ShareOfTruth: ratio(m.onTruth, rep.Truth),
		})
	}
	slices.SortFunc(rep.Methods, func(a, b MethodScore) int {
		switch {
		case a.Method < b.Method:
			return -1
		case a.Method > b.Method:
			return 1
		}
		return 0
	})
	rep.Calibration = calibrationScore(truth, rows)
	rep.AtPrecision = recallAtPrecision(truth, rows)
	return rep
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// WriteText writes the report as an aligned table: the summary, then one
// line per method.
func (r Report) WriteText(w io.Writer) error {
	width := len("method")
	for _, m := range r.Methods {
		width = max(width, len(m.Method))
	}
	var b strings.Builder
	for _, l := range []struct{ name, value string }{
		{"truth invocations", fmt.Sprintf("%.0f", r.Truth)},
		{"attributed", fmt.Sprintf("%.2f", r.Attributed)},
		{"correct", fmt.Sprintf("%.2f", r.Correct)},
		{"precision", fmt.Sprintf("%.4f", r.Precision)},
		{"recall", fmt.Sprintf("%.4f", r.Recall)},
		{"unknown rows", fmt.Sprint(r.Unknown)},
		{"missing invocations", fmt.Sprint(r.Missing)},
		{"overweight invocations", fmt.Sprint(r.Overweight)},
	} {
		fmt.Fprintf(&b, "%-22s %12s\n", l.name, l.value)
	}
	fmt.Fprintf(&b, "\n%-*s %12s %12s %10s %15s\n", width, "method", "invocations", "correct", "precision", "share of truth")
	for _, m := range r.Methods {
		fmt.Fprintf(&b, "%-*s %12.2f %12.2f %10.4f %15.4f\n", width, m.Method, m.Invocations, m.Correct, m.Precision, m.ShareOfTruth)
	}
	if a := r.AtPrecision; a.Found {
		fmt.Fprintf(&b, "\nrecall at precision ≥ %.2f: %.4f (rows of confidence ≥ %.4f, precision %.4f)\n", TargetPrecision, a.Recall, a.Threshold, a.Precision)
	} else {
		fmt.Fprintf(&b, "\nrecall at precision ≥ %.2f: none (no confidence threshold reaches it)\n", TargetPrecision)
	}
	if c := r.Calibration; c.Rows > 0 {
		fmt.Fprintf(&b, "\ncalibration of time-window picks: %d rows, expected calibration error %.4f\n", c.Rows, c.ECE)
		fmt.Fprintf(&b, "%-11s %8s %11s %10s\n", "confidence", "rows", "mean conf.", "precision")
		for _, d := range c.Deciles {
			fmt.Fprintf(&b, "%.1f–%.1f   %8d %11.4f %10.4f\n", d.Lo, d.Hi, d.Rows, d.Confidence, d.Precision)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("score: write report: %w", err)
	}
	return nil
}
