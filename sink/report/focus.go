package report

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
	"github.com/obolus/obolus/schemas"
)

// FOCUS (FinOps Open Cost and Usage Specification, https://focus.finops.org,
// FOCUS_Spec repository) versions the export can follow: 1.2, ratified in May
// 2025, and 1.3, ratified in December 2025, which adds the split cost
// allocation columns obolus's end-user allocation is (Allocated*).
const (
	Focus12 = "1.2"
	Focus13 = "1.3"
	// DefaultFocusVersion is what --focus-version defaults to.
	DefaultFocusVersion = Focus13
)

// ParseFocusVersion checks a --focus-version value.
func ParseFocusVersion(v string) (string, error) {
	switch v {
	case Focus12, Focus13:
		return v, nil
	case "":
		return DefaultFocusVersion, nil
	}
	return "", fmt.Errorf("FOCUS version %q: obolus writes %s or %s", v, Focus12, Focus13)
}

// FocusColumnsFor are the specification columns of a version, in order.
func FocusColumnsFor(version string) ([]FocusColumn, error) {
	switch version {
	case Focus12:
		return FocusColumns, nil
	case Focus13, "":
		return FocusColumns13, nil
	}
	return nil, fmt.Errorf("report: FOCUS version %q: obolus writes %s or %s", version, Focus12, Focus13)
}

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

// focusAdded13 are the columns FOCUS 1.3 adds to the Cost and Usage dataset
// (each column file's "Introduced (version)" says 1.3; feature level and
// nullability from its "Content Constraints" table). ProviderName and
// PublisherName are deprecated in 1.3 but still Mandatory, so they stay.
var focusAdded13 = []FocusColumn{
	{"AllocatedMethodDetails", FocusJSON, Recommended, true},
	{"AllocatedMethodId", FocusString, Conditional, true},
	{"AllocatedResourceId", FocusString, Conditional, true},
	{"AllocatedResourceName", FocusString, Conditional, true},
	{"AllocatedTags", FocusJSON, Conditional, true},
	{"ContractApplied", FocusJSON, Conditional, true},
	// HostProviderName's constraints table says "Allows nulls: True" but its
	// requirements say "MUST NOT be null"; the stricter reading is kept.
	{"HostProviderName", FocusString, Mandatory, false},
	{"ServiceProviderName", FocusString, Mandatory, false},
}

// FocusColumns13 are the columns of FOCUS 1.3: those of 1.2 and
// focusAdded13, in alphabetical order like the specification's column list.
// The 1.2 columns keep their 1.2 type, feature level and nullability: the
// 1.3 revisions read for the new columns were not compared column by column
// for the old ones (unconfirmed that none changed).
var FocusColumns13 = func() []FocusColumn {
	cols := append(slices.Clone(FocusColumns), focusAdded13...)
	slices.SortFunc(cols, func(a, b FocusColumn) int { return cmp.Compare(a.Name, b.Name) })
	return cols
}()

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

	// Split cost allocation (FOCUS 1.3). The origin charge of a row is its
	// charge without the hour: one day of one gateway endpoint × model × SKU
	// × price, as billed. OriginMicros is its billed cost, Split says
	// whether any of its hours had gateway usage to split it over (an origin
	// with none stays whole, a no_usage row with no allocation), RatioPico is
	// the row's share of the origin in 1e-12 units (the shares of an origin's
	// rows sum to exactly 1e12; 0 when the origin nets to zero), ListMicros
	// is the list-price cost of the row's invocations (the weights) and Basis
	// the weights that split the origin's hours: list_cost, tokens or equal,
	// joined with + when its hours differ.
	OriginMicros, RatioPico, WeightListMicros int64
	Split                                     bool
	Basis                                     string

	cloud, chargeModel, prices string // charge attributes that only order rows
	group                      int    // the origin charge, while ratios are computed
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
	groupBasis  []uint8 // per charge group, a bit per chargeback.Basis of its hours
}

type focusAcc struct {
	chargeGroup, charge int
	item                int // a row of the item group; -1 for no usage
	billed, list        int64
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
	fa.groupBasis = make([]uint8, len(groups))
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
	a.list += int64(math.Round(r.costUSD * 1e6))
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

// basis records the weights that split charge j.
func (fa *focusAgg) basis(j int, b chargeback.Basis) {
	if b != chargeback.BasisNone {
		fa.groupBasis[fa.chargeGroup[j]] |= 1 << b
	}
}

// basisName names a charge group's bases: one, or several joined with +.
func basisName(mask uint8) string {
	var names []string
	for _, b := range []chargeback.Basis{chargeback.BasisListCost, chargeback.BasisTokens, chargeback.BasisEqual} {
		if mask&(1<<b) != 0 {
			names = append(names, b.String())
		}
	}
	return strings.Join(names, "+")
}

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
			WeightListMicros: a.list, group: a.chargeGroup,
			Split: fa.groupBasis[a.chargeGroup] != 0, Basis: basisName(fa.groupBasis[a.chargeGroup]),
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
	splitRatios(out)
	return out
}

