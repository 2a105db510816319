package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/obolus/obolus/internal/chargeback"
	"github.com/obolus/obolus/schemas"
)

// The FOCUS validator published by the FinOps Foundation cannot be installed
// here, so the export is checked against the rules below, kept as a table:
// each rule quotes the specification's wording and says where it is from.
//
// Sources, all in the FOCUS_Spec repository (github.com/FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec):
//   - 1.2 rules: tag v1.2, specification/columns/<column>.md and
//     specification/attributes/*.md.
//   - 1.3 rules: specification/datasets/cost_and_usage/columns/<column>.md at
//     the commits named in each rule. These are working-draft revisions of
//     the 1.3 text, not the ratified 1.3 document, which could not be read
//     here: drafts say "provider-calculated" in some revisions and "data
//     generator-calculated" in others. Rules whose wording differs between
//     the revisions read are marked Unconfirmed; the check follows the
//     reading both revisions share.
//   - The 1.3 column set is the list of specification/datasets/cost_and_usage/columns/columns.mdpp
//     at 02645d23d2d4dceb005c685080037febee890dea, plus ProviderName and
//     PublisherName, deprecated in 1.3 but still Mandatory
//     (providername.md at 0cfefac7168af3dd65057f7a258859fc76c8f305: "Deprecated (version) 1.3").

// FocusRule is one rule an export must keep.
type FocusRule struct {
	ID string
	// Since is the first FOCUS version with the rule; it applies to later ones too.
	Since string
	// Spec is the specification's wording the rule checks.
	Spec string
	// Source is the file (and tag or commit) the wording is from.
	Source string
	// Unconfirmed: the wording could not be confirmed in the ratified text.
	Unconfirmed bool
	// row checks one row; dataset checks the whole export. A rule has one.
	row     func(r focusRecord) error
	dataset func(rows []focusRecord) error
}

// focusRecord is one exported row: its cells, read by column name, "" for
// null (FOCUS forbids empty strings: null_handling.md "Columns MUST NOT use
// empty strings ... to represent a null"). It parses AllocatedMethodDetails
// once for the rules that read it.
type focusRecord struct {
	idx     map[string]int // shared by every row
	cells   []string
	details *parsedDetails
}

type parsedDetails struct {
	done bool
	d    methodDetails
	top  map[string]json.RawMessage
	err  error
}

func (r focusRecord) get(col string) string {
	if i, ok := r.idx[col]; ok {
		return r.cells[i]
	}
	return ""
}

// methodDetails parses the row's AllocatedMethodDetails, once.
func (r focusRecord) methodDetails() (methodDetails, map[string]json.RawMessage, error) {
	if !r.details.done {
		r.details.done = true
		r.details.d, r.details.top, r.details.err = parseDetails(r.get("AllocatedMethodDetails"))
	}
	return r.details.d, r.details.top, r.details.err
}

const (
	src12        = "FOCUS_Spec@v1.2 specification/"
	src13Columns = "FOCUS_Spec specification/datasets/cost_and_usage/columns/"
)

