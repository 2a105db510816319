package enrich

import (
	"os"
	"path/filepath"
	"testing"
)

// A byte order mark, as spreadsheets save CSV, is not part of the first
// column's name.
func TestLoadDirectoryCSVWithBOM(t *testing.T) {
	path := filepath.Join(t.TempDir(), "org.csv")
	if err := os.WriteFile(path, []byte("\ufeffend_user,team,cost_center\nana@example.com,search,CC-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDirectory(path)
	if err != nil {
		t.Fatal(err)
	}
	if e := d.Entries(); len(e) != 1 || e[0].EndUser != "ana@example.com" || e[0].Team != "search" {
		t.Errorf("entries %+v", e)
	}
}
