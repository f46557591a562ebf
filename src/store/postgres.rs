//! PostgreSQL, the store for several gateway instances sharing one database. A read that precedes a
//! write locks its row (`FOR UPDATE`); claimers skip rows another instance holds
//! (`FOR UPDATE SKIP LOCKED`).

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use super::api::impl_api_store;
use super::sql::{Dialect, impl_store};
use super::webhooks::impl_webhook_store;
use super::{Backend, StoreError, StoreOptions, migration_error, redact_url};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
    /// Invoices this process has created, to refresh the planner's statistics as they grow.
    created: std::sync::atomic::AtomicU64,
}

impl Dialect for PostgresStore {
    fn in_json_list(column: &str, param: &str) -> String {
        // An array made once, then `= ANY`: an index condition, whatever the table's statistics
        // say (a semi-join with the unnested list can turn into a scan of the whole table).
        format!("{column} = ANY(ARRAY(SELECT jsonb_array_elements_text({param})))")
    }

    const BACKEND: Backend = Backend::Postgres;
    const LOCK_FOR_UPDATE: &'static str = " FOR UPDATE";
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
    const EXPLAIN: (&'static str, &'static str) = ("EXPLAIN", "QUERY PLAN");
    const JOB_SEQ: &'static str = "seq";
}

impl PostgresStore {
    pub async fn open(options: &StoreOptions) -> Result<PostgresStore, StoreError> {
        let connect: PgConnectOptions =
            options
                .url
                .parse()
                .map_err(|e: sqlx::Error| StoreError::BadUrl {
                    url: redact_url(&options.url),
                    reason: e.to_string(),
                })?;
        // Plan every statement for its own parameters. A generic plan made while a table was
        // small (a fresh database) would keep scanning it whole as it grows.
        let connect = connect.options([("plan_cache_mode", "force_custom_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Unreachable(e.to_string()))?;
        Ok(PostgresStore {
            pool,
            created: std::sync::atomic::AtomicU64::new(0),
        })
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    async fn close_pools(&self) {
        self.pool.close().await;
    }

    /// On a small table PostgreSQL rightly prefers a sequential scan; the plan that matters is
    /// the one it uses at scale, so the explanation is asked with sequential scans discouraged.
    async fn prefer_indexes(&self, tx: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// After a bulk ingest: while a table grows fast (a first sync), autovacuum's statistics lag
    /// behind and the planner takes a table of thousands for a handful of rows, choosing plans
    /// that read it whole. Refresh them each time this process has doubled what it created
    /// (from 1 000 on): a few runs of ANALYZE over a sync of any size.
    async fn after_ingest(&self, created: usize) {
        use std::sync::atomic::Ordering;
        if created == 0 {
            return;
        }
        let before = self.created.fetch_add(created as u64, Ordering::Relaxed);
        let after = before + created as u64;
        let step = |n: u64| (n / 1000).checked_ilog2();
        if after >= 1000
            && step(before) != step(after)
            && let Err(e) = sqlx::query("ANALYZE invoices, customers")
                .execute(&self.pool)
                .await
        {
            tracing::warn!(error = %e, "cannot refresh the planner's statistics");
        }
    }

    fn known_migrations() -> Vec<i64> {
        MIGRATOR.iter().map(|m| m.version).collect()
    }

    async fn has_migrations_table(&self) -> Result<bool, StoreError> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(&self.pool)
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

impl_api_store!(PostgresStore);
impl_webhook_store!(PostgresStore);
impl_store!(PostgresStore, Postgres);