// focusRules are the rules of the column table (presence, type, nullability)
// that need no wording of their own, then the column-specific ones.
var focusRules = []FocusRule{
	{ID: "columns.present", Since: Focus12,
		Spec:   `"<Column> MUST be present in a FOCUS dataset" (every Mandatory column; Conditional columns "when the provider supports" the feature: obolus writes all of them)`,
		Source: src12 + "columns/*.md; " + src13Columns + "columns.mdpp@02645d23d2d4dceb005c685080037febee890dea"},
	{ID: "columns.custom-prefix", Since: Focus12,
		Spec:   "Custom columns MUST be prefixed with a consistent `x_` prefix to identify them as external, custom columns",
		Source: src12 + "attributes/column_handling.md"},
	{ID: "null.not-allowed", Since: Focus12,
		Spec:   `Content Constraints "Allows nulls: False" / "<Column> MUST NOT be null"; and "Columns MUST NOT use empty strings or placeholder values ... to represent a null"`,
		Source: src12 + "columns/*.md, attributes/null_handling.md"},
	{ID: "type.decimal", Since: Focus12,
		Spec:   `"Numeric values MUST be expressed as an integer value, a decimal value, or a value expressed in scientific notation" and "MUST NOT include a character to represent a sign for a positive value"`,
		Source: src12 + "attributes/numeric_format.md"},
	{ID: "type.datetime", Since: Focus12,
		Spec:   `"Date/time values MUST be in UTC" ... "MUST be represented in the extended ISO 8601 format with UTC offset ('YYYY-MM-DDTHH:mm:ssZ')"`,
		Source: src12 + "attributes/datetime_format.md"},
	{ID: "type.key-value", Since: Focus12,
		Spec:   `"Key-Value Format columns MUST contain a serialized JSON string, consistent with the ECMA 404 definition of an object"; "Values in a key-value pair MUST NOT be an object or an array"`,
		Source: src12 + "attributes/key_value_format.md (Tags, SkuPriceDetails; 1.3: AllocatedTags, ContractApplied)"},
	{ID: "BillingCurrency.iso4217", Since: Focus12,
		Spec:   `"Currency-related columns MUST be represented as a three-letter alphabetic code as dictated in the governing document ISO 4217:2015"`,
		Source: src12 + "attributes/currency_format.md",
		row:    matches("BillingCurrency", regexp.MustCompile(`^[A-Z]{3}$`))},
	{ID: "ChargeCategory.allowed", Since: Focus12,
		Spec:   `"ChargeCategory MUST be one of the allowed values" (Usage, Purchase, Tax, Credit, Adjustment)`,
		Source: src12 + "columns/chargecategory.md",
		row:    oneOf("ChargeCategory", false, "Usage", "Purchase", "Tax", "Credit", "Adjustment")},
	{ID: "ChargeFrequency.allowed", Since: Focus12,
		Spec:   `"ChargeFrequency MUST be one of the allowed values" (One-Time, Recurring, Usage-Based)`,
		Source: src12 + "columns/chargefrequency.md",
		row:    oneOf("ChargeFrequency", false, "One-Time", "Recurring", "Usage-Based")},
	{ID: "ChargeClass.allowed", Since: Focus12,
		Spec:   `"ChargeClass MUST be "Correction" when ChargeClass is not null"`,
		Source: src12 + "columns/chargeclass.md",
		row:    oneOf("ChargeClass", true, "Correction")},
	{ID: "PricingCategory.allowed", Since: Focus12,
		Spec:   `"PricingCategory MUST be one of the allowed values" (Standard, Dynamic, Committed, Other); "MUST NOT be null when ChargeCategory is "Usage" or "Purchase" and ChargeClass is not "Correction""`,
		Source: src12 + "columns/pricingcategory.md",
		row:    pricingCategory},
	{ID: "ServiceCategory.allowed", Since: Focus12,
		Spec:   `"ServiceCategory MUST be one of the allowed values"`,
		Source: src12 + "columns/servicecategory.md",
		row: oneOf("ServiceCategory", false, "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
			"Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things", "Management and Governance", "Media",
			"Migration", "Mobile", "Networking", "Security", "Storage", "Web", "Other")},
	{ID: "ServiceSubcategory.parent", Since: Focus12,
		Spec:   `"ServiceSubcategory MUST have one and only one parent ServiceCategory as specified in the allowed values" (checked for AI and Machine Learning, the only category obolus writes)`,
		Source: src12 + "columns/servicesubcategory.md",
		row:    serviceSubcategory},
	{ID: "ChargePeriod.within-billing-period", Since: Focus12,
		Spec:   `ChargePeriodStart/End: the charge period is inclusive of ChargePeriodStart and exclusive of ChargePeriodEnd; obolus checks it lies in the billing period. Unconfirmed: no single sentence of the specification was read that states the containment.`,
		Source: src12 + "columns/chargeperiodstart.md, chargeperiodend.md", Unconfirmed: true,
		row: chargePeriod},

	// FOCUS 1.3: split cost allocation.
	{ID: "AllocatedMethodId.with-allocation", Since: Focus13,
		Spec:   `"AllocatedMethodId MUST be null when a charge is not related to a provider-calculated split cost allocation" / "MUST NOT be null when a charge is related to" one: a row with an allocated resource, allocation details or allocated tags is related`,
		Source: src13Columns + "allocatedmethodid.md@0a167c5bb7f5438df595317c569d2ceac1085575", Unconfirmed: true,
		row: allocatedMethodID},
	{ID: "AllocatedResourceId.unallocated-portion", Since: Focus13,
		Spec:   `"AllocatedResourceId MUST be null when a charge represents the unallocated portion of the origin charge after split cost allocation" and "MUST NOT be null when a charge represents the allocated portion": obolus's unattributed and no_usage rows are the unallocated portion, its end users' rows the allocated one`,
		Source: src13Columns + "allocatedresourceid.md@00d4b9bd90610a7e09599528536c8c1fc03b4772",
		row:    allocatedResourceID},
	{ID: "AllocatedResourceName.with-id", Since: Focus13,
		Spec:   `"AllocatedResourceName MUST be null when AllocatedResourceId is null" and "MUST NOT be null when AllocatedResourceId is not null"`,
		Source: src13Columns + "allocatedresourcename.md@0da1788ec647b3e261111c887973eafb744ff372",
		row:    allocatedResourceName},
	{ID: "AllocatedMethodDetails.object", Since: Focus13,
		Spec:   `"a valid JSON object with a top level key of Elements containing an Array of entry objects"; AllocatedRatio Numeric, required; UsageUnit "must be present if Usage Quantity is provided"; custom keys "prefixed with "x_""`,
		Source: src13Columns + "allocatedmethoddetails.md@0b91cb13c227dc7a12901789706902100bad187b", Unconfirmed: true,
		row: allocatedMethodDetails},
	{ID: "AllocatedMethodDetails.ratios-sum-to-one", Since: Focus13,
		Spec:   `"The sum of AllocatedMethodDetailsObject.Elements[*].AllocatedRatio across all allocated charges related to a single origin charge MUST be equal to 1 (100%)" (origin charges named by obolus's x_OriginChargeId key)`,
		Source: src13Columns + "allocatedmethoddetails.md@0b91cb13c227dc7a12901789706902100bad187b", Unconfirmed: true,
		dataset: ratiosSumToOne},
	{ID: "AllocatedTags.distinct-from-tags", Since: Focus13,
		Spec:   `"AllocatedTags MUST be null when a charge is not related to a data generator-calculated split cost allocation"; "AllocatedTags MUST NOT include resource tags already present in Tags"`,
		Source: src13Columns + "allocatedtags.md@005e8b61f548e30fc0ff74c45be6a44243a13c4c", Unconfirmed: true,
		row: allocatedTagsRule},
	{ID: "HostProviderName.not-null", Since: Focus13,
		Spec:   `"HostProviderName MUST NOT be null" (its Content Constraints table says "Allows nulls: True"; the requirement is kept)`,
		Source: src13Columns + "hostprovidername.md@03c652c35e241d7b546b77c7b07982a29376a7ea", Unconfirmed: true},
	{ID: "ServiceProviderName.not-null", Since: Focus13,
		Spec:   `"ServiceProviderName MUST be present in a FOCUS dataset" and "MUST NOT be null"`,
		Source: src13Columns + "serviceprovidername.md@085459e3bc9c6ea0d4607b6bd423a98604802219"},
	{ID: "ContractApplied.null-without-contract", Since: Focus13,
		Spec:   `"ContractApplied MUST be null when ContractID is null": obolus writes no contract commitments (the system tables have none), so ContractApplied is null`,
		Source: src13Columns + "contractapplied.md@096c1cb5b97ea5e3c514138f2d705eb3cc93654b",
		row:    isNull("ContractApplied")},
}

