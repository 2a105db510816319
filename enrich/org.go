package enrich

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/obolus/obolus/schemas"
)

// OrgEntry places an end user in the organisation.
type OrgEntry struct {
	EndUser    string `yaml:"end_user"`
	Team       string `yaml:"team"`
	CostCenter string `yaml:"cost_center"`
}

// Directory maps end users to teams and cost centres. Users it does not know
// land in schemas.UnassignedTeam, so unknown spend is visible, never dropped.
type Directory struct {
	byUser map[string]OrgEntry
}

// NewDirectory builds a directory; a user listed twice is an error, since
// which line wins would otherwise be an accident of file order.
func NewDirectory(entries []OrgEntry) (*Directory, error) {
	d := &Directory{byUser: make(map[string]OrgEntry, len(entries))}
	for i, e := range entries {
		k := userKey(e.EndUser)
		if k == "" {
			return nil, fmt.Errorf("entry %d: end_user is empty", i+1)
		}
		if e.Team == "" {
			return nil, fmt.Errorf("entry %d (%s): team is empty", i+1, e.EndUser)
		}
		if _, dup := d.byUser[k]; dup {
			return nil, fmt.Errorf("entry %d: end_user %q is listed twice", i+1, e.EndUser)
		}
		d.byUser[k] = e
	}
	return d, nil
}

// Entries returns the directory's entries sorted by end user, for stores
// that apply the directory in SQL (pushdown mode).
func (d *Directory) Entries() []OrgEntry {
	if d == nil {
		return nil
	}
	out := make([]OrgEntry, 0, len(d.byUser))
	for _, e := range d.byUser {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b OrgEntry) int { return strings.Compare(userKey(a.EndUser), userKey(b.EndUser)) })
	return out
}

// Len is the number of users the directory knows.
func (d *Directory) Len() int { return len(d.byUser) }

// Lookup returns the user's team and cost centre; unknown users (and the
// empty user) get schemas.UnassignedTeam and no cost centre.
func (d *Directory) Lookup(endUser string) (team, costCenter string) {
	if d != nil {
		if e, ok := d.byUser[userKey(endUser)]; ok {
			return e.Team, e.CostCenter
		}
	}
	return schemas.UnassignedTeam, ""
}

// Emails are case-insensitive in practice; identities from different systems
// disagree on case.
func userKey(u string) string { return strings.ToLower(strings.TrimSpace(u)) }

// LoadDirectory reads an org directory from a CSV file (header
// end_user,team,cost_center) or a YAML file (a list of entries).
func LoadDirectory(path string) (*Directory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read org directory: %w", err)
	}
	defer f.Close()
	var entries []OrgEntry
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		entries, err = parseOrgCSV(f)
	case ".yaml", ".yml":
		dec := yaml.NewDecoder(f)
		dec.KnownFields(true)
		err = dec.Decode(&entries)
		if errors.Is(err, io.EOF) {
			err = nil
		}
	default:
		return nil, fmt.Errorf("org directory %s: unknown format; use a .csv or .yaml file", path)
	}
	if err != nil {
		return nil, fmt.Errorf("org directory %s: %w", path, err)
	}
	d, err := NewDirectory(entries)
	if err != nil {
		return nil, fmt.Errorf("org directory %s: %w", path, err)
	}
	return d, nil
}

func parseOrgCSV(r io.Reader) ([]OrgEntry, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if len(header) > 0 {
		// Spreadsheets save CSV with a byte order mark, which would
		// otherwise be part of the first column's name.
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, need := range []string{"end_user", "team"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("header: column %q is missing (want end_user,team,cost_center)", need)
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []OrgEntry
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, OrgEntry{EndUser: get(rec, "end_user"), Team: get(rec, "team"), CostCenter: get(rec, "cost_center")})
	}
}
