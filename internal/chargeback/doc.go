// Package chargeback is the money arithmetic of obolus reports: it spreads each
// hour's billed cost over the invocations that caused it, exactly, in integer micro-dollars.
package chargeback
