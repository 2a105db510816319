package report

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
)

// BillingGenConfig shapes generated billing. Zero fields take the defaults on each.
type BillingGenConfig struct {
	Seed   int64  // default 1
	Period Period // required
	// SKU, Cloud, Unit and Currency of the records (defaults
	// ENTERPRISE_SERVERLESS_REAL_TIME_INFERENCE_US_EAST_1, AWS, DBU, USD).
	SKU, Cloud, Unit, Currency string
	// Price and NewPrice are the list prices per unit before and after
	// PriceChange (defaults 0.07 and 0.065; PriceChange defaults to the
	// first midnight after the period's middle).
	Price, NewPrice string
	PriceChange     time.Time
	// Noise is how far a record's billed cost strays from the list-price
	// estimate, relative (default 0.03); IdleShare adds billed hours with no
	// usage, as a share of the buckets with usage (default 0.02). Negative
	// asks for zero.
	Noise, IdleShare float64
	// IdleDays bills one hour with no usage on every day of the period that
	// has no gateway usage at all (a batch job obolus does not see), so a
	// demo report shows such days. Off by default.
	IdleDays bool
}

func (c BillingGenConfig) withDefaults() BillingGenConfig {
	c.Seed = cmp.Or(c.Seed, 1)
	c.SKU = cmp.Or(c.SKU, "ENTERPRISE_SERVERLESS_REAL_TIME_INFERENCE_US_EAST_1")
	c.Cloud = cmp.Or(c.Cloud, "AWS")
	c.Unit = cmp.Or(c.Unit, "DBU")
	c.Currency = cmp.Or(c.Currency, "USD")
	c.Price = cmp.Or(c.Price, "0.07")
	c.NewPrice = cmp.Or(c.NewPrice, "0.065")
	if c.PriceChange.IsZero() {
		mid := c.Period.Start.Add(c.Period.End.Sub(c.Period.Start) / 2)
		c.PriceChange = mid.Truncate(24*time.Hour).AddDate(0, 0, 1)
		if !c.PriceChange.Before(c.Period.End) {
			c.PriceChange = mid.Truncate(time.Hour)
		}
	}
	if c.Noise == 0 {
		c.Noise = 0.03
	}
	if c.IdleShare == 0 {
		c.IdleShare = 0.02
	}
	c.Noise, c.IdleShare = max(c.Noise, 0), max(c.IdleShare, 0)
	return c
}

// UsageMetadata is the part of system.billing.usage.usage_metadata obolus uses.
type UsageMetadata struct {
	EndpointName              string `json:"endpoint_name,omitempty"`
	EndpointID                string `json:"endpoint_id,omitempty"`
	AIGatewayEndpointName     string `json:"ai_gateway_endpoint_name,omitempty"`
	AIGatewayEndpointID       string `json:"ai_gateway_endpoint_id,omitempty"`
	AIGatewayDestinationModel string `json:"ai_gateway_destination_model,omitempty"`
}

// IdentityMetadata is system.billing.usage.identity_metadata.
type IdentityMetadata struct {
	RunBy string `json:"run_by,omitempty"`
}

// BillingUsageRecord is one row of system.billing.usage as Databricks exports it.
type BillingUsageRecord struct {
	RecordID             string            `json:"record_id"`
	AccountID            string            `json:"account_id"`
	WorkspaceID          string            `json:"workspace_id"`
	SKUName              string            `json:"sku_name"`
	Cloud                string            `json:"cloud"`
	UsageStartTime       string            `json:"usage_start_time"`
	UsageEndTime         string            `json:"usage_end_time"`
	UsageDate            string            `json:"usage_date"`
	CustomTags           map[string]string `json:"custom_tags"`
	UsageUnit            string            `json:"usage_unit"`
	UsageQuantity        json.Number       `json:"usage_quantity"`
	UsageMetadata        UsageMetadata     `json:"usage_metadata"`
	IdentityMetadata     IdentityMetadata  `json:"identity_metadata"`
	RecordType           string            `json:"record_type"`
	IngestionDate        string            `json:"ingestion_date"`
	BillingOriginProduct string            `json:"billing_origin_product"`
	UsageType            string            `json:"usage_type"`
}

// Pricing is system.billing.list_prices.pricing.
type Pricing struct {
	Default     json.Number `json:"default"`
	Promotional struct {
		Default *json.Number `json:"default"`
	} `json:"promotional"`
	EffectiveList struct {
		Default json.Number `json:"default"`
	} `json:"effective_list"`
}

// ListPriceRecord is one row of system.billing.list_prices.
type ListPriceRecord struct {
	AccountID      string  `json:"account_id"`
	PriceStartTime string  `json:"price_start_time"`
	PriceEndTime   *string `json:"price_end_time"`
	SKUName        string  `json:"sku_name"`
	Cloud          string  `json:"cloud"`
	CurrencyCode   string  `json:"currency_code"`
	UsageUnit      string  `json:"usage_unit"`
	Pricing        Pricing `json:"pricing"`
}

