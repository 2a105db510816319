package chargeback

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchWorkload is a month of n items over 720 hours × 4 endpoints × 3
// models, with a charge for nearly every bucket.
func benchWorkload(n int) ([]Charge, []Item) {
	rng := rand.New(rand.NewPCG(7, 7))
	eps := []string{"gw-chat", "gw-code", "gw-search", "gw-batch"}
	models := []string{"gpt-5", "claude-sonnet-4-5", "meta-llama-3.3-70b-instruct"}
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{
			Hour:      h0 + Hour(3600*rng.IntN(720)),
			Endpoint:  eps[rng.IntN(len(eps))],
			Model:     models[rng.IntN(len(models))],
			ListNanos: rng.Int64N(50_000_000),
			Tokens:    rng.Int64N(20_000),
		}
	}
	var charges []Charge
	for h := range 720 {
		for _, ep := range eps {
			for _, m := range models {
				if rng.IntN(50) > 0 {
					charges = append(charges, Charge{h0 + Hour(3600*h), ep, m, rng.Int64N(5_000_000_000)})
				}
			}
		}
	}
	return charges, items
}

func BenchmarkAllocate(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			charges, items := benchWorkload(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Allocate(charges, items, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
