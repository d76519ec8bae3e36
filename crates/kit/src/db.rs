//! Storage: one database per service, SQLite (embedded default) or
//! PostgreSQL, behind one `sqlx::AnyPool` so the store code is written once.
//!
//! Conventions for store code that runs on both backends: `$1, $2, ...`
//! placeholders numbered in order of first use; UUIDs as TEXT; timestamps as
//! RFC 3339 TEXT or epoch integers; booleans as INTEGER 0/1; money as
//! integer cents.

use std::path::Path;
use std::sync::Once;
use std::time::{Duration, Instant};

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::{Any, Executor};

mod inspect;
pub use inspect::{MigrationState, all_pending};

/// Which SQL engine a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (WAL).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a URL names.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// A service's migrations, one folder per backend (their SQL differs: FTS5
/// versus tsvector, for instance).
pub struct Migrations {
    /// `sqlx::migrate!("migrations/sqlite")`.
    pub sqlite: &'static Migrator,
    /// `sqlx::migrate!("migrations/postgres")`.
    pub postgres: &'static Migrator,
}

/// The kit's own tables (outbox, inbox, dead letters).
static KIT_SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static KIT_POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// Errors from opening or migrating a database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is not sqlite:// or postgres://.
    #[error("unsupported database URL (expected sqlite:// or postgres://)")]
    UnsupportedUrl,
    /// The server could not be reached in time.
    #[error("database unreachable: {0}")]
    Unreachable(#[source] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database is missing or behind its migrations, and this caller
    /// may not create or migrate it.
    #[error("{0}")]
    NotMigrated(String),
    /// Any other SQL error.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// A service's database handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

static DRIVERS: Once = Once::new();

impl Db {
    /// Opens (creating when missing) and migrates the database at `url`,
    /// retrying an unreachable server for up to `wait`.
    pub async fn connect(
        url: &str,
        migrations: &Migrations,
        wait: Duration,
    ) -> Result<Db, DbError> {
        Self::connect_with(url, migrations, wait, 10).await
    }

    /// [`Db::connect`] with at most `max_connections` pooled connections
    /// (PostgreSQL; SQLite keeps its own small pool).
    pub async fn connect_with(
        url: &str,
        migrations: &Migrations,
        wait: Duration,
        max_connections: u32,
    ) -> Result<Db, DbError> {
        Self::connect_reporting(url, migrations, wait, max_connections, &|_| {}).await
    }

    /// [`Db::connect_with`], telling `report` why each failed attempt
    /// failed (a starting service shows it on `/readyz`). `Duration::MAX`
    /// waits without end.
    pub(crate) async fn connect_reporting(
        url: &str,
        migrations: &Migrations,
        wait: Duration,
        max_connections: u32,
        report: &(dyn Fn(String) + Sync),
    ) -> Result<Db, DbError> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = Backend::from_url(url).ok_or(DbError::UnsupportedUrl)?;
        let deadline = Instant::now().checked_add(wait);
        let mut attempt = 0;
        loop {
            match Self::open(url, backend, max_connections, true).await {
                Ok(db) => {
                    db.migrate(migrations).await?;
                    return Ok(db);
                }
                Err(e) if deadline.is_none_or(|d| Instant::now() < d) => {
                    tracing::warn!(error = %e, "database not reachable yet; retrying");
                    report(format!("database not reached yet: {e}"));
                    attempt += 1;
                    tokio::time::sleep(crate::clock::Backoff::LINK.delay(attempt)).await;
                }
                Err(e) => return Err(DbError::Unreachable(e)),
            }
        }
    }

    async fn open(
        url: &str,
        backend: Backend,
        max_connections: u32,
        create: bool,
    ) -> Result<Db, sqlx::Error> {
        if backend == Backend::Sqlite && create {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or_default();
            // Owner-only from the start: SQLite gives its -wal and -shm
            // files the database file's mode.
            if let Some(parent) = Path::new(path).parent() {
                crate::config::create_private_dir(parent).map_err(sqlx::Error::Io)?;
            }
            if !path.is_empty() && path != ":memory:" && !url.contains("mode=memory") {
                crate::config::private_file(Path::new(path), false).map_err(sqlx::Error::Io)?;
            }
        }
        // Create the database when missing and the role may; otherwise the
        // connect below reports the real problem.
        match Any::database_exists(url).await {
            Ok(false) if !create => {
                return Err(sqlx::Error::Configuration(
                    "the database does not exist".into(),
                ));
            }
            Ok(false) => {
                if let Err(e) = Any::create_database(url).await {
                    tracing::warn!(error = %e, "could not create database");
                }
            }
            Ok(true) => {}
            Err(e) => return Err(e),
        }
        let options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(Duration::from_secs(300));
        let options = match backend {
            // WAL lets readers run beside the single writer; the busy timeout
            // makes writers queue instead of failing.
            Backend::Sqlite => options.max_connections(8).after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                         PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;",
                    )
                    .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options.max_connections(max_connections.max(1)),
        };
        let pool = options.connect(url).await?;
        Ok(Db { pool, backend })
    }

    /// Applies the kit's and the service's pending migrations.
    pub async fn migrate(&self, migrations: &Migrations) -> Result<(), DbError> {
        let (kit, own) = match self.backend {
            Backend::Sqlite => (&KIT_SQLITE, migrations.sqlite),
            Backend::Postgres => (&KIT_POSTGRES, migrations.postgres),
        };
        // The kit keeps its own history table so the two sets never clash.
        let mut kit = Migrator::with_migrations(kit.migrations.to_vec());
        kit.dangerous_set_table_name("_bazaar_kit_migrations");
        kit.run(&self.pool).await?;
        own.run(&self.pool).await?;
        Ok(())
    }

    /// The connection pool, for store code.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The SQL engine behind the pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Readiness probe: a trivial query within two seconds.
    pub(crate) async fn ping(&self) -> Result<(), String> {
        let probe = sqlx::query("SELECT 1").execute(&self.pool);
        match tokio::time::timeout(Duration::from_secs(2), probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("database: {e}")),
            Err(_) => Err("database: no answer within 2s".into()),
        }
    }

    /// Pool gauges for `/metrics`.
    pub(crate) fn record_pool_metrics(&self, service: &'static str) {
        metrics::gauge!("db_pool_connections", "service" => service, "state" => "open")
            .set(f64::from(self.pool.size()));
        metrics::gauge!("db_pool_connections", "service" => service, "state" => "idle")
            .set(self.pool.num_idle() as f64);
    }

    /// Closes the pool, waiting for checked-out connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The constraint or column text of a unique-constraint violation, if `e` is
/// one (`users.username` on SQLite, `users_username_key` on PostgreSQL).
/// Services map it to a 400 field error in one place.
pub fn unique_violation(e: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    if !db.is_unique_violation() {
        return None;
    }
    Some(
        db.constraint()
            .map(str::to_string)
            .unwrap_or_else(|| db.message().to_string()),
    )
}
