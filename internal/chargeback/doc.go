// Package chargeback is the money arithmetic of obolus reports: it spreads each
// hour's billed cost over the invocations that caused it, exactly, in integer micro-dollars.
//
// Every amount is an int64 count of micro-units (millionths of the billing
// currency). Three roundings happen, each by the largest-remainder method so
// that parts always add up to their whole:
//
//  1. Bill to charges (RoundPreservingSum): each charge's exact cost (usage
//     quantity × unit price, decimals of up to 36 places) is floored to the
//     micro-unit; the exact total, rounded half away from zero, fixes how many
//     micro-units are left over, and they go one each to the charges with the
//     largest dropped fractions (ties: earlier charge). So the charges sum to
//     the bill, rounded once.
//  2. Charge to invocations (Allocate): within a charge's bucket (hour ×
//     gateway endpoint × model), item i gets floor(B·wᵢ/W) micro-units, where
//     wᵢ is its list-price cost and W the bucket's sum; the B − Σfloor
//     left-over units go one each to the items with the largest remainders
//     (B·wᵢ mod W; ties: earlier item). So the items sum to the charge
//     exactly. A charge whose bucket has no items is unallocated: the caller
//     reports it as its own line.
//  3. Micro-units to cents for display (RoundPreservingSum again), so the
//     lines of a printed table add up to its printed total.
//
// The package knows nothing of SQL or files; sink/report feeds it.
package chargeback
