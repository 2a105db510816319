package schemas

import "time"

// WriteStats says what a store's replace of attribution rows did. Every
// store fills Rows, Invocations and the stale counts; Inserted and Deleted
// are filled where the store can count them (the embedded store), Affected
// where it only knows their sum (a Delta MERGE).
type WriteStats struct {
	// Rows is the number of incoming rows, Invocations the distinct
	// invocation ids among them.
	Rows, Invocations int64
	// Inserted rows were written; Deleted stored rows were removed, either
	// replaced by incoming rows or no longer produced for the window.
	Inserted, Deleted int64
	// Affected is the store's count of rows inserted, updated or deleted.
	Affected int64
	// Stale incoming rows were not written, because the store already holds
	// their invocation at a higher version (the version guard);
	// StaleInvocations counts those invocations.
	Stale, StaleInvocations int64
}

// Run is one batch run: a row of the runs table.
type Run struct {
	RunID      string
	Job        string
	StartedAt  time.Time
	FinishedAt time.Time // zero while running
	WindowFrom time.Time
	WindowTo   time.Time

	RowsRead       int64
	OutsideWindow  int64
	Duplicates     int64
	DeadLettered   int64
	Attributed     int64
	Unattributed   int64
	InputTokensIn  int64
	TotalTokensIn  int64
	TotalTokensOut int64
	// Stale rows were not written: the store held their invocations
	// (StaleInvocations) at a higher version.
	Stale, StaleInvocations int64

	Status string // RunRunning, RunOK or RunFailed
	Error  string
}

// Run statuses.
const (
	RunRunning = "running"
	RunOK      = "ok"
	RunFailed  = "failed"
)
