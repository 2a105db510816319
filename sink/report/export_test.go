package report

// For the external tests (package report_test), which import sink/storetest:
// storetest imports this package, so an internal test cannot.
var (
	FixtureStore = fixtureStore
	MustPeriod   = mustPeriod
)