// splitRatios sets each row's origin charge cost and its share of it. The
// shares are rounded to 1e-12 preserving their sum, so an origin's shares
// add up to exactly 1 (FOCUS 1.3: "The sum of ... AllocatedRatio across all
// allocated charges related to a single origin charge MUST be equal to 1").
// Ties go to the earlier row in the export's order, so the output is stable.
func splitRatios(rows []FocusRow) {
	byGroup := map[int][]int{}
	for i := range rows {
		byGroup[rows[i].group] = append(byGroup[rows[i].group], i)
	}
	for _, idx := range byGroup {
		var origin int64
		for _, i := range idx {
			origin += rows[i].BilledMicros
		}
		for _, i := range idx {
			rows[i].OriginMicros = origin
		}
		if origin == 0 {
			continue // a charge that nets to zero has no shares
		}
		exact := make([]*big.Rat, len(idx))
		for k, i := range idx {
			exact[k] = big.NewRat(rows[i].BilledMicros, origin)
		}
		pico, err := chargeback.RoundPreservingSum(exact, 1_000_000_000_000)
		if err != nil {
			continue // cannot happen: every share fits; the ratio stays 0
		}
		for k, i := range idx {
			rows[i].RatioPico = pico[k]
		}
	}
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

// FocusAllocatedMethodID names obolus's split cost allocation method in
// AllocatedMethodId; docs/reports.md (Bill-reconciled allocation) documents
// it, as FOCUS 1.3 asks: "documentation of a split cost allocation method
// MUST make reference to a single AllocatedMethodId value".
const FocusAllocatedMethodID = "obolus-bill-share-by-list-cost-per-hour-endpoint-model"

// focusAllocation are the FOCUS 1.3 columns of a row: the split cost
// allocation of its origin charge, and the provider names.
func focusAllocation(f *FocusRow) map[string]any {
	v := map[string]any{
		"ServiceProviderName": "Databricks",
		"HostProviderName":    hostProvider(f.cloud),
	}
	if !f.Split {
		return v // no usage in the origin charge: nothing was split
	}
	v["AllocatedMethodId"] = FocusAllocatedMethodID
	if f.OriginMicros != 0 {
		v["AllocatedMethodDetails"] = allocationDetails(f)
	}
	if f.Method == MethodNoUsage || f.Method == schemas.MethodUnattributed {
		return v // the unallocated portion: no allocated resource
	}
	v["AllocatedResourceId"] = orNil(f.EndUser)
	v["AllocatedResourceName"] = orNil(f.EndUser)
	v["AllocatedTags"] = allocatedTags(f)
	return v
}

// allocationElement is one entry of AllocatedMethodDetails.Elements.
type allocationElement struct {
	AllocatedRatio json.Number  `json:"AllocatedRatio"`
	UsageUnit      string       `json:"UsageUnit,omitempty"`
	UsageQuantity  *json.Number `json:"UsageQuantity,omitempty"`
}

// allocationDetails is AllocatedMethodDetails: the row's share of its origin
// charge and, when one kind of weight split all of the origin's hours, the
// row's weight (list-price cost in USD, or tokens). x_ keys carry what the
// FOCUS keys cannot: the weights' basis and the grain the bill is split at.
func allocationDetails(f *FocusRow) string {
	el := allocationElement{AllocatedRatio: json.Number(chargeback.FormatFixed(f.RatioPico, 12))}
	var q json.Number
	switch f.Basis {
	case chargeback.BasisListCost.String():
		el.UsageUnit, q = "USD", json.Number(chargeback.FormatFixed(f.WeightListMicros, 6))
	case chargeback.BasisTokens.String():
		el.UsageUnit, q = "Tokens", json.Number(fmt.Sprint(f.TotalTokens))
	}
	if el.UsageUnit != "" {
		el.UsageQuantity = &q
	}
	b, _ := json.Marshal(struct {
		Elements         []allocationElement `json:"Elements"`
		Basis            string              `json:"x_Basis"`
		Grain            string              `json:"x_Grain"`
		OriginChargeID   string              `json:"x_OriginChargeId"`
		OriginBilledCost json.Number         `json:"x_OriginBilledCost"`
	}{[]allocationElement{el}, f.Basis, "hour x gateway endpoint x model", f.originID(), json.Number(chargeback.FormatFixed(f.OriginMicros, 6))})
	return string(b)
}

// originID names the row's origin charge (the day's charge group): every
// attribute of the charge but the hour, hashed to a short stable id.
func (f *FocusRow) originID() string {
	h := sha256.Sum256([]byte(strings.Join([]string{f.ChargePeriodStart.Format(csvTime), f.BillingAccountID, f.Workspace,
		f.ResourceID, f.chargeModel, f.SKU, f.cloud, f.Unit, f.Currency, f.prices, f.Product}, "\x00")))
	return hex.EncodeToString(h[:8])
}

// allocatedTags are the tags of the end user the cost is allocated to: what
// obolus attributed with it. Keys carry obolus's prefix (FOCUS 1.3: data
// generator-defined tag keys "MUST be prefixed with a predetermined, data
// generator-specified tag key prefix"); none repeats a key of Tags.
func allocatedTags(f *FocusRow) string {
	tags := map[string]string{}
	for k, v := range map[string]string{"obolus/team": f.Team, "obolus/cost_center": f.CostCenter,
		"obolus/agent_endpoint": f.Agent, "obolus/match_method": f.Method} {
		if v != "" {
			tags[k] = v
		}
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

// hostProvider names the cloud a Databricks workspace runs on: the host
// provider the customer chose. Without a cloud, Databricks itself (FOCUS
// 1.3: HostProviderName "MAY equal ServiceProviderName when the service
// provider does not provide visibility into the underlying hosting provider").
func hostProvider(cloud string) string {
	switch strings.ToUpper(cloud) {
	case "AWS":
		return "Amazon Web Services"
	case "AZURE":
		return "Microsoft Azure"
	case "GCP":
		return "Google Cloud"
	}
	return "Databricks"
}

// focusTable lays the rows out in the FOCUS columns of the report's
// version, then the x_ columns.
func (r *Report) focusTable() (*table, error) {
	spec, err := FocusColumnsFor(r.FocusVersion)
	if err != nil {
		return nil, err
	}
	cols := append(slices.Clone(spec), FocusExtensionColumns...)
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
		if r.FocusVersion != Focus12 {
			maps.Copy(v, focusAllocation(f))
		}
		row := make([]any, len(cols))
		for k, c := range cols {
			row[k] = v[c.Name]
		}
		t.rows = append(t.rows, row)
	}
	return t, nil
}

func (t *table) header() []string {
	out := make([]string, len(t.cols))
	for i, c := range t.cols {
		out[i] = c.name
	}
	return out
}

// cells are the table's values as the raw CSV writes them, "" for null.
func (t *table) cells() [][]string {
	out := make([][]string, len(t.rows))
	for r, row := range t.rows {
		rec := make([]string, len(row))
		for i, v := range row {
			switch v := v.(type) {
			case string:
				rec[i] = v
			case int64:
				rec[i] = fmt.Sprint(v)
			case time.Time:
				rec[i] = v.UTC().Format(csvTime)
			}
		}
		out[r] = rec
	}
	return out
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
	t, err := r.checkedFocusTable()
	if err != nil {
		return err
	}
	return t.writeCSV(w, r.RawCSV)
}

// WriteFocusParquet writes the FOCUS export as Parquet: Decimal columns as
// DECIMAL(38,18), DateTime as UTC timestamps, String and JSON as strings.
func (r *Report) WriteFocusParquet(w io.Writer) error {
	if err := r.needBilling("FOCUS"); err != nil {
		return err
	}
	t, err := r.checkedFocusTable()
	if err != nil {
		return err
	}
	return t.writeParquet(w)
}

// checkedFocusTable builds the FOCUS table and checks it against the rules
// of its version (focusrules.go) before anything is written: an export that
// breaks the specification is an error, not a file.
func (r *Report) checkedFocusTable() (*table, error) {
	t, err := r.focusTable()
	if err != nil {
		return nil, err
	}
	if errs := CheckFocus(r.FocusVersion, t.header(), t.cells()); len(errs) > 0 {
		return nil, fmt.Errorf("report: FOCUS %s export breaks %d rule(s), first: %w", r.focusVersion(), len(errs), errs[0])
	}
	return t, nil
}

func (r *Report) focusVersion() string {
	if r.FocusVersion == "" {
		return DefaultFocusVersion
	}
	return r.FocusVersion
}

func (r *Report) needBilling(what string) error {
	if !r.Billing {
		return fmt.Errorf("report: %s export needs billing data for %s: load system.billing.usage and list_prices (--billing-usage, --list-prices) first", what, r.Period.Label)
	}
	return nil
}
