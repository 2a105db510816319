package schemas

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
)

// StoreVersion is the layout of the store's tables this build writes. A
// store records its version in store_meta; an older store is migrated (see
// Migrate), a newer one refused, because this build would write its
// tables wrongly.
//
// Version 1 is every store made before store_meta existed.
const StoreVersion = 6

// StoreVersionKey is the store_meta row holding the version.
const StoreVersionKey = "schema_version"

// ErrStoreVersion marks a store this build cannot use as it is: newer than
// StoreVersion, of an unknown version, or (opened read-only) older.
var ErrStoreVersion = errors.New("store schema version")

// CheckStoreVersion says whether a store at version v can be used, given
// whether it may be migrated: v 0 is a new store.
func CheckStoreVersion(where string, v int, canMigrate bool) error {
	switch {
	case v > StoreVersion:
		return fmt.Errorf("%w: %s is at version %d, newer than this obolus (version %d): upgrade obolus; this one would write its tables wrongly",
			ErrStoreVersion, where, v, StoreVersion)
	case v < 0:
		return fmt.Errorf("%w: %s records an unknown version", ErrStoreVersion, where)
	case v > 0 && v < StoreVersion && !canMigrate:
		return fmt.Errorf("%w: %s is at version %d, older than this obolus (version %d): run obolus init (or a batch run) to migrate it",
			ErrStoreVersion, where, v, StoreVersion)
	}
	return nil
}

// ParseStoreVersion reads store_meta's schema_version value; a value that
// is not a positive integer comes back -1.
func ParseStoreVersion(value string) int {
	v, err := strconv.Atoi(value)
	if err != nil || v < 1 {
		return -1
	}
	return v
}

// A migration lives in migrations/<dialect>/NN_name.sql: it takes a store at
// version NN-1 to version NN.
var migrationFileName = regexp.MustCompile(`^([0-9]{2})_[a-z][a-z0-9_]*\.sql$`)

// migrations returns the statements that take a store of the dialect from
// version from to StoreVersion, oldest first.
func migrations(dialect string, from int) ([]Statement, error) {
	if !dialectName.MatchString(dialect) {
		return nil, fmt.Errorf("no migrations for dialect %q", dialect)
	}
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations of dialect %q: %w", dialect, err)
	}
	var out []Statement
	next := from + 1
	for _, e := range entries {
		m := migrationFileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s/%s is not named NN_name.sql", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v <= from {
			continue
		}
		if v != next {
			return nil, fmt.Errorf("no migration of dialect %s to version %d (next file is %s)", dialect, next, e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Statement{Name: e.Name(), SQL: string(b)})
		next++
	}
	if next != StoreVersion+1 {
		return nil, fmt.Errorf("no migration of dialect %s to version %d", dialect, next)
	}
	return out, nil
}

// Migrate checks that a store at version v, named where, can be used, and
// takes it to StoreVersion: each statement of each migration of the dialect
// goes to exec, oldest first. A new store (v 0) needs none.
func Migrate(dialect, where string, v int, exec func(stmt string) error) error {
	if err := CheckStoreVersion(where, v, true); err != nil {
		return err
	}
	if v == 0 || v == StoreVersion {
		return nil
	}
	steps, err := migrations(dialect, v)
	if err != nil {
		return err
	}
	for _, m := range steps {
		for _, part := range m.Parts() {
			if err := exec(part); err != nil {
				return fmt.Errorf("migrate %s from version %d (%s): %w", where, v, m.Name, err)
			}
		}
	}
	return nil
}
