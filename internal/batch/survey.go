package batch

import (
	"context"
	"errors"
	"fmt"

	"github.com/obolus/obolus/enrich"
	"github.com/obolus/obolus/ingest"
	"github.com/obolus/obolus/schemas"
)

// Survey is what obolus doctor learns by reading a sample of the sources:
// the request-tag keys the usage rows carry, and how far the agent logs of
// one request disagree.
type Survey struct {
	UsageRows int64
	// TagKeys counts, per request-tag key, the usage rows carrying it with
	// a value.
	TagKeys map[string]int64
	// AgentRequests and TimeDisagreements are enrich.Index's counts over the
	// agent logs read.
	AgentRequests, TimeDisagreements int64
	// GatewayLinks counts the gateway spans' links read; GatewayLinked the
	// sampled usage rows a gateway span puts in a trace (through
	// match.GatewayLinkColumn), GatewayLinkedRequests those whose trace's
	// agent request was read too.
	GatewayLinks, GatewayLinked, GatewayLinkedRequests int64
	// LegacyRows counts the sampled legacy usage rows, LegacyUnpriced those
	// whose served entity no served_entities source knows (all of them when
	// none is configured): they carry no model.
	LegacyRows, LegacyUnpriced int64
	// Served reports whether a served_entities source was read.
	Served bool
}

var errEnough = errors.New("survey has enough rows")

// SurveySources reads up to maxRows usage rows and the agent logs of w, and
// the served entities.
func SurveySources(ctx context.Context, usage, agents, served []Source, w ingest.Window, match enrich.MatchConfig, maxRows int64) (*Survey, error) {
	s := &Survey{TagKeys: map[string]int64{}, Served: len(served) > 0}
	ignoreDead := func(schemas.DeadLetter) error { return nil }
	known, _, err := ReadServed(ctx, served, ignoreDead)
	if err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	var linkIDs []string // the sample's link column, when linking is on
	for _, src := range usage {
		if s.UsageRows >= maxRows {
			break
		}
		_, err := src.Read(ctx, w, ingest.Emit{Dead: ignoreDead, Usage: func(evs []schemas.UsageEvent) error {
			for i := range evs {
				if s.UsageRows >= maxRows {
					return errEnough
				}
				s.UsageRows++
				if ev := &evs[i]; ev.Source == schemas.SourceServingEndpoint {
					s.LegacyRows++
					if _, ok := known.At(ev.EndpointID, ev.EventTime); !ok {
						s.LegacyUnpriced++
					}
				}
				switch match.GatewayLinkColumn {
				case enrich.LinkRequestID:
					linkIDs = append(linkIDs, evs[i].RequestID)
				case enrich.LinkInvocationID:
					linkIDs = append(linkIDs, evs[i].InvocationID)
				}
				for k, v := range evs[i].RequestTags {
					if v != "" {
						s.TagKeys[k]++
					}
				}
			}
			return nil
		}})
		if err != nil && !errors.Is(err, errEnough) {
			return nil, fmt.Errorf("survey %s: %w", src.Name(), err)
		}
	}
	idx := enrich.NewIndex()
	idx.SetMergeTolerance(match.Skew)
	for _, src := range agents {
		if _, err := src.Read(ctx, w, ingest.Emit{Dead: ignoreDead, Agents: func(rs []schemas.AgentRequest) error {
			idx.Add(rs...)
			return nil
		}}); err != nil {
			return nil, fmt.Errorf("survey %s: %w", src.Name(), err)
		}
	}
	s.AgentRequests, s.TimeDisagreements = int64(idx.Len()), idx.TimeDisagreements()
	s.GatewayLinks = int64(idx.Links())
	for _, id := range linkIDs {
		if trace, ok := idx.ByGatewayLink(id); ok {
			s.GatewayLinked++
			if _, ok := idx.ByTraceID(trace); ok {
				s.GatewayLinkedRequests++
			}
		}
	}
	return s, nil
}
