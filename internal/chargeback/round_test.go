package chargeback

import (
	"math"
	"math/big"
	"slices"
	"testing"
)

func TestRoundPreservingSum(t *testing.T) {
	tests := []struct {
		name  string
		in    []string
		scale int64
		want  []int64
	}{
		{"exact", []string{"1.25", "2.5"}, 100, []int64{125, 250}},
		{"thirds", []string{"0.333333", "0.333333", "0.333334"}, 100, []int64{33, 33, 34}},
		{"largest fraction gets the unit", []string{"0.004", "0.006", "0.005"}, 100, []int64{0, 1, 1}},
		{"total rounds half away from zero", []string{"0.005"}, 100, []int64{1}},
		{"negative half away from zero", []string{"-0.005"}, 100, []int64{-1}},
		{"mixed signs", []string{"1.004", "-0.004"}, 100, []int64{100, 0}},
		{"micro-units from 36-place products", []string{"0.123456789012345678901234567890123456", "0.000000500000000000000000000000000000"}, MicrosPerUnit, []int64{123457, 0}},
		{"ties to the earlier amount", []string{"0.0025", "0.0025"}, 1000, []int64{3, 2}},
		{"empty", nil, 100, []int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in []*big.Rat
			for _, s := range tc.in {
				r, err := ParseDecimal(s)
				if err != nil {
					t.Fatal(err)
				}
				in = append(in, r)
			}
			got, err := RoundPreservingSum(in, tc.scale)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRoundMicros(t *testing.T) {
	got, err := RoundMicros([]int64{1_004_999, 2_004_999, 3_004_999, -5}, 100)
	if err != nil {
		t.Fatal(err)
	}
	// Exact total 6.014992 → 601 cents; floors 100+200+300-1 = 599; two units
	// go to the largest fractions (.4999 each for the first three, .9995 for
	// the negative one).
	if want := []int64{101, 200, 300, 0}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseDecimal(t *testing.T) {
	for _, bad := range []string{"", "abc", "1/3", "NaN", "Inf", "1_000"} {
		if _, err := ParseDecimal(bad); err == nil {
			t.Errorf("ParseDecimal(%q) accepted", bad)
		}
	}
	r, err := ParseDecimal(" 1.25E-7 ")
	if err != nil || r.Cmp(big.NewRat(125, 1_000_000_000)) != 0 {
		t.Errorf("ParseDecimal(1.25E-7) = %v, %v", r, err)
	}
}

func TestParseMicros(t *testing.T) {
	for s, want := range map[string]int64{"12.5": 12_500_000, "-0.000001": -1, "1.25E-4": 125, "0": 0, " 3 ": 3_000_000} {
		if got, err := ParseMicros(s); err != nil || got != want {
			t.Errorf("ParseMicros(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "0.0000005", "1.25E-7", "1/3", "abc"} {
		if got, err := ParseMicros(bad); err == nil {
			t.Errorf("ParseMicros(%q) = %d, accepted", bad, got)
		}
	}
}

func TestFormatFixed(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		d    int
		want string
	}{
		{0, 6, "0.000000"}, {1, 6, "0.000001"}, {-1234567, 6, "-1.234567"}, {1234, 2, "12.34"}, {5, 0, "5"},
		{math.MinInt64, 6, "-9223372036854.775808"},
	} {
		if got := FormatFixed(tc.v, tc.d); got != tc.want {
			t.Errorf("FormatFixed(%d, %d) = %q, want %q", tc.v, tc.d, got, tc.want)
		}
	}
}
