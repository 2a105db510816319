package duckdb

import (
	"testing"
	"time"

	"github.com/obolus/obolus/sink/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, _ := openStore(t)
		return s
	}, storetest.Options{ExactCounts: true})
}

// The stream loader's store keeps the contract too.
func TestConformanceRefreshing(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s, _ := openStore(t)
		return &Refreshing{Store: s, RefreshEvery: time.Nanosecond}
	}, storetest.Options{ExactCounts: true})
}
