package chargeback

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// MicrosPerUnit is how many micro-units make one unit of currency. Every
// amount in this package is an int64 count of micro-units (millionths of the billing
// currency). Three roundings happen, each by the largest-remainder method so
// that parts always add up to their whole:
//
//  1. Bill to charges (RoundPreservingSum): each charge's exact cost (usage
//     quantity × unit price, decimals of up to 36 places) is floored to the
//     micro-unit; the exact total, rounded half away from zero, fixes how many
//     micro-units are left over, and they go one each to the charges with the
//     largest dropped fractions (ties: earlier charge). So the charges sum to
//     the bill, rounded once.
//  2. Charge to invocations (Allocate): within a charge's bucket (hour ×
//     gateway endpoint × model), item i gets floor(B·wᵢ/W) micro-units, where
//     wᵢ is its list-price cost and W the bucket's sum; the B − Σfloor
//     left-over units go one each to the items with the largest remainders
//     (B·wᵢ mod W; ties: earlier item). So the items sum to the charge
//     exactly. A charge whose bucket has no items is unallocated: the caller
//     reports it as its own line.
//  3. Micro-units to cents for display (RoundPreservingSum again), so the
//     lines of a printed table add up to its printed total.
const MicrosPerUnit = 1_000_000

// ParseDecimal reads a decimal number exactly: "12.5", "-0.000001",
// "1.25E-7". Infinities, NaN and fractions ("1/3") are refused.
func ParseDecimal(s string) (*big.Rat, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return nil, errors.New("empty decimal")
	}
	if strings.ContainsAny(t, "/_") {
		return nil, fmt.Errorf("%q is not a decimal number", s)
	}
	r, ok := new(big.Rat).SetString(t)
	if !ok {
		return nil, fmt.Errorf("%q is not a decimal number", s)
	}
	return r, nil
}

// ParseMicros reads a decimal amount that must be a whole number of
// micro-units, as persisted costs are, and returns it in micro-units.
func ParseMicros(s string) (int64, error) {
	r, err := ParseDecimal(s)
	if err != nil {
		return 0, err
	}
	m, err := RoundHalfAway(r, MicrosPerUnit)
	if err != nil {
		return 0, err
	}
	if r.Cmp(big.NewRat(m, MicrosPerUnit)) != 0 {
		return 0, fmt.Errorf("%q is not a whole number of micro-units", s)
	}
	return m, nil
}

// RoundPreservingSum rounds amounts·scale to integers so that the results sum
// to the exact total Σamounts·scale rounded half away from zero: each value
// is floored, and the units still missing go one each to the values with the
// largest dropped fractions, ties to the earlier value. No value moves by a
// whole unit or more. scale is e.g. MicrosPerUnit (units to micro-units) or
// 100 (units to cents).
func RoundPreservingSum(amounts []*big.Rat, scale int64) ([]int64, error) {
	if scale <= 0 {
		return nil, fmt.Errorf("chargeback: scale %d is not positive", scale)
	}
	n := len(amounts)
	out := make([]int64, n)
	fracs := make([]*big.Rat, n)
	bigScale := new(big.Rat).SetInt64(scale)
	sum := new(big.Rat)
	floorSum := new(big.Int)
	for i, a := range amounts {
		if a == nil {
			return nil, fmt.Errorf("chargeback: amount %d is nil", i)
		}
		x := new(big.Rat).Mul(a, bigScale)
		sum.Add(sum, x)
		// big.Int.Div is Euclidean and the denominator is positive, so this is the floor.
		f := new(big.Int).Div(x.Num(), x.Denom())
		if !f.IsInt64() {
			return nil, fmt.Errorf("chargeback: amount %d (%s) overflows int64 at scale %d", i, a.FloatString(6), scale)
		}
		out[i] = f.Int64()
		floorSum.Add(floorSum, f)
		fracs[i] = x.Sub(x, new(big.Rat).SetInt(f))
	}
	missing := new(big.Int).Sub(roundHalfAway(sum), floorSum)
	if missing.Sign() < 0 || missing.Cmp(big.NewInt(int64(n))) > 0 {
		// Cannot happen: Σfloor ≤ Σx < Σfloor + n.
		return nil, fmt.Errorf("chargeback: %s units left over for %d amounts", missing, n)
	}
	if k := int(missing.Int64()); k > 0 {
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return fracs[b].Cmp(fracs[a]) })
		for _, i := range order[:k] {
			out[i]++
		}
	}
	return out, nil
}

// RoundMicros is RoundPreservingSum for amounts already in micro-units,
// rescaled to 1/scale units: e.g. micro-dollars to cents with scale 100.
func RoundMicros(micros []int64, scale int64) ([]int64, error) {
	amounts := make([]*big.Rat, len(micros))
	for i, m := range micros {
		amounts[i] = big.NewRat(m, MicrosPerUnit)
	}
	return RoundPreservingSum(amounts, scale)
}

// RoundHalfAway rounds amount·scale to the nearest integer, halves away from zero.
func RoundHalfAway(amount *big.Rat, scale int64) (int64, error) {
	r := roundHalfAway(new(big.Rat).Mul(amount, new(big.Rat).SetInt64(scale)))
	if !r.IsInt64() {
		return 0, fmt.Errorf("chargeback: %s overflows int64 at scale %d", amount.FloatString(6), scale)
	}
	return r.Int64(), nil
}

func roundHalfAway(x *big.Rat) *big.Int {
	abs := new(big.Rat).Abs(x)
	abs.Add(abs, big.NewRat(1, 2))
	r := new(big.Int).Div(abs.Num(), abs.Denom())
	if x.Sign() < 0 {
		r.Neg(r)
	}
	return r
}

// FormatFixed writes v/10^decimals as a plain decimal with exactly that many
// places: FormatFixed(-1234567, 6) is "-1.234567".
func FormatFixed(v int64, decimals int) string {
	neg := v < 0
	var u uint64
	if neg {
		u = uint64(-(v + 1)) + 1 // also right for math.MinInt64
	} else {
		u = uint64(v)
	}
	s := strconv.FormatUint(u, 10)
	if decimals > 0 {
		if len(s) <= decimals {
			s = strings.Repeat("0", decimals-len(s)+1) + s
		}
		s = s[:len(s)-decimals] + "." + s[len(s)-decimals:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
