package enrich

import (
	"cmp"
	"slices"
	"time"

	"github.com/obolus/obolus/schemas"
)

// ServedEntities resolves what a legacy usage row's served_entity_id served
// when the call was made. system.serving.served_entities keeps a row per
// change of an entity; the row in force at time t is the last one whose
// change_time is at or before t (ties: the last in (entity_name,
// served_entity_name) order), and a call made before the first known change
// takes that first row: the entity existed, only its history is shorter.
type ServedEntities struct {
	byID map[string][]schemas.ServedEntity // each sorted by servedOrder
}

// NewServedEntities indexes rows, in any order.
func NewServedEntities(rows []schemas.ServedEntity) *ServedEntities {
	s := &ServedEntities{byID: map[string][]schemas.ServedEntity{}}
	for _, r := range rows {
		s.byID[r.ServedEntityID] = append(s.byID[r.ServedEntityID], r)
	}
	for _, v := range s.byID {
		slices.SortFunc(v, servedOrder)
	}
	return s
}

func servedOrder(a, b schemas.ServedEntity) int {
	if c := a.ChangeTime.Compare(b.ChangeTime); c != 0 {
		return c
	}
	if c := cmp.Compare(a.EntityName, b.EntityName); c != 0 {
		return c
	}
	return cmp.Compare(a.ServedEntityName, b.ServedEntityName)
}

// Len is the number of served entities known.
func (s *ServedEntities) Len() int { return len(s.byID) }

// At is the version of entity id in force at t.
func (s *ServedEntities) At(id string, t time.Time) (*schemas.ServedEntity, bool) {
	v := s.byID[id]
	if len(v) == 0 {
		return nil, false
	}
	// The first version changed after t; the one before it is in force.
	i, _ := slices.BinarySearchFunc(v, t, func(e schemas.ServedEntity, t time.Time) int {
		if e.ChangeTime.After(t) {
			return 1
		}
		return -1
	})
	return &v[max(i-1, 0)], true
}

// SetServedEntities has the engine name the model and endpoint of legacy
// usage rows (source serving_endpoint) from s, so that they are priced.
func (e *Engine) SetServedEntities(s *ServedEntities) { e.served = s }

// resolveServed fills a legacy row's model and endpoint name from its
// served entity; rows that carry a model, or whose entity is unknown, stay
// as they are.
func (e *Engine) resolveServed(row *schemas.Attribution, ev *schemas.UsageEvent) {
	if e.served == nil || ev.Source != schemas.SourceServingEndpoint || ev.DestinationModel != "" {
		return
	}
	// A legacy row's endpoint_id is its served_entity_id (schemas.LegacyUsage).
	if se, ok := e.served.At(ev.EndpointID, ev.EventTime); ok {
		row.DestinationModel = se.Model()
		if row.EndpointName == "" {
			row.EndpointName = se.EndpointName
		}
	}
}
