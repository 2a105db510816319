package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
	"github.com/obolus/obolus/schemas"
)

// FocusVersion is the FOCUS (FinOps Open Cost and Usage Specification)
// version the export follows: 1.2, ratified by the FinOps Foundation in May
// 2025 (https://focus.finops.org, FOCUS_Spec repository, specification/columns).
const FocusVersion = "1.2"

// FocusType is a FOCUS column data type.
type FocusType string

// FOCUS data types.
const (
	FocusString   FocusType = "String"
	FocusDecimal  FocusType = "Decimal"
	FocusDateTime FocusType = "DateTime"
	FocusJSON     FocusType = "JSON"
)

// FocusLevel is a column's feature level: whether a FOCUS dataset must have it.
type FocusLevel string

// FOCUS feature levels.
const (
	Mandatory   FocusLevel = "Mandatory"
	Conditional FocusLevel = "Conditional"
	Recommended FocusLevel = "Recommended"
)

// FocusColumn is one column of the specification.
type FocusColumn struct {
	Name     string
	Type     FocusType
	Level    FocusLevel
	Nullable bool
}

// FocusColumns are the columns of FOCUS 1.2 in the specification's
// (alphabetical) order, with their data type, feature level and whether they
// allow nulls. The export writes every one of them, null where obolus has
// nothing to say (commitment discounts, capacity reservations, regions).
var FocusColumns = []FocusColumn{
	{"AvailabilityZone", FocusString, Recommended, true},
	{"BilledCost", FocusDecimal, Mandatory, false},
	{"BillingAccountId", FocusString, Mandatory, false},
	{"BillingAccountName", FocusString, Mandatory, true},
	{"BillingAccountType", FocusString, Conditional, true},
	{"BillingCurrency", FocusString, Mandatory, false},
	{"BillingPeriodEnd", FocusDateTime, Mandatory, false},
	{"BillingPeriodStart", FocusDateTime, Mandatory, false},
	{"CapacityReservationId", FocusString, Conditional, true},
	{"CapacityReservationStatus", FocusString, Conditional, true},
	{"ChargeCategory", FocusString, Mandatory, false},
	{"ChargeClass", FocusString, Mandatory, true},
	{"ChargeDescription", FocusString, Mandatory, true},
	{"ChargeFrequency", FocusString, Recommended, false},
	{"ChargePeriodEnd", FocusDateTime, Mandatory, false},
	{"ChargePeriodStart", FocusDateTime, Mandatory, false},
	{"CommitmentDiscountCategory", FocusString, Conditional, true},
	{"CommitmentDiscountId", FocusString, Conditional, true},
	{"CommitmentDiscountName", FocusString, Conditional, true},
	{"CommitmentDiscountQuantity", FocusDecimal, Conditional, true},
	{"CommitmentDiscountStatus", FocusString, Conditional, true},
	{"CommitmentDiscountType", FocusString, Conditional, true},
	{"CommitmentDiscountUnit", FocusString, Conditional, true},
	{"ConsumedQuantity", FocusDecimal, Conditional, true},
	{"ConsumedUnit", FocusString, Conditional, true},
	{"ContractedCost", FocusDecimal, Mandatory, false},
	{"ContractedUnitPrice", FocusDecimal, Conditional, true},
	{"EffectiveCost", FocusDecimal, Mandatory, false},
	{"InvoiceId", FocusString, Recommended, true},
	{"InvoiceIssuerName", FocusString, Mandatory, false},
	{"ListCost", FocusDecimal, Mandatory, false},
	{"ListUnitPrice", FocusDecimal, Conditional, true},
	{"PricingCategory", FocusString, Conditional, true},
	{"PricingCurrency", FocusString, Conditional, true},
	{"PricingCurrencyContractedUnitPrice", FocusDecimal, Conditional, true},
	{"PricingCurrencyEffectiveCost", FocusDecimal, Conditional, true},
	{"PricingCurrencyListUnitPrice", FocusDecimal, Conditional, true},
	{"PricingQuantity", FocusDecimal, Mandatory, true},
	{"PricingUnit", FocusString, Mandatory, true},
	{"ProviderName", FocusString, Mandatory, false},
	{"PublisherName", FocusString, Mandatory, false},
	{"RegionId", FocusString, Conditional, true},
	{"RegionName", FocusString, Conditional, true},
	{"ResourceId", FocusString, Conditional, true},
	{"ResourceName", FocusString, Conditional, true},
	{"ResourceType", FocusString, Conditional, true},
	{"ServiceCategory", FocusString, Mandatory, false},
	{"ServiceName", FocusString, Mandatory, false},
	{"ServiceSubcategory", FocusString, Recommended, false},
	{"SkuId", FocusString, Conditional, true},
	{"SkuMeter", FocusString, Conditional, true},
	{"SkuPriceDetails", FocusJSON, Conditional, true},
	{"SkuPriceId", FocusString, Conditional, true},
	{"SubAccountId", FocusString, Conditional, true},
	{"SubAccountName", FocusString, Conditional, true},
	{"SubAccountType", FocusString, Conditional, true},
	{"Tags", FocusJSON, Conditional, true},
}

