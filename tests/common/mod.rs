//! The test harness shared by the end-to-end tests: a fresh store on each backend.
//!
//! SQLite always runs, in a temporary directory. PostgreSQL runs when `FORFALL_TEST_POSTGRES_URL`
//! is set (CI sets it): each test gets a database of its own, created before and dropped after.
//! When it is unset, the PostgreSQL variants say loudly that they were skipped.

#![allow(dead_code)]

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Once};

use forfall::store::{self, Store, StoreOptions};

pub const POSTGRES_URL_VAR: &str = "FORFALL_TEST_POSTGRES_URL";

/// Runs `test` against a fresh, migrated SQLite store.
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}/forfall.db", dir.path().display());
    let store = store::open(&StoreOptions {
        url,
        max_connections: 8,
    })
    .await
    .expect("open SQLite");
    store.migrate().await.expect("migrate SQLite");
    test(store.clone()).await;
    store.close().await;
}

/// Runs `test` against a fresh, migrated PostgreSQL database of its own, dropped afterwards even
/// when the test fails.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin_url) = postgres_url() else {
        return;
    };
    let database = format!("forfall_test_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("connect to FORFALL_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&admin)
        .await
        .expect("create a test database");
    let store = store::open(&StoreOptions {
        url: with_database(&admin_url, &database),
        max_connections: 8,
    })
    .await
    .expect("open PostgreSQL");
    store.migrate().await.expect("migrate PostgreSQL");
    let outcome = tokio::spawn(test(store.clone())).await;
    store.close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .execute(&admin)
        .await
        .expect("drop the test database");
    admin.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// The PostgreSQL server to test against, or `None` after telling the terminal it is skipped.
pub fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                // Written to the terminal directly, past the test harness's output capture.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** PostgreSQL SKIPPED: {POSTGRES_URL_VAR} is unset, so the PostgreSQL \
                     variants of these tests pass without running. CI sets it. ***\n"
                );
            });
            None
        }
    }
}

pub use forfall::store::with_database;

/// Declares each listed `async fn name(store: Arc<dyn Store>)` as two tests, `sqlite::name` and
/// `postgres::name`: one body per behaviour, run on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::common::on_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::common::on_postgres(super::$name).await;
                }
            )*
        }
    };
}