// Billing is generated billing: usage records and the list prices they join.
type Billing struct {
	Usage  []BillingUsageRecord
	Prices []ListPriceRecord
}

type genBucket struct {
	hour                                         time.Time
	endpointID, endpointName, model, ws, account string
	requester                                    string
	cost                                         float64
}

const billingTime = "2006-01-02T15:04:05.000Z"

// GenerateBilling derives hourly AI Gateway billing records from the
// attribution rows of src in the period, the way Databricks would bill them:
// one record per hour × gateway endpoint × model costing the rows' list-price
// cost give or take Noise, a list price that changes at PriceChange, a few
// billed hours with no usage, one record retracted and restated, endpoint-wide
// records with no model, and the spellings the real bill uses (Unity Catalog
// endpoint names, upper-case models, sometimes no endpoint id).
// Deterministic for a seed.
func GenerateBilling(ctx context.Context, src Source, cfg BillingGenConfig) (*Billing, error) {
	if err := src.check(); err != nil {
		return nil, err
	}
	if !cfg.Period.End.After(cfg.Period.Start) {
		return nil, fmt.Errorf("report: generate billing: empty period")
	}
	cfg = cfg.withDefaults()
	price, err := chargeback.ParseDecimal(cfg.Price)
	if err != nil || price.Sign() <= 0 {
		return nil, fmt.Errorf("report: generate billing: price %q is not a positive decimal", cfg.Price)
	}
	newPrice, err := chargeback.ParseDecimal(cfg.NewPrice)
	if err != nil || newPrice.Sign() <= 0 {
		return nil, fmt.Errorf("report: generate billing: new price %q is not a positive decimal", cfg.NewPrice)
	}
	tbl, err := src.table("attribution", src.Tables.Attribution)
	if err != nil {
		return nil, err
	}
	q := `SELECT date_trunc('hour', event_time), coalesce(endpoint_id, ''), coalesce(endpoint_name, ''), coalesce(destination_model, ''),
	coalesce(workspace_id, ''), coalesce(account_id, ''), coalesce(min(requester), ''), coalesce(sum(cost_usd), 0)
FROM ` + tbl + `
WHERE event_time >= ` + src.Dialect.ts() + ` AND event_time < ` + src.Dialect.ts() + `
GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6`
	rows, err := src.DB.QueryContext(ctx, q, cfg.Period.Start.UnixMicro(), cfg.Period.End.UnixMicro())
	if err != nil {
		return nil, fmt.Errorf("report: generate billing: read %s: %w", src.Tables.Attribution, err)
	}
	defer rows.Close()
	var buckets []genBucket
	for rows.Next() {
		var b genBucket
		if err := rows.Scan(&b.hour, &b.endpointID, &b.endpointName, &b.model, &b.ws, &b.account, &b.requester, &b.cost); err != nil {
			return nil, fmt.Errorf("report: generate billing: %w", err)
		}
		b.hour = b.hour.UTC()
		buckets = append(buckets, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report: generate billing: %w", err)
	}

	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x0b01))
	out := &Billing{}
	seq := 0
	priceAt := func(end time.Time) float64 {
		p := price
		if !end.Before(cfg.PriceChange) {
			p = newPrice
		}
		f, _ := p.Float64()
		return f
	}
	add := func(b genBucket, model string, qty float64, recordType, product string) *BillingUsageRecord {
		seq++
		r := BillingUsageRecord{
			RecordID:       fmt.Sprintf("rec-%07d", seq),
			AccountID:      b.account,
			WorkspaceID:    b.ws,
			SKUName:        cfg.SKU,
			Cloud:          cfg.Cloud,
			UsageStartTime: b.hour.Format(billingTime),
			UsageEndTime:   b.hour.Add(time.Hour).Format(billingTime),
			UsageDate:      b.hour.Format(time.DateOnly),
			CustomTags:     map[string]string{"obolus_generated": "true"},
			UsageUnit:      cfg.Unit,
			UsageQuantity:  json.Number(quantity(qty)),
			UsageMetadata: UsageMetadata{
				EndpointName:              b.endpointName,
				EndpointID:                b.endpointID,
				AIGatewayEndpointName:     "main.ai_gateway." + b.endpointName,
				AIGatewayEndpointID:       b.endpointID,
				AIGatewayDestinationModel: model,
			},
			IdentityMetadata:     IdentityMetadata{RunBy: b.requester},
			RecordType:           recordType,
			IngestionDate:        b.hour.Add(6 * time.Hour).Format(time.DateOnly),
			BillingOriginProduct: product,
			UsageType:            "TOKEN",
		}
		// The bill does not always carry the endpoint id: then the name
		// (a Unity Catalog name) must find the endpoint.
		if rng.IntN(10) == 0 {
			r.UsageMetadata.AIGatewayEndpointID = ""
		}
		out.Usage = append(out.Usage, r)
		return &out.Usage[len(out.Usage)-1]
	}
	spell := func(model string) string {
		if rng.IntN(3) == 0 {
			return strings.ToUpper(model)
		}
		return model
	}

	type ehKey struct {
		hour time.Time
		ep   string
	}
	have := map[genBucket]bool{}
	seenEH := map[ehKey]bool{}
	restated := false
	for _, b := range buckets {
		end := b.hour.Add(time.Hour)
		cost := b.cost
		if cost <= 0 {
			cost = 0.0005 // unpriced models still cost something on the bill
		}
		qty := cost * (1 + cfg.Noise*(2*rng.Float64()-1)) / priceAt(end)
		r := add(b, spell(b.model), qty, "ORIGINAL", "MODEL_SERVING")
		if !restated && b.cost > 0.01 {
			// A correction: the original retracted and restated at a new quantity.
			restated = true
			model, q := r.UsageMetadata.AIGatewayDestinationModel, mustFloat(r.UsageQuantity)
			add(b, model, -q, "RETRACTION", "MODEL_SERVING")
			add(b, model, q*1.01, "RESTATEMENT", "MODEL_SERVING")
		}
		k := b
		k.cost, k.requester = 0, ""
		have[k] = true
		eh := ehKey{b.hour, b.endpointID + "\x00" + b.endpointName}
		if !seenEH[eh] && rng.IntN(40) == 0 {
			// An endpoint-wide fee with no model: spread over all the hour's models.
			add(b, "", 0.5+rng.Float64(), "ORIGINAL", "AI_GATEWAY")
		}
		seenEH[eh] = true
	}
	// Billed hours with no usage: gateway calls made outside any agent, or
	// by a batch job obolus does not see.
	idle := int(math.Round(cfg.IdleShare * float64(len(buckets))))
	if cfg.IdleShare > 0 && idle == 0 && len(buckets) > 0 {
		idle = 1
	}
	hours := int(cfg.Period.End.Sub(cfg.Period.Start) / time.Hour)
	for tries := 0; idle > 0 && tries < 100*idle+100 && hours > 0; tries++ {
		b := buckets[rng.IntN(len(buckets))]
		b.hour = cfg.Period.Start.Add(time.Duration(rng.IntN(hours)) * time.Hour)
		k := b
		k.cost, k.requester = 0, ""
		if have[k] {
			continue
		}
		have[k] = true
		r := add(b, spell(b.model), 0.5+4*rng.Float64(), "ORIGINAL", "MODEL_SERVING")
		r.CustomTags = map[string]string{"obolus_generated": "idle"}
		idle--
	}
	if cfg.IdleDays && len(buckets) > 0 {
		used := map[time.Time]bool{}
		for _, b := range buckets {
			used[b.hour.Truncate(24*time.Hour)] = true
		}
		for _, day := range cfg.Period.Days() {
			if used[day] {
				continue
			}
			b := buckets[rng.IntN(len(buckets))]
			b.hour = day.Add(time.Duration(rng.IntN(24)) * time.Hour)
			if b.hour.Before(cfg.Period.Start) || !b.hour.Before(cfg.Period.End) {
				continue // a partial first or last day
			}
			r := add(b, spell(b.model), 0.5+4*rng.Float64(), "ORIGINAL", "MODEL_SERVING")
			r.CustomTags = map[string]string{"obolus_generated": "idle_day"}
		}
	}

	end := cfg.PriceChange.Format(billingTime)
	account := ""
	if len(buckets) > 0 {
		account = buckets[0].account
	}
	lp := func(start string, endp *string, p string) ListPriceRecord {
		r := ListPriceRecord{AccountID: account, PriceStartTime: start, PriceEndTime: endp, SKUName: cfg.SKU, Cloud: cfg.Cloud,
			CurrencyCode: cfg.Currency, UsageUnit: cfg.Unit}
		r.Pricing.Default = json.Number(p)
		r.Pricing.EffectiveList.Default = json.Number(p)
		return r
	}
	out.Prices = []ListPriceRecord{
		lp(cfg.Period.Start.AddDate(-1, 0, 0).Format(billingTime), &end, cfg.Price),
		lp(end, nil, cfg.NewPrice),
	}
	return out, nil
}

// quantity writes a usage quantity with 9 decimals, as a JSON number.
func quantity(q float64) string {
	s := fmt.Sprintf("%.9f", q)
	if s == "-0.000000000" {
		s = "0.000000000"
	}
	return s
}

func mustFloat(n json.Number) float64 {
	f, _ := n.Float64()
	return f
}

// WriteJSONL writes the usage records and the list prices as JSON lines,
// the shape Databricks exports them in.
func (b *Billing) WriteJSONL(usagePath, pricesPath string) error {
	if err := writeJSONL(usagePath, b.Usage); err != nil {
		return err
	}
	return writeJSONL(pricesPath, b.Prices)
}

func writeJSONL[T any](path string, recs []T) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for i := range recs {
		if err := enc.Encode(&recs[i]); err != nil {
			f.Close()
			return fmt.Errorf("report: write %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	return nil
}