// FocusExtensionColumns are obolus's own columns, x_-prefixed as FOCUS
// requires of custom columns.
var FocusExtensionColumns = []FocusColumn{
	{"x_EndUser", FocusString, "", true},
	{"x_Team", FocusString, "", true},
	{"x_CostCenter", FocusString, "", true},
	{"x_AgentEndpoint", FocusString, "", true},
	{"x_MatchMethod", FocusString, "", false},
	{"x_MatchConfidence", FocusDecimal, "", true},
	{"x_DestinationModel", FocusString, "", true},
	{"x_Invocations", FocusDecimal, "", true},
	{"x_InputTokens", FocusDecimal, "", true},
	{"x_OutputTokens", FocusDecimal, "", true},
	{"x_TotalTokens", FocusDecimal, "", true},
}

// FocusRow is one row of the FOCUS export: a day's share of one charge (hour
// × gateway endpoint × model × SKU × price) held by one end user through one
// agent and match method. Rows for billed cost with no gateway usage have
// MatchMethod no_usage and no user.
type FocusRow struct {
	BillingAccountID, Workspace, Currency  string
	BillingPeriodStart, BillingPeriodEnd   time.Time
	ChargePeriodStart, ChargePeriodEnd     time.Time
	BilledMicros, ListMicros               int64
	UnitPrice, ListUnitPrice               *big.Rat
	Unit, SKU, Product                     string
	PriceStart                             time.Time
	ResourceID, ResourceName, Model        string
	EndUser, Team, CostCenter, Agent       string
	Method                                 string
	Invocations, Confidence                float64
	InputTokens, OutputTokens, TotalTokens int64

	cloud, chargeModel, prices string // charge attributes that only order rows
}

// PricingQuantity is the row's share of the billed quantity: its cost over the unit price.
func (f *FocusRow) PricingQuantity() *big.Rat {
	if f.UnitPrice == nil || f.UnitPrice.Sign() == 0 {
		return new(big.Rat)
	}
	q := big.NewRat(f.BilledMicros, chargeback.MicrosPerUnit)
	return q.Quo(q, f.UnitPrice)
}

// focusAgg collects (charge, item) shares into FOCUS rows.
type focusAgg struct {
	rep         *Report
	charges     []charge
	rows        []usageRow
	chargeGroup []uint32
	itemGroup   []uint32
	hit         []bool
	acc         map[uint64]*focusAcc
	noUsageItem uint32
}

type focusAcc struct {
	chargeGroup, charge int
	item                int // a row of the item group; -1 for no usage
	billed              int64
	invocations, conf   float64
	in, out, total      int64
}

