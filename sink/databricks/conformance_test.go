package databricks_test

import (
	"testing"

	"github.com/obolus/obolus/sink/databricks"
	"github.com/obolus/obolus/sink/storetest"
)

// The Delta store, through the real driver against the local warehouse,
// with both ways of staging rows.
func TestConformance(t *testing.T) {
	for name, opt := range map[string]databricks.Options{
		"inserts": {},
		"volume":  {StagingVolume: "/Volumes/main/obolus/staging"},
	} {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) storetest.Store {
				_, s := newStore(t, opt)
				return s
			}, storetest.Options{})
		})
	}
}
