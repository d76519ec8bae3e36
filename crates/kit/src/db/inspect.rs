//! Opening a database without creating or migrating it, and reading which
//! migrations it has: what read-only commands (`events dead-letters`,
//! `showmigrations`, `migrate --plan`) and services started with
//! `migrate_on_start = false` use.

use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::{Any, migrate::MigrateDatabase};

use super::{Backend, DRIVERS, Db, DbError, KIT_POSTGRES, KIT_SQLITE, Migrations};

/// The kit's history table (the service's own is sqlx's `_sqlx_migrations`).
const KIT_TABLE: &str = "_bazaar_kit_migrations";
const OWN_TABLE: &str = "_sqlx_migrations";

/// One migration and whether the database has it (`showmigrations`' `[X]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationState {
    /// `kit` (outbox, inbox, dead letters) or `service` (its own tables).
    pub set: &'static str,
    /// The migration's version (its file name's number).
    pub version: i64,
    /// Its description (the rest of the file name).
    pub description: String,
    /// Whether it has been applied.
    pub applied: bool,
}

fn no_database(url: &str) -> DbError {
    DbError::NotMigrated(format!(
        "the database {} does not exist; create and migrate it with `bazaar migrate`",
        crate::config::redact_url(url)
    ))
}

impl Db {
    /// Opens the existing database at `url`: never creates it, never
    /// migrates it. `Ok(None)` when it does not exist.
    pub async fn open_existing(url: &str) -> Result<Option<Db>, DbError> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = Backend::from_url(url).ok_or(DbError::UnsupportedUrl)?;
        if !Any::database_exists(url)
            .await
            .map_err(DbError::Unreachable)?
        {
            return Ok(None);
        }
        Ok(Some(
            Self::open(url, backend, 2, false)
                .await
                .map_err(DbError::Unreachable)?,
        ))
    }

    /// Like [`Db::connect_with`] but never creating or migrating: waits (up
    /// to `wait`) until the database exists and has every migration, for
    /// services whose schema a separate job migrates.
    pub async fn connect_migrated(
        url: &str,
        migrations: &Migrations,
        wait: Duration,
        max_connections: u32,
    ) -> Result<Db, DbError> {
        Self::connect_migrated_reporting(url, migrations, wait, max_connections, &|_| {}).await
    }

    /// [`Db::connect_migrated`], telling `report` why the database is not
    /// usable yet after each attempt. `Duration::MAX` waits without end.
    pub(crate) async fn connect_migrated_reporting(
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
            let problem = match Self::open_existing(url).await {
                Ok(None) => no_database(url),
                Ok(Some(probe)) => {
                    let pending = probe
                        .migration_status(migrations)
                        .await
                        .map(|s| s.iter().filter(|m| !m.applied).count());
                    probe.close().await;
                    match pending {
                        Ok(0) => {
                            return Self::open(url, backend, max_connections, false)
                                .await
                                .map_err(DbError::Unreachable);
                        }
                        Ok(n) => DbError::NotMigrated(format!(
                            "{n} migration(s) not applied yet and migrate_on_start is off; \
                             run `bazaar migrate` (the migration Job) first"
                        )),
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(problem);
            }
            tracing::warn!(error = %problem, "database not ready yet; retrying");
            report(format!("database not ready yet: {problem}"));
            attempt += 1;
            tokio::time::sleep(crate::clock::Backoff::LINK.delay(attempt)).await;
        }
    }

    /// Every migration of the kit and of the service, in order, with
    /// whether this database has it. Reads only.
    pub async fn migration_status(
        &self,
        migrations: &Migrations,
    ) -> Result<Vec<MigrationState>, DbError> {
        let (kit, own) = match self.backend {
            Backend::Sqlite => (&KIT_SQLITE, migrations.sqlite),
            Backend::Postgres => (&KIT_POSTGRES, migrations.postgres),
        };
        let mut out = Vec::new();
        for (set, migrator, table) in [("kit", kit, KIT_TABLE), ("service", own, OWN_TABLE)] {
            let applied = self.applied_versions(table).await?;
            out.extend(
                listed(migrator).map(|(version, description)| MigrationState {
                    set,
                    version,
                    description,
                    applied: applied.contains(&version),
                }),
            );
        }
        Ok(out)
    }

    async fn applied_versions(&self, table: &str) -> Result<Vec<i64>, DbError> {
        let exists_sql = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = $1"
            }
        };
        let (count,): (i64,) = sqlx::query_as(exists_sql)
            .bind(table)
            .fetch_one(&self.pool)
            .await?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let sql = if table == KIT_TABLE {
            "SELECT version FROM _bazaar_kit_migrations WHERE success ORDER BY version"
        } else {
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version"
        };
        let rows: Vec<(i64,)> = sqlx::query_as(sql).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

fn listed(migrator: &Migrator) -> impl Iterator<Item = (i64, String)> + '_ {
    migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m.description.to_string()))
}

/// Every migration the database at `url` would get, all pending (for a
/// database that does not exist yet; nothing is opened).
pub fn all_pending(url: &str, migrations: &Migrations) -> Vec<MigrationState> {
    let (kit, own) = match Backend::from_url(url) {
        Some(Backend::Postgres) => (&KIT_POSTGRES, migrations.postgres),
        _ => (&KIT_SQLITE, migrations.sqlite),
    };
    let mut out = Vec::new();
    for (set, migrator) in [("kit", kit), ("service", own)] {
        out.extend(
            listed(migrator).map(|(version, description)| MigrationState {
                set,
                version,
                description,
                applied: false,
            }),
        );
    }
    out
}