func newFocusAgg(rep *Report, charges []charge, rows []usageRow) *focusAgg {
	fa := &focusAgg{rep: rep, charges: charges, rows: rows, acc: map[uint64]*focusAcc{},
		chargeGroup: make([]uint32, len(charges)), itemGroup: make([]uint32, len(rows)), hit: make([]bool, len(rows))}
	// A charge group is the charge without its hour: the day's rows merge.
	type cg struct {
		day time.Time
		k   chargeKey
	}
	groups := map[cg]uint32{}
	for j := range charges {
		k := charges[j].chargeKey
		day := k.hour.Time().Truncate(24 * time.Hour)
		k.hour = 0
		id, ok := groups[cg{day, k}]
		if !ok {
			id = uint32(len(groups))
			groups[cg{day, k}] = id
		}
		fa.chargeGroup[j] = id
	}
	type ig struct{ user, team, cc, agent, method, model string }
	items := map[ig]uint32{}
	for i := range rows {
		r := &rows[i]
		k := ig{r.endUser, r.team, r.costCenter, r.agent, r.method, r.model}
		id, ok := items[k]
		if !ok {
			id = uint32(len(items))
			items[k] = id
		}
		fa.itemGroup[i] = id
	}
	fa.noUsageItem = uint32(len(items))
	return fa
}

func (fa *focusAgg) get(j int, item uint32, row int) *focusAcc {
	key := uint64(fa.chargeGroup[j])<<32 | uint64(item)
	a, ok := fa.acc[key]
	if !ok {
		a = &focusAcc{chargeGroup: int(fa.chargeGroup[j]), charge: j, item: row}
		fa.acc[key] = a
	}
	return a
}

func (fa *focusAgg) visit(j, i int, micros int64) {
	fa.hit[i] = true
	r := &fa.rows[i]
	a := fa.get(j, fa.itemGroup[i], i)
	a.billed += micros
	a.invocations += r.weight
	a.conf += r.weight * r.confidence
	a.in += r.input
	a.out += r.output
	a.total += r.total
}

func (fa *focusAgg) noUsage(j int) {
	fa.get(j, fa.noUsageItem, -1).billed += fa.charges[j].micros
}

func (fa *focusAgg) covered(i int) bool { return fa.hit[i] }

func (fa *focusAgg) build() []FocusRow {
	p := fa.rep.Period
	out := make([]FocusRow, 0, len(fa.acc))
	for _, a := range fa.acc {
		c := &fa.charges[a.charge]
		day := c.hour.Time().Truncate(24 * time.Hour)
		start, end := day, day.AddDate(0, 0, 1)
		if start.Before(p.Start) {
			start = p.Start
		}
		if end.After(p.End) {
			end = p.End
		}
		month := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC)
		price, _ := new(big.Rat).SetString(c.price)
		list, _ := new(big.Rat).SetString(c.listPrice)
		f := FocusRow{
			BillingAccountID: c.account, Workspace: c.workspace, Currency: c.currency,
			BillingPeriodStart: month, BillingPeriodEnd: month.AddDate(0, 1, 0),
			ChargePeriodStart: start, ChargePeriodEnd: end,
			BilledMicros: a.billed, UnitPrice: price, ListUnitPrice: list,
			Unit: c.unit, SKU: c.sku, Product: c.product, PriceStart: c.priceStart,
			ResourceID: c.endpoint, ResourceName: c.endpointName, Model: c.modelName,
			Method: MethodNoUsage, cloud: c.cloud, chargeModel: c.model, prices: c.price + " " + c.listPrice,
		}
		f.ListMicros = f.BilledMicros
		if price.Sign() != 0 && price.Cmp(list) != 0 {
			lc := new(big.Rat).Mul(big.NewRat(a.billed, 1), list)
			f.ListMicros, _ = chargeback.RoundHalfAway(lc.Quo(lc, price), 1)
		}
		if a.item >= 0 {
			r := &fa.rows[a.item]
			f.EndUser, f.Team, f.CostCenter, f.Agent, f.Method, f.Model = r.endUser, r.team, r.costCenter, r.agent, r.method, r.model
			f.Invocations, f.InputTokens, f.OutputTokens, f.TotalTokens = a.invocations, a.in, a.out, a.total
			if a.invocations > 0 {
				f.Confidence = a.conf / a.invocations
			}
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b FocusRow) int {
		return cmp.Or(a.ChargePeriodStart.Compare(b.ChargePeriodStart), cmp.Compare(a.ResourceID, b.ResourceID),
			cmp.Compare(a.Model, b.Model), cmp.Compare(a.SKU, b.SKU), cmp.Compare(a.prices, b.prices),
			cmp.Compare(a.Method, b.Method), cmp.Compare(a.EndUser, b.EndUser), cmp.Compare(a.Agent, b.Agent),
			cmp.Compare(a.Team, b.Team), cmp.Compare(a.CostCenter, b.CostCenter), cmp.Compare(a.Product, b.Product),
			cmp.Compare(a.Workspace, b.Workspace), cmp.Compare(a.BillingAccountID, b.BillingAccountID), cmp.Compare(a.chargeModel, b.chargeModel), cmp.Compare(a.cloud, b.cloud), cmp.Compare(a.Unit, b.Unit),
			cmp.Compare(a.Currency, b.Currency))
	})
	return out
}

