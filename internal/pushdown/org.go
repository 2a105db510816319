package pushdown

import "github.com/obolus/obolus/enrich"

// OrgEntries reads an org directory file for the org table of pushdown mode,
// through the engine's own loader, so both modes place every user alike.
func OrgEntries(path string) ([]enrich.OrgEntry, error) {
	dir, err := enrich.LoadDirectory(path)
	if err != nil {
		return nil, err
	}
	return dir.Entries(), nil
}