// FocusRules are the rules of a version, for documentation and tests.
func FocusRules(version string) []FocusRule {
	var out []FocusRule
	for _, r := range focusRules {
		if version >= r.Since {
			out = append(out, r)
		}
	}
	return out
}

// CheckFocus checks an export (header and rows of cells, "" for null)
// against the column table and rules of a FOCUS version. It returns every
// broken rule, each naming the row, column and rule.
func CheckFocus(version string, header []string, rows [][]string) []error {
	version, err := ParseFocusVersion(version)
	if err != nil {
		return []error{err}
	}
	spec, _ := FocusColumnsFor(version)
	var errs []error
	want := append(slices.Clone(spec), FocusExtensionColumns...)
	for i, c := range want {
		if i >= len(header) || header[i] != c.Name {
			errs = append(errs, fmt.Errorf("columns.present: column %d is %q, want %s", i+1, at(header, i), c.Name))
		}
	}
	for _, h := range header[min(len(want), len(header)):] {
		errs = append(errs, fmt.Errorf("columns.custom-prefix: unexpected column %q", h))
	}
	for _, c := range FocusExtensionColumns {
		if !strings.HasPrefix(c.Name, "x_") {
			errs = append(errs, fmt.Errorf("columns.custom-prefix: %s lacks the x_ prefix", c.Name))
		}
	}
	if len(errs) > 0 {
		return errs // cells cannot be read by name
	}
	rules := FocusRules(version)
	idx := make(map[string]int, len(want))
	for i, c := range want {
		idx[c.Name] = i
	}
	recs := make([]focusRecord, 0, len(rows))
	for n, row := range rows {
		if len(row) != len(want) {
			errs = append(errs, fmt.Errorf("row %d: %d cells, want %d", n+1, len(row), len(want)))
			continue
		}
		rec := focusRecord{idx: idx, cells: row, details: &parsedDetails{}}
		recs = append(recs, rec)
		for i, c := range want {
			if c.Name == "AllocatedMethodDetails" {
				continue // a JSON object with Elements: its own rule parses it once
			}
			if err := checkCell(c, row[i]); err != nil {
				errs = append(errs, fmt.Errorf("row %d %s: %w", n+1, c.Name, err))
			}
		}
		for _, r := range rules {
			if r.row == nil {
				continue
			}
			if err := r.row(rec); err != nil {
				errs = append(errs, fmt.Errorf("row %d: %s: %w", n+1, r.ID, err))
			}
		}
	}
	for _, r := range rules {
		if r.dataset != nil {
			if err := r.dataset(recs); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", r.ID, err))
			}
		}
	}
	return errs
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