// FocusRows are the rows of the FOCUS export, built on first use: a report
// that is not exported to FOCUS does not pay for them.
func (r *Report) FocusRows() []FocusRow {
	if r.focus != nil {
		r.Focus = r.focus.build()
		r.focus = nil
	}
	return r.Focus
}

// serviceName names the Databricks product a charge comes from.
func serviceName(product string) string {
	switch product {
	case "MODEL_SERVING", "":
		return "Databricks Model Serving"
	case "AI_GATEWAY":
		return "Databricks AI Gateway"
	}
	return "Databricks " + strings.ReplaceAll(strings.ToLower(product), "_", " ")
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func fixed(v float64, places int) string { return fmt.Sprintf("%.*f", places, v) }

// focusTable lays the rows out in the FOCUS columns, then the x_ columns.
func (r *Report) focusTable() *table {
	cols := append(slices.Clone(FocusColumns), FocusExtensionColumns...)
	t := &table{cols: make([]column, len(cols))}
	for i, c := range cols {
		k := kString
		var scale int32
		switch c.Type {
		case FocusDecimal:
			k, scale = kDecimal, 18
		case FocusDateTime:
			k = kTime
		}
		t.cols[i] = column{name: c.Name, kind: k, scale: scale}
	}
	rows := r.FocusRows()
	for i := range rows {
		f := &rows[i]
		billed := chargeback.FormatFixed(f.BilledMicros, 6)
		price := decimalString(f.UnitPrice)
		desc := fmt.Sprintf("%s tokens through AI Gateway endpoint %s, billed as %s", f.Model, f.ResourceName, f.SKU)
		switch {
		case f.Method == MethodNoUsage:
			desc += "; no gateway usage in the hour, so no end user (obolus remainder)"
		case f.Method == schemas.MethodUnattributed:
			desc += fmt.Sprintf("; unattributed, kept by %s (obolus)", f.EndUser)
		default:
			desc += fmt.Sprintf("; allocated by obolus to %s via %s (%s)", f.EndUser, orDash(f.Agent), f.Method)
		}
		tags, _ := json.Marshal(map[string]string{"obolus/gateway_endpoint": f.ResourceName, "obolus/destination_model": f.Model})
		v := map[string]any{
			"BilledCost":                         billed,
			"BillingAccountId":                   f.BillingAccountID,
			"BillingAccountType":                 "Databricks account",
			"BillingCurrency":                    f.Currency,
			"BillingPeriodEnd":                   f.BillingPeriodEnd,
			"BillingPeriodStart":                 f.BillingPeriodStart,
			"ChargeCategory":                     "Usage",
			"ChargeDescription":                  desc,
			"ChargeFrequency":                    "Usage-Based",
			"ChargePeriodEnd":                    f.ChargePeriodEnd,
			"ChargePeriodStart":                  f.ChargePeriodStart,
			"ConsumedQuantity":                   decimalString(f.PricingQuantity()),
			"ConsumedUnit":                       f.Unit,
			"ContractedCost":                     billed,
			"ContractedUnitPrice":                price,
			"EffectiveCost":                      billed,
			"InvoiceIssuerName":                  "Databricks",
			"ListCost":                           chargeback.FormatFixed(f.ListMicros, 6),
			"ListUnitPrice":                      decimalString(f.ListUnitPrice),
			"PricingCategory":                    "Standard",
			"PricingCurrency":                    f.Currency,
			"PricingCurrencyContractedUnitPrice": price,
			"PricingCurrencyEffectiveCost":       billed,
			"PricingCurrencyListUnitPrice":       decimalString(f.ListUnitPrice),
			"PricingQuantity":                    decimalString(f.PricingQuantity()),
			"PricingUnit":                        f.Unit,
			"ProviderName":                       "Databricks",
			"PublisherName":                      "Databricks",
			"ResourceId":                         orNil(f.ResourceID),
			"ResourceName":                       orNil(f.ResourceName),
			"ResourceType":                       "AI Gateway endpoint",
			"ServiceCategory":                    "AI and Machine Learning",
			"ServiceName":                        serviceName(f.Product),
			"ServiceSubcategory":                 "Generative AI",
			"SkuId":                              f.SKU,
			"SkuMeter":                           f.Unit,
			"SkuPriceId":                         f.SKU + "@" + f.PriceStart.UTC().Format(csvTime),
			"SubAccountId":                       orNil(f.Workspace),
			"SubAccountName":                     subAccount(f.Workspace, "workspace "+f.Workspace),
			"SubAccountType":                     subAccount(f.Workspace, "Databricks workspace"),
			"Tags":                               string(tags),
			"x_EndUser":                          orNil(f.EndUser),
			"x_Team":                             orNil(f.Team),
			"x_CostCenter":                       orNil(f.CostCenter),
			"x_AgentEndpoint":                    orNil(f.Agent),
			"x_MatchMethod":                      f.Method,
			"x_DestinationModel":                 orNil(f.Model),
		}
		if f.Method != MethodNoUsage {
			v["x_MatchConfidence"] = fixed(f.Confidence, 6)
			v["x_Invocations"] = fixed(f.Invocations, 6)
			v["x_InputTokens"] = fmt.Sprint(f.InputTokens)
			v["x_OutputTokens"] = fmt.Sprint(f.OutputTokens)
			v["x_TotalTokens"] = fmt.Sprint(f.TotalTokens)
		}
		row := make([]any, len(cols))
		for k, c := range cols {
			row[k] = v[c.Name]
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// subAccount is v when the row has a workspace, else NULL.
func subAccount(workspace, v string) any {
	if workspace == "" {
		return nil
	}
	return v
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteFocusCSV writes the FOCUS export as CSV. It needs billing data: FOCUS
// rows are billed cost.
func (r *Report) WriteFocusCSV(w io.Writer) error {
	if err := r.needBilling("FOCUS"); err != nil {
		return err
	}
	return r.focusTable().writeCSV(w, r.RawCSV)
}

// WriteFocusParquet writes the FOCUS export as Parquet: Decimal columns as
// DECIMAL(38,18), DateTime as UTC timestamps, String and JSON as strings.
func (r *Report) WriteFocusParquet(w io.Writer) error {
	if err := r.needBilling("FOCUS"); err != nil {
		return err
	}
	return r.focusTable().writeParquet(w)
}

func (r *Report) needBilling(what string) error {
	if !r.Billing {
		return fmt.Errorf("report: %s export needs billing data for %s: load system.billing.usage and list_prices (--billing-usage, --list-prices) first", what, r.Period.Label)
	}
	return nil
}
