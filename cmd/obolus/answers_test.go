package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obolus/obolus/sink/duckdb"
)

var updateAnswers = flag.Bool("update-answers", false, "rewrite testdata/default_answers.sha256 from this build's output")

// The default workload's answers are pinned: every invocation's end user,
// method, reason, weight and tokens hash to the digest in testdata. A change
// of engine, reader or store that moves any answer fails here; a change
// meant to move answers rewrites the digest (-update-answers) and says why in
// its commit. Confidence is left out: it is a model, meant to improve.
func TestDefaultWorkloadAnswersUnchanged(t *testing.T) {
	if testing.Short() {
		t.Skip("attributes the default workload (190k usage rows)")
	}
	dir := t.TempDir()
	mustObolus(t, "gen", "--out", dir)
	mustObolus(t, "batch", "--config", filepath.Join(dir, "obolus.yaml"), "--log-level", "warn")
	s, err := duckdb.OpenReadOnly(context.Background(), filepath.Join(dir, "obolus.duckdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.DB().Query(`SELECT invocation_id, end_user, match_method, reason, weight,
		input_tokens, output_tokens, total_tokens, cache_read_input_tokens, cache_creation_input_tokens, output_reasoning_tokens
		FROM attribution ORDER BY invocation_id, end_user`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	h := sha256.New()
	n := 0
	for rows.Next() {
		var inv, user, method, reason string
		var weight float64
		var in, out, total, cr, cc, rs int64
		if err := rows.Scan(&inv, &user, &method, &reason, &weight, &in, &out, &total, &cr, &cc, &rs); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s\t%s\t%s\t%s\t%.12g\t%d\t%d\t%d\t%d\t%d\t%d\n", inv, user, method, reason, weight, in, out, total, cr, cc, rs)
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%x %d rows\n", h.Sum(nil), n)
	path := filepath.Join("testdata", "default_answers.sha256")
	if *updateAnswers {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run TestDefaultWorkloadAnswersUnchanged -update-answers writes it)", err)
	}
	if got != string(want) {
		t.Errorf("the default workload's answers changed:\n got %s want %s(if the change is meant, rewrite with -update-answers and say why)", got, strings.TrimSpace(string(want))+"\n")
	}
}
