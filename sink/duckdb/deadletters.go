package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/obolus/obolus/internal/sqlrows"
	"github.com/obolus/obolus/schemas"
)

const stageDeadLetters = "obolus_stage_dead_letters"

// WriteDeadLetters upserts dl on (source, location): a record dead-lettered
// again (a rerun) overwrites its row. Within dl the last entry for a key wins.
// Record is cut to schemas.MaxDeadLetterRecord bytes and, like every text
// field, has invalid UTF-8 replaced by U+FFFD, since a dead letter is often
// exactly the bytes that did not decode.
func (s *Store) WriteDeadLetters(ctx context.Context, dl []schemas.DeadLetter) error {
	if len(dl) == 0 {
		return nil
	}
	type key struct{ source, location string }
	last := make(map[key]int, len(dl))
	for i := range dl {
		if dl[i].Source == "" || dl[i].Location == "" {
			return fmt.Errorf("dead letter %d (source %q, location %q): source and location must be set", i, dl[i].Source, dl[i].Location)
		}
		last[key{clean(dl[i].Source), clean(dl[i].Location)}] = i
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("write dead letters: %w", err)
	}
	defer conn.Close()
	defer dropStage(conn, stageDeadLetters)

	err = stage(ctx, conn, "dead_letters", stageDeadLetters, func(ap *duckdb.Appender) error {
		for i := range dl {
			d := &dl[i]
			if last[key{clean(d.Source), clean(d.Location)}] != i {
				continue
			}
			err := ap.AppendRow(clean(d.Source), clean(d.Location), clean(d.Kind), clean(d.Field), clean(d.Reason),
				cut(clean(d.Record), schemas.MaxDeadLetterRecord), clean(d.RunID), timeOrNil(d.DeadLetteredAt))
			if err != nil {
				return fmt.Errorf("append dead letter %d (source %q, location %q): %w", i, d.Source, d.Location, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write dead letters: %w", err)
	}
	err = inTx(ctx, conn, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO dead_letters (`+columnList("dead_letters")+`) SELECT * FROM `+stageDeadLetters); err != nil {
			return fmt.Errorf("upsert: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write dead letters: %w", err)
	}
	return nil
}

// DeadLetters reads back every dead letter, ordered by source and location.
func (s *Store) DeadLetters(ctx context.Context) ([]schemas.DeadLetter, error) {
	rs, err := s.db.QueryContext(ctx, `SELECT `+schemas.DeadLetterColumns+` FROM dead_letters ORDER BY source, location`)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	out, err := sqlrows.Collect(rs, (*schemas.DeadLetter).ScanTargets)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	return out, nil
}

// clean replaces invalid UTF-8, which DuckDB's VARCHAR rejects.
func clean(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// cut shortens s to at most n bytes without splitting a valid UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
