package enrich

import (
	"testing"
	"time"

	"github.com/obolus/obolus/schemas"
)

func TestServedEntitiesAt(t *testing.T) {
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	rows := []schemas.ServedEntity{
		// Out of order on purpose; two versions share hour 10.
		{ServedEntityID: "se-1", EntityType: "FOUNDATION_MODEL", EntityName: "system.ai.databricks-gpt-5-mini", ChangeTime: at(10)},
		{ServedEntityID: "se-1", EntityType: "FOUNDATION_MODEL", EntityName: "system.ai.databricks-claude-sonnet-4-5", ChangeTime: at(0)},
		{ServedEntityID: "se-1", EntityType: "EXTERNAL_MODEL", EntityName: "gpt-5", ChangeTime: at(10)},
		{ServedEntityID: "se-2", EntityType: "EXTERNAL_MODEL", EntityName: "gpt-4.1", ChangeTime: at(5)},
	}
	s := NewServedEntities(rows)
	for _, tt := range []struct {
		id    string
		hour  int
		model string
		ok    bool
	}{
		{"se-1", -3, "databricks-claude-sonnet-4-5", true}, // before any change: the first version
		{"se-1", 0, "databricks-claude-sonnet-4-5", true},
		{"se-1", 9, "databricks-claude-sonnet-4-5", true},
		{"se-1", 10, "databricks-gpt-5-mini", true}, // a tie goes to the last in entity_name order
		{"se-1", 30, "databricks-gpt-5-mini", true},
		{"se-2", 1, "gpt-4.1", true}, // an external model's name keeps its dots
		{"se-3", 1, "", false},
	} {
		se, ok := s.At(tt.id, at(tt.hour))
		if ok != tt.ok || ok && se.Model() != tt.model {
			t.Errorf("%s at %dh: %+v %v, want %q %v", tt.id, tt.hour, se, ok, tt.model, tt.ok)
		}
	}
}

func TestServedEntityModel(t *testing.T) {
	for _, tt := range []struct{ typ, name, want string }{
		{"FOUNDATION_MODEL", "system.ai.databricks-meta-llama-3.3-70b-instruct", "databricks-meta-llama-3.3-70b-instruct"},
		{"CUSTOM_MODEL", "main.models.fraud", "fraud"},
		{"EXTERNAL_MODEL", "gpt-4.1", "gpt-4.1"},
		{"EXTERNAL_MODEL", "a.b.c", "a.b.c"},
		{"FOUNDATION_MODEL", "databricks-dbrx", "databricks-dbrx"},
	} {
		e := schemas.ServedEntity{EntityType: tt.typ, EntityName: tt.name}
		if got := e.Model(); got != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.typ, tt.name, got, tt.want)
		}
	}
}

// A legacy row names only its served entity; the engine prices it as the
// model the entity served at the call.
func TestEnginePricesLegacyRowsThroughServedEntities(t *testing.T) {
	e, err := NewEngine(DefaultMatchConfig(), NewIndex(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := schemas.LegacyUsage{DatabricksRequestID: "dbr-1", Requester: spA, RequestTime: t0.Add(time.Hour),
		InputTokenCount: 1000, OutputTokenCount: 100, ServedEntityID: "se-1"}.UsageEvent()
	before := e.Attribute(nil, &ev, Run{})[0]
	if before.CostUSD != 0 || before.PriceListVersion != UnpricedVersion {
		t.Fatalf("without served entities: %+v", before)
	}
	e.SetServedEntities(NewServedEntities([]schemas.ServedEntity{{ServedEntityID: "se-1", EndpointName: "databricks-claude-sonnet-4-5",
		EntityType: "FOUNDATION_MODEL", EntityName: "system.ai.databricks-claude-sonnet-4-5", ChangeTime: t0}}))
	row := e.Attribute(nil, &ev, Run{})[0]
	if row.DestinationModel != "databricks-claude-sonnet-4-5" || row.EndpointName != "databricks-claude-sonnet-4-5" || row.CostUSD <= 0 || row.PriceListVersion == UnpricedVersion {
		t.Errorf("with served entities: model %q endpoint %q cost %v version %q", row.DestinationModel, row.EndpointName, row.CostUSD, row.PriceListVersion)
	}
}
