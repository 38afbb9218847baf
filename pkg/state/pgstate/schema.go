package pgstate

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaVersion is the newest version of the tables this convsync knows.
const SchemaVersion = 1

// migrations[i] takes the schema from version i to i+1. Each runs in the
// migrating transaction; never edit one that has shipped, add another.
var migrations = []string{
	`CREATE TABLE convsync.workspaces (
		workspace  text PRIMARY KEY,
		lineage    text NOT NULL,
		serial     bigint NOT NULL,
		written_by text NOT NULL,
		sizes      json NOT NULL DEFAULT '{}',
		updated_at timestamptz NOT NULL DEFAULT now()
	);
	CREATE TABLE convsync.lease (
		workspace   text PRIMARY KEY,
		holder      text NOT NULL,
		epoch       bigint NOT NULL,
		acquired_at timestamptz NOT NULL,
		renewed_at  timestamptz NOT NULL,
		expires_at  timestamptz NOT NULL,
		released    boolean NOT NULL DEFAULT false,
		holder_info json NOT NULL DEFAULT '{}'
	) WITH (fillfactor = 50);
	CREATE TABLE convsync.resources (
		workspace  text NOT NULL,
		address    text NOT NULL,
		kind       text NOT NULL,
		sid        text NOT NULL,
		parent_sid text NOT NULL,
		data       json NOT NULL,
		epoch      bigint NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (workspace, address)
	);
	CREATE INDEX resources_by_sid ON convsync.resources (workspace, sid);
	CREATE TABLE convsync.pending (
		workspace  text NOT NULL,
		address    text NOT NULL,
		kind       text NOT NULL,
		parent_sid text NOT NULL,
		data       json NOT NULL,
		epoch      bigint NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (workspace, address)
	);`,
}

// migrateLockKey scopes the advisory lock that serialises migrations to
// convsync's schema (a transaction-level lock: it ends with the migrating
// transaction, so it works through PgBouncer).
const migrateLockKey = `hashtext('convsync.schema')`

// migrate brings the tables to SchemaVersion. It is a no-op (two cheap
// statements) when they are current, and refuses a schema newer than this
// convsync knows.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Several statements in one string need the simple protocol.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+migrateLockKey+`);
			CREATE SCHEMA IF NOT EXISTS convsync;
			CREATE TABLE IF NOT EXISTS convsync.schema_version (version int NOT NULL)`, pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("creating schema convsync: %w", err)
		}
		version, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if version > SchemaVersion {
			return &VersionError{Found: version}
		}
		for v := version; v < SchemaVersion; v++ {
			if _, err := tx.Exec(ctx, migrations[v], pgx.QueryExecModeSimpleProtocol); err != nil {
				return fmt.Errorf("migrating the convsync tables from version %d to %d: %w", v, v+1, err)
			}
		}
		if version != SchemaVersion {
			if _, err := tx.Exec(ctx, `DELETE FROM convsync.schema_version`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO convsync.schema_version (version) VALUES ($1)`, SchemaVersion); err != nil {
				return err
			}
		}
		return nil
	})
}

func schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var version *int
	if err := q.QueryRow(ctx, `SELECT max(version) FROM convsync.schema_version`).Scan(&version); err != nil {
		return 0, fmt.Errorf("reading the convsync schema version: %w", err)
	}
	if version == nil {
		return 0, nil
	}
	return *version, nil
}

// VersionError means the tables were migrated by a newer convsync.
type VersionError struct{ Found int }

func (e *VersionError) Error() string {
	return fmt.Sprintf("the convsync tables are at schema version %d, newer than this convsync knows (%d): upgrade convsync", e.Found, SchemaVersion)
}

var errNoSchema = errors.New("no convsync schema")
