package report

import (
	"github.com/obolus/obolus/schemas"

	"context"
	"database/sql"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
)

// usageRow is the part of an attribution row a report uses.
type usageRow struct {
	invocationID                                   string
	endUser, team, costCenter, agent, session      string
	agentRequest                                   string
	endpointID, endpointName, model, method        string
	workspace, account                             string
	eventTime                                      time.Time
	confidence, weight, costUSD                    float64
	input, output, total, cacheRead, cacheCreation int64
	reasoning                                      int64
}

// interner shares the storage of repeated strings (teams, models, users):
// a month of rows repeats a few thousand values a million times.
type interner map[string]string

func (in interner) get(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	in[s] = s
	return s
}

// CalibrationLine says how often the time-window rule was right for one
// agent's id-linked calls, summed over the runs that wrote the period's
// time-window rows.
type CalibrationLine struct {
	ServicePrincipal, Agent string
	Calls, Correct          int64
}

// readCalibration reads the calibration behind the period's time-window
// rows: per service principal, the id-linked calls of the runs that wrote
// them and how many the rule got right.
func readCalibration(ctx context.Context, src Source, p Period) ([]CalibrationLine, error) {
	if src.Tables.Calibration == "" {
		return nil, nil
	}
	attr, err := src.table("attribution", src.Tables.Attribution)
	if err != nil {
		return nil, err
	}
	cal, err := src.table("calibration", src.Tables.Calibration)
	if err != nil {
		return nil, err
	}
	period := `event_time >= ` + src.Dialect.ts() + ` AND event_time < ` + src.Dialect.ts()
	q := `SELECT c.service_principal, coalesce(max(n.agent_endpoint), ''), sum(c.calls), sum(c.correct)
FROM ` + cal + ` c
LEFT JOIN (SELECT requester, max(agent_endpoint) AS agent_endpoint FROM ` + attr + `
           WHERE ` + period + ` AND agent_endpoint <> '' GROUP BY requester) n ON n.requester = c.service_principal
WHERE c.method <> '' AND c.service_principal <> ''
  AND c.run_id IN (SELECT DISTINCT run_id FROM ` + attr + ` WHERE ` + period + ` AND match_method IN ` + schemas.CalibratedMethodsSQL + `)
GROUP BY c.service_principal ORDER BY c.service_principal`
	rows, err := src.DB.QueryContext(ctx, q, p.Start.UnixMicro(), p.End.UnixMicro(), p.Start.UnixMicro(), p.End.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("report: read %s: %w", src.Tables.Calibration, err)
	}
	defer rows.Close()
	var out []CalibrationLine
	for rows.Next() {
		var l CalibrationLine
		if err := rows.Scan(&l.ServicePrincipal, &l.Agent, &l.Calls, &l.Correct); err != nil {
			return nil, fmt.Errorf("report: read %s: %w", src.Tables.Calibration, err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// readUsage reads the period's attribution rows, ordered by invocation and
// end user so that allocation ties break the same way on every store.
func readUsage(ctx context.Context, src Source, p Period) ([]usageRow, error) {
	tbl, err := src.table("attribution", src.Tables.Attribution)
	if err != nil {
		return nil, err
	}
	where := ` WHERE event_time >= ` + src.Dialect.ts() + ` AND event_time < ` + src.Dialect.ts()
	// Counting first sizes the slice once: a month can be millions of rows.
	var n int64
	if err := queryRow(ctx, src.DB, `SELECT count(*) FROM `+tbl+where, p.Start.UnixMicro(), p.End.UnixMicro()).Scan(&n); err != nil {
		return nil, fmt.Errorf("report: count %s: %w", src.Tables.Attribution, err)
	}
	q := `SELECT invocation_id, coalesce(end_user, ''), coalesce(team, ''), coalesce(cost_center, ''), coalesce(agent_endpoint, ''),
	coalesce(session, ''), coalesce(agent_request_id, ''), coalesce(endpoint_id, ''), coalesce(endpoint_name, ''), coalesce(destination_model, ''), coalesce(match_method, ''),
	coalesce(workspace_id, ''), coalesce(account_id, ''), event_time,
	coalesce(match_confidence, 0), coalesce(weight, 0), coalesce(cost_usd, 0),
	coalesce(input_tokens, 0), coalesce(output_tokens, 0), coalesce(total_tokens, 0),
	coalesce(cache_read_input_tokens, 0), coalesce(cache_creation_input_tokens, 0), coalesce(output_reasoning_tokens, 0)
FROM ` + tbl + where + `
ORDER BY invocation_id, end_user`
	rows, err := src.DB.QueryContext(ctx, q, p.Start.UnixMicro(), p.End.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("report: read %s: %w", src.Tables.Attribution, err)
	}
	defer rows.Close()
	in := interner{}
	out := make([]usageRow, 0, n)
	var r usageRow
	for rows.Next() {
		if err := rows.Scan(&r.invocationID, &r.endUser, &r.team, &r.costCenter, &r.agent, &r.session, &r.agentRequest,
			&r.endpointID, &r.endpointName, &r.model, &r.method, &r.workspace, &r.account, &r.eventTime,
			&r.confidence, &r.weight, &r.costUSD, &r.input, &r.output, &r.total, &r.cacheRead, &r.cacheCreation, &r.reasoning); err != nil {
			return nil, fmt.Errorf("report: read %s row %d: %w", src.Tables.Attribution, len(out)+1, err)
		}
		for _, f := range []struct {
			name string
			v    float64
		}{{"weight", r.weight}, {"match_confidence", r.confidence}, {"cost_usd", r.costUSD}} {
			if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
				return nil, fmt.Errorf("report: %s row invocation_id %q end_user %q: %s is %v", src.Tables.Attribution, r.invocationID, r.endUser, f.name, f.v)
			}
		}
		for _, s := range []*string{&r.endUser, &r.team, &r.costCenter, &r.agent, &r.endpointID, &r.endpointName, &r.model, &r.method, &r.workspace, &r.account} {
			*s = in.get(*s)
		}
		r.eventTime = r.eventTime.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report: read %s: %w", src.Tables.Attribution, err)
	}
	return out, nil
}

// billingRecord is one AI Gateway record of system.billing.usage with the
// list price in force at its end.
type billingRecord struct {
	recordID, account, workspace, sku, cloud, unit string
	start, end                                     time.Time
	quantity                                       *big.Rat
	endpointID, endpointName, model                string
	recordType, product                            string
	currency                                       string
	listPrice, price                               *big.Rat // pricing.default and pricing.effective_list.default
	priceStart                                     time.Time
}

// readBilling reads the period's AI Gateway billing records joined to their
// list prices. A record with no price in force, or with two, is an error: the
// bill cannot be reconciled around it.
func readBilling(ctx context.Context, src Source, p Period) ([]billingRecord, error) {
	usage, err := src.table("billing_usage", src.Tables.BillingUsage)
	if err != nil {
		return nil, err
	}
	prices, err := src.table("list_prices", src.Tables.ListPrices)
	if err != nil {
		return nil, err
	}
	d := src.Dialect
	def := d.quote("default")
	q := `SELECT u.record_id, coalesce(u.account_id, ''), coalesce(u.workspace_id, ''), u.sku_name, u.cloud, u.usage_unit,
	u.usage_start_time, u.usage_end_time, CAST(u.usage_quantity AS ` + d.text + `),
	coalesce(` + d.gatewayField("u", "endpoint_id") + `, ''), coalesce(` + d.gatewayField("u", "endpoint_name") + `, ''),
	coalesce(` + d.gatewayField("u", "destination_model") + `, ''),
	coalesce(u.record_type, ''), coalesce(u.billing_origin_product, ''),
	p.currency_code, CAST(p.pricing.` + def + ` AS ` + d.text + `), CAST(p.pricing.effective_list.` + def + ` AS ` + d.text + `), p.price_start_time
FROM ` + usage + ` u
LEFT JOIN ` + prices + ` p
       ON u.sku_name = p.sku_name AND u.cloud = p.cloud AND u.usage_unit = p.usage_unit
      AND u.usage_end_time >= p.price_start_time
      AND (p.price_end_time IS NULL OR u.usage_end_time < p.price_end_time)
WHERE u.usage_start_time >= ` + d.ts() + ` AND u.usage_start_time < ` + d.ts() + `
  AND (` + d.gatewayField("u", "endpoint_id") + ` IS NOT NULL OR ` + d.gatewayField("u", "endpoint_name") + ` IS NOT NULL)
ORDER BY u.usage_start_time, u.record_id`
	rows, err := src.DB.QueryContext(ctx, q, p.Start.UnixMicro(), p.End.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("report: read billing (%s joined to %s): %w", src.Tables.BillingUsage, src.Tables.ListPrices, err)
	}
	defer rows.Close()
	var out []billingRecord
	seen := map[string]time.Time{}
	for rows.Next() {
		var (
			r                        billingRecord
			qty                      *string
			currency, list, eff      *string
			priceStart               *time.Time
			start, end               *time.Time
			recordID, sku, cloud, un *string
		)
		if err := rows.Scan(&recordID, &r.account, &r.workspace, &sku, &cloud, &un, &start, &end, &qty,
			&r.endpointID, &r.endpointName, &r.model, &r.recordType, &r.product, &currency, &list, &eff, &priceStart); err != nil {
			return nil, fmt.Errorf("report: read billing row %d: %w", len(out)+1, err)
		}
		r.recordID, r.sku, r.cloud, r.unit = deref(recordID), deref(sku), deref(cloud), deref(un)
		where := fmt.Sprintf("billing record %q (sku_name %q, cloud %q, usage_unit %q)", r.recordID, r.sku, r.cloud, r.unit)
		switch {
		case r.recordID == "":
			return nil, fmt.Errorf("report: %s: record_id is empty", where)
		case start == nil || end == nil:
			return nil, fmt.Errorf("report: %s: usage_start_time or usage_end_time is NULL", where)
		case qty == nil:
			return nil, fmt.Errorf("report: %s: usage_quantity is NULL", where)
		}
		r.start, r.end = start.UTC(), end.UTC()
		if prev, dup := seen[r.recordID]; dup {
			return nil, fmt.Errorf("report: %s matches two list prices (from %s and from %s): price_start_time/price_end_time overlap in %s",
				where, prev.Format(time.RFC3339), priceStart.UTC().Format(time.RFC3339), src.Tables.ListPrices)
		}
		if eff == nil || currency == nil {
			return nil, fmt.Errorf("report: %s ending %s: no list price in force in %s (or pricing.effective_list.default is NULL)",
				where, r.end.Format(time.RFC3339), src.Tables.ListPrices)
		}
		seen[r.recordID] = priceStart.UTC()
		r.priceStart = priceStart.UTC()
		r.currency = *currency
		if r.quantity, err = chargeback.ParseDecimal(*qty); err != nil {
			return nil, fmt.Errorf("report: %s: usage_quantity: %w", where, err)
		}
		if r.price, err = chargeback.ParseDecimal(*eff); err != nil {
			return nil, fmt.Errorf("report: %s: pricing.effective_list.default: %w", where, err)
		}
		r.listPrice = r.price
		if list != nil {
			if r.listPrice, err = chargeback.ParseDecimal(*list); err != nil {
				return nil, fmt.Errorf("report: %s: pricing.default: %w", where, err)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report: read billing: %w", err)
	}
	return out, nil
}

// queryRow runs a one-row query through a Querier.
func queryRow(ctx context.Context, q Querier, query string, args ...any) rowScanner {
	rows, err := q.QueryContext(ctx, query, args...)
	return rowScanner{rows, err}
}

type rowScanner struct {
	rows *sql.Rows
	err  error
}

func (r rowScanner) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// modelKey is how a model is matched between the bill and the usage table:
// billing spells GPT-5.2 where usage has gpt-5.2, and pay-per-token endpoints
// carry a databricks- prefix.
func modelKey(s string) string {
	return strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "databricks-")
}

// endpoints resolves the endpoint a billing record names to the key the
// usage rows use: the endpoint id when the usage knows it, else the name —
// the bill may give the Unity Catalog name catalog.schema.service, so its
// last part is tried too.
type endpoints struct {
	ids    map[string]bool
	byName map[string]string
}

func endpointKey(id, name string) string {
	if id != "" {
		return id
	}
	return name
}

func newEndpoints(rows []usageRow) endpoints {
	e := endpoints{ids: map[string]bool{}, byName: map[string]string{}}
	for i := range rows {
		r := &rows[i]
		if r.endpointID != "" {
			e.ids[r.endpointID] = true
		}
		if r.endpointName != "" {
			if _, ok := e.byName[r.endpointName]; !ok {
				e.byName[r.endpointName] = endpointKey(r.endpointID, r.endpointName)
			}
		}
	}
	return e
}

func (e endpoints) resolve(id, name string) string {
	if id != "" && e.ids[id] {
		return id
	}
	if k, ok := e.byName[name]; ok && name != "" {
		return k
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		if k, ok := e.byName[name[i+1:]]; ok {
			return k
		}
	}
	return endpointKey(id, name)
}
