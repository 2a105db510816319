package synth

import (
	"math"
	"math/rand/v2"
)

// id128 is a random identifier kept as two words until it is written, so that
// millions of them cost no allocations.
type id128 struct{ hi, lo uint64 }

// newUUID draws a version-4 UUID.
func newUUID(r *rand.Rand) id128 {
	id := id128{r.Uint64(), r.Uint64()}
	id.hi = id.hi&^(0xf<<12) | 0x4<<12 // version 4
	id.lo = id.lo&^(0x3<<62) | 0x2<<62 // RFC 4122 variant
	return id
}

// newHex draws 128 random bits, for trace ids.
func newHex(r *rand.Rand) id128 { return id128{r.Uint64(), r.Uint64()} }

const hexDigits = "0123456789abcdef"

func appendHex64(b []byte, v uint64, digits int) []byte {
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hexDigits[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// appendHex writes the 32 lower-case hex digits of id.
func (id id128) appendHex(b []byte) []byte {
	b = appendHex64(b, id.hi, 16)
	return appendHex64(b, id.lo, 16)
}

// appendUUID writes id in the 8-4-4-4-12 form.
func (id id128) appendUUID(b []byte) []byte {
	b = appendHex64(b, id.hi>>32, 8)
	b = append(b, '-')
	b = appendHex64(b, id.hi>>16, 4)
	b = append(b, '-')
	b = appendHex64(b, id.hi, 4)
	b = append(b, '-')
	b = appendHex64(b, id.lo>>48, 4)
	b = append(b, '-')
	return appendHex64(b, id.lo, 12)
}

func (id id128) uuid() string { return string(id.appendUUID(make([]byte, 0, 36))) }
func (id id128) hex() string  { return string(id.appendHex(make([]byte, 0, 32))) }

// traceID is the MLflow spelling of a trace id.
func (id id128) traceID() string { return "tr-" + id.hex() }

// appendTraceparent writes a W3C traceparent for the trace with the given span.
func (id id128) appendTraceparent(b []byte, span uint64) []byte {
	b = append(b, "00-"...)
	b = id.appendHex(b)
	b = append(b, '-')
	if span == 0 {
		span = 1 // an all-zero parent id is invalid
	}
	b = appendHex64(b, span, 16)
	return append(b, "-01"...)
}

// Random helpers. Each takes the generator explicitly so that every stream
// of draws is reproducible on its own.

func bernoulli(r *rand.Rand, p float64) bool { return p > 0 && r.Float64() < p }

// logNormal draws from a log-normal distribution with the given median.
func logNormal(r *rand.Rand, median, sigma float64) float64 {
	return median * math.Exp(sigma*r.NormFloat64())
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// uniform draws from [lo, hi).
func uniform(r *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

// poisson draws a Poisson variate; small means only, which is all we use.
func poisson(r *rand.Rand, mean float64) int {
	if mean > 30 {
		return int(math.Max(0, math.Round(mean+math.Sqrt(mean)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// weighted picks an index by cumulative weights (the last entry is the total).
type weighted []float64

func newWeighted(ws []float64) weighted {
	c := make(weighted, len(ws))
	var s float64
	for i, w := range ws {
		s += w
		c[i] = s
	}
	return c
}

func (c weighted) pick(r *rand.Rand) int {
	x := r.Float64() * c[len(c)-1]
	lo, hi := 0, len(c)-1
	for lo < hi {
		m := (lo + hi) / 2
		if c[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// streamRand returns the generator of one independent stream of draws.
// Streams are keyed by purpose and index, so adding draws to one part of the
// generator never shifts another.
func streamRand(seed int64, purpose, index uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed)^0x6f626f6c7573, purpose<<48^index*0x9e3779b97f4a7c15))
}