var keyValueColumns = map[string]bool{"Tags": true, "SkuPriceDetails": true, "AllocatedTags": true, "ContractApplied": true}

// checkCell applies the column table: nullability and data type.
func checkCell(c FocusColumn, v string) error {
	if v == "" {
		if !c.Nullable {
			return errors.New("null.not-allowed: null, but the column allows no nulls")
		}
		return nil
	}
	switch c.Type {
	case FocusDecimal:
		if !numeric(v) {
			return fmt.Errorf("type.decimal: %q is not an integer, a decimal or E notation", v)
		}
	case FocusDateTime:
		if _, err := time.Parse("2006-01-02T15:04:05Z", v); err != nil {
			return fmt.Errorf("type.datetime: %q is not YYYY-MM-DDTHH:mm:ssZ", v)
		}
	case FocusJSON:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(v), &obj); err != nil {
			return fmt.Errorf("type.key-value: %q is not a JSON object", v)
		}
		if keyValueColumns[c.Name] {
			for k, x := range obj {
				if len(x) > 0 && (x[0] == '{' || x[0] == '[') {
					return fmt.Errorf("type.key-value: key %q holds an object or array", k)
				}
			}
		}
	}
	return nil
}

// numeric is NumericFormat: an optional minus (never a plus), digits, an
// optional fraction, an optional E exponent whose sign is only a minus.
func numeric(v string) bool {
	i := 0
	digits := func() bool {
		j := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(v) && v[i] == '-' {
		i++
	}
	if !digits() {
		return false
	}
	if i < len(v) && v[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && v[i] == '-' {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(v)
}

func matches(col string, re *regexp.Regexp) func(focusRecord) error {
	return func(r focusRecord) error {
		if v := r.get(col); v != "" && !re.MatchString(v) {
			return fmt.Errorf("%s %q does not match %s", col, v, re)
		}
		return nil
	}
}

func oneOf(col string, nullable bool, allowed ...string) func(focusRecord) error {
	return func(r focusRecord) error {
		v := r.get(col)
		if (v == "" && nullable) || slices.Contains(allowed, v) {
			return nil
		}
		return fmt.Errorf("%s %q is not one of %s", col, v, strings.Join(allowed, ", "))
	}
}

func isNull(col string) func(focusRecord) error {
	return func(r focusRecord) error {
		if r.get(col) != "" {
			return fmt.Errorf("%s is %q, want null", col, r.get(col))
		}
		return nil
	}
}

func pricingCategory(r focusRecord) error {
	if err := oneOf("PricingCategory", true, "Standard", "Dynamic", "Committed", "Other")(r); err != nil {
		return err
	}
	cc := r.get("ChargeCategory")
	if r.get("PricingCategory") == "" && (cc == "Usage" || cc == "Purchase") && r.get("ChargeClass") != "Correction" {
		return fmt.Errorf("PricingCategory is null on a %s charge", cc)
	}
	return nil
}

func serviceSubcategory(r focusRecord) error {
	if r.get("ServiceCategory") != "AI and Machine Learning" || r.get("ServiceSubcategory") == "" {
		return nil
	}
	return oneOf("ServiceSubcategory", false, "AI Platforms", "Bots", "Generative AI", "Machine Learning",
		"Natural Language Processing", "Other (AI and Machine Learning)")(r)
}

func chargePeriod(r focusRecord) error {
	var t [4]time.Time
	for i, c := range []string{"ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"} {
		var err error
		if t[i], err = time.Parse(time.RFC3339, r.get(c)); err != nil {
			return fmt.Errorf("%s %q: %w", c, r.get(c), err)
		}
	}
	if !t[1].After(t[0]) || t[0].Before(t[2]) || t[1].After(t[3]) {
		return fmt.Errorf("charge period [%s, %s) outside billing period [%s, %s)", r.get("ChargePeriodStart"), r.get("ChargePeriodEnd"), r.get("BillingPeriodStart"), r.get("BillingPeriodEnd"))
	}
	return nil
}

func allocatedMethodID(r focusRecord) error {
	if r.get("AllocatedMethodId") != "" {
		return nil
	}
	for _, c := range []string{"AllocatedResourceId", "AllocatedMethodDetails", "AllocatedTags"} {
		if r.get(c) != "" {
			return fmt.Errorf("AllocatedMethodId is null, but %s is set: the charge is a split cost allocation", c)
		}
	}
	return nil
}

func allocatedResourceID(r focusRecord) error {
	unallocated := r.get("x_MatchMethod") == schemas.MethodUnattributed || r.get("x_MatchMethod") == MethodNoUsage
	switch id := r.get("AllocatedResourceId"); {
	case unallocated && id != "":
		return fmt.Errorf("the unallocated portion (%s) names allocated resource %q", r.get("x_MatchMethod"), id)
	case !unallocated && r.get("AllocatedMethodId") != "" && id == "":
		return errors.New("an allocated portion names no allocated resource")
	}
	return nil
}

func allocatedResourceName(r focusRecord) error {
	if (r.get("AllocatedResourceId") == "") != (r.get("AllocatedResourceName") == "") {
		return fmt.Errorf("AllocatedResourceId %q and AllocatedResourceName %q: both null or neither", r.get("AllocatedResourceId"), r.get("AllocatedResourceName"))
	}
	return nil
}

// methodDetails is the part of AllocatedMethodDetails the rules read.
type methodDetails struct {
	Elements []map[string]json.RawMessage `json:"Elements"`
	Origin   string                       `json:"x_OriginChargeId"`
}

func parseDetails(v string) (methodDetails, map[string]json.RawMessage, error) {
	var d methodDetails
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &top); err != nil {
		return d, nil, fmt.Errorf("AllocatedMethodDetails %q: %w", v, err)
	}
	if err := json.Unmarshal([]byte(v), &d); err != nil {
		return d, nil, fmt.Errorf("AllocatedMethodDetails %q: %w", v, err)
	}
	return d, top, nil
}

func allocatedMethodDetails(r focusRecord) error {
	v := r.get("AllocatedMethodDetails")
	if v == "" {
		return nil
	}
	d, top, err := r.methodDetails()
	if err != nil {
		return err
	}
	if _, ok := top["Elements"]; !ok || len(d.Elements) == 0 {
		return errors.New("AllocatedMethodDetails has no Elements")
	}
	for k := range top {
		if k != "Elements" && !strings.HasPrefix(k, "x_") {
			return fmt.Errorf("AllocatedMethodDetails: top-level key %q is neither Elements nor x_-prefixed", k)
		}
	}
	for i, el := range d.Elements {
		ratio, ok := el["AllocatedRatio"]
		if !ok {
			return fmt.Errorf("AllocatedMethodDetails.Elements[%d] has no AllocatedRatio", i)
		}
		var n json.Number
		if err := json.Unmarshal(ratio, &n); err != nil {
			return fmt.Errorf("AllocatedMethodDetails.Elements[%d].AllocatedRatio %s is not a number", i, ratio)
		}
		_, unit := el["UsageUnit"]
		if _, q := el["UsageQuantity"]; q && !unit {
			return fmt.Errorf("AllocatedMethodDetails.Elements[%d]: UsageQuantity without UsageUnit", i)
		}
		for k := range el {
			switch k {
			case "AllocatedRatio", "UsageUnit", "UsageQuantity":
			default:
				if !strings.HasPrefix(k, "x_") {
					return fmt.Errorf("AllocatedMethodDetails.Elements[%d]: key %q is neither FOCUS-defined nor x_-prefixed", i, k)
				}
			}
		}
	}
	return nil
}

// ratiosSumToOne sums AllocatedRatio per origin charge, exactly.
func ratiosSumToOne(rows []focusRecord) error {
	sums := map[string]*big.Rat{}
	var order []string
	for _, r := range rows {
		if r.get("AllocatedMethodDetails") == "" {
			continue
		}
		d, _, err := r.methodDetails()
		if err != nil || d.Origin == "" {
			return fmt.Errorf("AllocatedMethodDetails without x_OriginChargeId: %q", r.get("AllocatedMethodDetails"))
		}
		s, ok := sums[d.Origin]
		if !ok {
			s = new(big.Rat)
			sums[d.Origin] = s
			order = append(order, d.Origin)
		}
		for _, el := range d.Elements {
			var n json.Number
			_ = json.Unmarshal(el["AllocatedRatio"], &n)
			x, err := chargeback.ParseDecimal(n.String())
			if err != nil {
				return fmt.Errorf("origin %s: AllocatedRatio %q: %w", d.Origin, n, err)
			}
			s.Add(s, x)
		}
	}
	for _, o := range order {
		if sums[o].Cmp(big.NewRat(1, 1)) != 0 {
			return fmt.Errorf("origin charge %s: AllocatedRatio sums to %s, not 1", o, sums[o].FloatString(12))
		}
	}
	return nil
}

func allocatedTagsRule(r focusRecord) error {
	v := r.get("AllocatedTags")
	if v == "" {
		return nil
	}
	var at, tags map[string]any
	if err := json.Unmarshal([]byte(v), &at); err != nil {
		return fmt.Errorf("AllocatedTags %q: %w", v, err)
	}
	if t := r.get("Tags"); t != "" {
		if err := json.Unmarshal([]byte(t), &tags); err != nil {
			return fmt.Errorf("column Tags %q: %w", t, err)
		}
	}
	for k := range at {
		if _, dup := tags[k]; dup {
			return fmt.Errorf("AllocatedTags repeats tag %q of Tags", k)
		}
	}
	return nil
}
