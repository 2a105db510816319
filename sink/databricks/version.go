package databricks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	dbsqlerr "github.com/databricks/databricks-sql-go/errors"

	"github.com/obolus/obolus/schemas"
)

// sqlStateNotFound is the SQLSTATE of TABLE_OR_VIEW_NOT_FOUND.
const sqlStateNotFound = "42P01"

func notFound(err error) bool {
	var ee dbsqlerr.DBExecutionError
	return errors.As(err, &ee) && ee.SqlState() == sqlStateNotFound
}

// Version is the schema version the store records: 0 when the schema holds
// no obolus store, 1 for one made before store_meta existed, -1 for a value
// that is not a version.
func (s *Store) Version(ctx context.Context) (int, error) {
	var value string
	err := s.db.QueryRowContext(ctx, "SELECT value FROM "+s.Table("store_meta")+" WHERE name = ?", schemas.StoreVersionKey).Scan(&value)
	switch {
	case err == nil:
		return schemas.ParseStoreVersion(value), nil
	case !errors.Is(err, sql.ErrNoRows) && !notFound(err):
		return 0, fmt.Errorf("read store version of %s: %w", s.schema, err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT * FROM "+s.Table("attribution")+" LIMIT 0")
	if notFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read store version of %s: %w", s.schema, err)
	}
	rows.Close()
	return 1, nil
}

// CheckVersion refuses a store this build cannot write as it is: newer,
// unknown, or older (obolus init migrates it). A schema without a store
// passes: the first write says what is missing.
func (s *Store) CheckVersion(ctx context.Context) error {
	v, err := s.Version(ctx)
	if err != nil {
		return err
	}
	return schemas.CheckStoreVersion(s.schema.String(), v, false)
}

// migrate takes the store from version v to schemas.StoreVersion; conn has
// the store's schema in use.
func (s *Store) migrate(ctx context.Context, conn *sql.Conn, v int) error {
	return schemas.Migrate("databricks", s.schema.String(), v, func(stmt string) error {
		_, err := conn.ExecContext(ctx, stmt)
		return err
	})
}

// recordVersion writes schemas.StoreVersion into store_meta.
func (s *Store) recordVersion(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `MERGE INTO `+s.Table("store_meta")+` AS t
USING (SELECT ? AS name, ? AS value) AS s
ON t.name = s.name
WHEN MATCHED THEN UPDATE SET value = s.value
WHEN NOT MATCHED THEN INSERT (name, value) VALUES (s.name, s.value)`, schemas.StoreVersionKey, strconv.Itoa(schemas.StoreVersion))
	if err != nil {
		return fmt.Errorf("record store version of %s: %w", s.schema, err)
	}
	return nil
}
