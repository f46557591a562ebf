//! The embedded default: SQLite in WAL mode, one file in the data directory, no server.
//! Writes that read first take the write lock up front (`BEGIN IMMEDIATE`), so two writers never
//! interleave a read-modify-write.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use super::api::impl_api_store;
use super::sql::{Dialect, impl_store};
use super::webhooks::impl_webhook_store;
use super::{Backend, StoreError, StoreOptions, migration_error};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for the write transactions: writers of this process queue here for the
    /// write lock instead of polling for it in SQLite's busy handler (which sleeps up to 100 ms
    /// between tries); the busy timeout still covers other processes.
    writer: SqlitePool,
}

impl Dialect for SqliteStore {
    fn in_json_list(column: &str, param: &str) -> String {
        format!("{column} IN (SELECT value FROM json_each({param}))")
    }

    const BACKEND: Backend = Backend::Sqlite;
    const LOCK_FOR_UPDATE: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    const EXPLAIN: (&'static str, &'static str) = ("EXPLAIN QUERY PLAN", "detail");
    const JOB_SEQ: &'static str = "rowid";
}

/// WAL pages after which a commit copies the log back into the database (SQLite's default is
/// 1 000): fewer, larger checkpoints, so that a page the writer changes again and again (a job
/// row enqueued, claimed, finished) is copied once rather than once per checkpoint.
const WRITER_CHECKPOINT_PAGES: u32 = 16_000;

/// Rows buffered between SQLite's thread and the task reading them.
const ROW_BUFFER: usize = 1024;

/// The writer connection's page cache (SQLite's default is 2 MiB).
const WRITER_CACHE_KIB: u32 = 64 * 1024;

/// Every connection's settings: WAL, commits that do not wait for the disk (a crash of the
/// machine, not of the process, can lose the last commits; the database stays consistent), a
/// wait for a busy database, and a statement's rows handed to the calling task
/// [`ROW_BUFFER`] at a time rather than 50 (sqlx's default), so that SQLite's thread does not
/// wait for the task every 50 rows of a batch of claimed jobs or a page of invoices.
pub(crate) fn connection_settings(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .row_buffer_size(ROW_BUFFER)
}

/// The one writer connection's settings on top: a larger page cache, so that a page of ingest
/// or a batch of jobs does not spill dirty pages to the database file before it commits (and
/// read them back); statement journals in memory rather than in temporary files; fewer, larger
/// checkpoints ([`WRITER_CHECKPOINT_PAGES`], run by the commit that crosses the mark, so that
/// commit takes longer); and the log cut back to [`WAL_KEPT_BYTES`] after a checkpoint.
pub(crate) fn writer_settings(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"))
        .pragma("temp_store", "memory")
        .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES.to_string())
        .pragma("journal_size_limit", WAL_KEPT_BYTES.to_string())
}

/// What the WAL file is cut back to after a checkpoint.
const WAL_KEPT_BYTES: u64 = 64 * 1024 * 1024;

impl SqliteStore {
    /// Opens (creating if missing, with its directory) the database file named by the URL.
    pub async fn open(options: &StoreOptions) -> Result<SqliteStore, StoreError> {
        let bad_url = |reason: String| StoreError::BadUrl {
            url: options.url.clone(),
            reason,
        };
        let connect = connection_settings(
            SqliteConnectOptions::from_str(&options.url).map_err(|e| bad_url(e.to_string()))?,
        )
        .foreign_keys(true);
        let file = connect.get_filename();
        let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir.filter(|_| file != Path::new(":memory:")) {
            std::fs::create_dir_all(dir).map_err(|e| {
                bad_url(format!(
                    "cannot create the directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect.clone())
            .await
            .map_err(|e| StoreError::Unreachable(e.to_string()))?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(writer_settings(connect))
            .await
            .map_err(|e| StoreError::Unreachable(e.to_string()))?;
        Ok(SqliteStore { pool, writer })
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn close_pools(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// SQLite's planner needs no nudge.
    async fn prefer_indexes(&self, _: &mut Transaction<'_, Sqlite>) -> Result<(), StoreError> {
        Ok(())
    }

    /// SQLite's planner prefers the indexes without statistics: nothing to do.
    async fn after_ingest(&self, _created: usize) {}

    fn known_migrations() -> Vec<i64> {
        MIGRATOR.iter().map(|m| m.version).collect()
    }

    async fn has_migrations_table(&self) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| migration_error(e, &Self::known_migrations()))
    }
}

impl_api_store!(SqliteStore);
impl_webhook_store!(SqliteStore);
impl_store!(SqliteStore, Sqlite);
