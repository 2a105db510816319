package report

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

func TestPseudonymize(t *testing.T) {
	if _, err := NewPseudonymizer([]byte("short")); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	t.Setenv(PseudonymKeyEnv, "")
	if _, err := PseudonymizerFromEnv(); err == nil || !strings.Contains(err.Error(), PseudonymKeyEnv) {
		t.Errorf("missing key: error = %v, want it to name %s", err, PseudonymKeyEnv)
	}
	t.Setenv(PseudonymKeyEnv, "0123456789abcdef0123456789abcdef")
	p, err := PseudonymizerFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewPseudonymizer([]byte("another key, also long enough"))
	if p.Pseudonym("alice@example.com") != p.Pseudonym(" Alice@Example.com ") {
		t.Error("pseudonyms differ for spellings of one email")
	}
	if p.Pseudonym("alice@example.com") == other.Pseudonym("alice@example.com") || p.Pseudonym("alice@example.com") == p.Pseudonym("bob@example.com") {
		t.Error("pseudonyms collide across keys or users")
	}

	s := fixtureStore(t)
	rep, err := Build(context.Background(), NewDuckDBSource(s.DB()), Options{Period: mustPeriod(t, "2026-11"), By: []Dimension{ByTeam, ByUser}, Pseudonymizer: p})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, w := range []func(*bytes.Buffer) error{
		func(b *bytes.Buffer) error { return rep.WriteMarkdown(b) },
		func(b *bytes.Buffer) error { return rep.WriteCSV(b) },
		func(b *bytes.Buffer) error { return rep.WriteFocusCSV(b) },
		func(b *bytes.Buffer) error { return rep.WriteHTML(b) },
	} {
		if err := w(&out); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(out.String(), "@example.com") {
		t.Fatalf("an email survived pseudonymisation:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "sp-agent-1") {
		t.Error("the service principal keeping unattributed spend should stay named")
	}
	// Whoever holds the key recovers the people: hash the candidates and compare.
	candidates := map[string]string{}
	for _, e := range []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com", "erin@example.com"} {
		candidates[p.Pseudonym(e)] = e
	}
	found := regexp.MustCompile(`u-[0-9a-f]{20}`).FindAllString(out.String(), -1)
	if len(found) == 0 {
		t.Fatal("no pseudonyms in the output")
	}
	for _, f := range found {
		if candidates[f] == "" {
			t.Errorf("pseudonym %s matches no candidate email", f)
		}
	}
}
