package pushdown

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/obolus/obolus/enrich"
)

// OrgEntries reads the entries of an org directory file, for the org table
// of pushdown mode. enrich.LoadDirectory reads the same formats but keeps
// its entries to itself; the entries are checked against it, so both modes
// place every user alike.
func OrgEntries(path string) ([]enrich.OrgEntry, error) {
	dir, err := enrich.LoadDirectory(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read org directory: %w", err)
	}
	defer f.Close()
	var entries []enrich.OrgEntry
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		entries, err = orgCSV(f)
	default:
		dec := yaml.NewDecoder(f)
		dec.KnownFields(true)
		if err = dec.Decode(&entries); errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("org directory %s: %w", path, err)
	}
	if len(entries) != dir.Len() {
		return nil, fmt.Errorf("org directory %s: read %d entries, the engine %d", path, len(entries), dir.Len())
	}
	for _, e := range entries {
		if team, cc := dir.Lookup(e.EndUser); team != e.Team || cc != e.CostCenter {
			return nil, fmt.Errorf("org directory %s: entry %q reads as %s/%s, the engine has %s/%s", path, e.EndUser, e.Team, e.CostCenter, team, cc)
		}
	}
	return entries, nil
}

func orgCSV(r io.Reader) ([]enrich.OrgEntry, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []enrich.OrgEntry
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, enrich.OrgEntry{EndUser: get(rec, "end_user"), Team: get(rec, "team"), CostCenter: get(rec, "cost_center")})
	}
}
