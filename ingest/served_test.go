package ingest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

// Served entities are read whole, whatever the window, and a row without
// what the model is resolved from is dead-lettered naming the field.
func TestReadServedEntities(t *testing.T) {
	p := filepath.Join(t.TempDir(), "served_entities.jsonl")
	rows := `{"served_entity_id":"se-1","endpoint_name":"ep","entity_type":"FOUNDATION_MODEL","entity_name":"system.ai.databricks-gpt-5-mini","entity_version":"2","change_time":"2025-01-01T00:00:00Z","external_model_config":{"provider":"x"}}
{"served_entity_id":"se-2","entity_type":"EXTERNAL_MODEL","entity_name":"gpt-5"}
{"served_entity_id":"se-3","entity_type":"EXTERNAL_MODEL","change_time":"2026-11-01T00:00:00Z"}
`
	if err := os.WriteFile(p, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []schemas.ServedEntity
	var dead []schemas.DeadLetter
	w := Window{From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)}
	st, err := ReadFiles(context.Background(), Spec{Kind: KindServedEntities, Path: p}, w, Emit{
		Served: func(r []schemas.ServedEntity) error { got = append(got, r...); return nil },
		Dead:   func(d schemas.DeadLetter) error { dead = append(dead, d); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Balanced() || st.Rows != 3 || st.Emitted != 1 || st.Dead != 2 {
		t.Errorf("stats %+v", st)
	}
	if len(got) != 1 || got[0].ServedEntityID != "se-1" || got[0].Model() != "databricks-gpt-5-mini" || got[0].EntityVersion != "2" {
		t.Errorf("rows %+v", got)
	}
	if len(dead) != 2 || dead[0].Field != "change_time" || dead[1].Field != "entity_name" || dead[0].Kind != schemas.KindServedEntity {
		t.Errorf("dead letters %+v", dead)
	}
}
