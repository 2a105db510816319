package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/obolus/obolus/internal/chargeback"
)

// cents rounds micro-unit amounts to cents so that they still add up: the
// printed lines of a table sum to its printed total (see internal/chargeback).
func cents(micros []int64) []int64 {
	c, err := chargeback.RoundMicros(micros, 100)
	if err != nil {
		// Only an int64 overflow of a cent count, beyond any real bill.
		out := make([]int64, len(micros))
		for i, m := range micros {
			out[i] = int64(math.Round(float64(m) / 1e4))
		}
		return out
	}
	return c
}

// money formats cents as 1,234.56.
func money(c int64) string {
	s := chargeback.FormatFixed(c, 2)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	s = group(whole) + "." + frac
	if neg {
		s = "-" + s
	}
	return s
}

// integer formats n as 1,234,567.
func integer(n int64) string {
	if n < 0 {
		return "-" + group(strconv.FormatInt(-n, 10))
	}
	return group(strconv.FormatInt(n, 10))
}

func group(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	var b strings.Builder
	head := len(digits) % 3
	if head > 0 {
		b.WriteString(digits[:head])
	}
	for i := head; i < len(digits); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}

// requests formats a sum of weights: whole numbers plainly, fractions (from
// split invocations) to two places.
func requests(f float64) string {
	r := math.Round(f)
	if math.Abs(f-r) < 5e-7 {
		return integer(int64(r))
	}
	whole := math.Trunc(f)
	return integer(int64(whole)) + strings.TrimPrefix(fmt.Sprintf("%.2f", f-whole), "0")
}

// percent formats part/whole as 12.3%; "–" when whole is 0.
func percent(part, whole float64) string {
	if whole == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*part/whole)
}

// plural is "1 charge" or "3 charges".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return integer(int64(n)) + " " + word + "s"
}
