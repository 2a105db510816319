package schemas

import (
	"strings"
	"time"
)

// ServedEntity is one row of system.serving.served_entities: what a serving
// endpoint served from ChangeTime on. The table keeps a row per change, so
// one served_entity_id can have several. Legacy usage rows
// (system.serving.endpoint_usage) name only the served_entity_id; this is
// where their model comes from.
type ServedEntity struct {
	ServedEntityID   string    `json:"served_entity_id"`
	AccountID        string    `json:"account_id"`
	WorkspaceID      string    `json:"workspace_id"`
	EndpointName     string    `json:"endpoint_name"`
	EndpointID       string    `json:"endpoint_id"`
	ServedEntityName string    `json:"served_entity_name"`
	EntityType       string    `json:"entity_type"` // FEATURE_SPEC, EXTERNAL_MODEL, FOUNDATION_MODEL or CUSTOM_MODEL
	EntityName       string    `json:"entity_name"`
	EntityVersion    string    `json:"entity_version"`
	Task             string    `json:"task"`
	ChangeTime       time.Time `json:"change_time"`
}

// EntityTypeExternal is the entity_type of an external model, whose
// entity_name is the provider's model name.
const EntityTypeExternal = "EXTERNAL_MODEL"

// Model is the model the entity serves, as a price list names it: an
// external model's entity_name as it is (gpt-4.1), and otherwise the name
// within its Unity Catalog schema, what follows catalog.schema.
// (system.ai.databricks-claude-sonnet-4-5 → databricks-claude-sonnet-4-5),
// which the price list reads with its databricks- prefix dropped.
func (e *ServedEntity) Model() string {
	if e.EntityType == EntityTypeExternal || strings.Count(e.EntityName, ".") < 2 {
		return e.EntityName
	}
	_, rest, _ := strings.Cut(e.EntityName, ".")
	_, rest, _ = strings.Cut(rest, ".")
	return rest
}
