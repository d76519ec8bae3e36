//! Every service's schema is written twice, once per dialect
//! (`migrations/sqlite`, `migrations/postgres`). This test migrates both
//! databases of every service and compares what they hold: tables, columns
//! (type class and nullability) and indexes (columns and uniqueness), so the
//! two files cannot drift apart. PostgreSQL absent: skipped loudly, or a
//! failure under `CI=true`.

use std::collections::BTreeSet;
use std::time::Duration;

use bazaar_kit::{Db, ServiceName};
use sqlx::{Connection, Row};

/// A type as a class both dialects share.
fn class(declared: &str) -> String {
    let t = declared.to_ascii_lowercase();
    let class = if t.contains("int") || t.contains("serial") {
        "integer"
    } else if t.contains("char") || t.contains("text") || t.contains("clob") {
        "text"
    } else if t.contains("bool") {
        "boolean"
    } else if t.contains("real") || t.contains("double") || t.contains("float") {
        "real"
    } else if t.contains("blob") || t.contains("bytea") {
        "bytes"
    } else if t.contains("timestamp") {
        "timestamp"
    } else {
        return t;
    };
    class.to_string()
}

/// One line per table, column and index.
async fn sqlite_schema(db: &Db) -> BTreeSet<String> {
    let mut facts = BTreeSet::new();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(db.pool())
    .await
    .expect("tables");
    for table in tables {
        facts.insert(format!("table {table}"));
        let columns = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT name, type, \"notnull\", pk FROM pragma_table_info('{table}')"
        )))
        .fetch_all(db.pool())
        .await
        .expect("columns");
        for c in columns {
            let name: String = c.get(0);
            let declared: String = c.get(1);
            let not_null: i64 = c.get(2);
            let pk: i64 = c.get(3);
            let nullable = not_null == 0 && pk == 0;
            facts.insert(format!(
                "column {table}.{name} {} {}",
                class(&declared),
                if nullable { "null" } else { "not null" }
            ));
        }
        let indexes = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT name, \"unique\", origin FROM pragma_index_list('{table}')"
        )))
        .fetch_all(db.pool())
        .await
        .expect("indexes");
        for i in indexes {
            let name: String = i.get(0);
            let unique: i64 = i.get(1);
            let origin: String = i.get(2);
            if origin == "pk" {
                continue;
            }
            let columns: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT name FROM pragma_index_info('{name}') ORDER BY seqno"
            )))
            .fetch_all(db.pool())
            .await
            .expect("index columns");
            let columns: Vec<String> = columns
                .into_iter()
                .map(|c| c.unwrap_or_else(|| "<expr>".into()))
                .collect();
            facts.insert(index(&table, &columns, unique != 0));
        }
    }
    facts
}

async fn postgres_schema(db: &Db) -> BTreeSet<String> {
    let mut facts = BTreeSet::new();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_type = 'BASE TABLE' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(db.pool())
    .await
    .expect("tables");
    for table in tables {
        facts.insert(format!("table {table}"));
        let columns = sqlx::query(
            "SELECT column_name::text, data_type::text, is_nullable::text \
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1",
        )
        .bind(&table)
        .fetch_all(db.pool())
        .await
        .expect("columns");
        for c in columns {
            let name: String = c.get(0);
            let declared: String = c.get(1);
            let nullable: String = c.get(2);
            facts.insert(format!(
                "column {table}.{name} {} {}",
                class(&declared),
                if nullable == "YES" {
                    "null"
                } else {
                    "not null"
                }
            ));
        }
        let indexes = sqlx::query(
            "SELECT ix.indisunique, array_to_string(ARRAY(
                 SELECT coalesce(a.attname::text, '<expr>')
                 FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                 LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                 ORDER BY k.n), ',')
             FROM pg_index ix
             JOIN pg_class t ON t.oid = ix.indrelid
             JOIN pg_namespace ns ON ns.oid = t.relnamespace
             WHERE ns.nspname = 'public' AND t.relname = $1 AND NOT ix.indisprimary",
        )
        .bind(&table)
        .fetch_all(db.pool())
        .await
        .expect("indexes");
        for i in indexes {
            let unique: bool = i.get(0);
            let columns: String = i.get(1);
            let columns: Vec<String> = columns.split(',').map(str::to_string).collect();
            facts.insert(index(&table, &columns, unique));
        }
    }
    facts
}

/// Full-text search is the one deliberate difference: an FTS5 table (and
/// its shadow tables) on SQLite, a `tsvector` column with its index on
/// PostgreSQL (see catalog's `store/products.rs`).
fn dialect_specific(service: ServiceName, fact: &str) -> bool {
    service == ServiceName::Catalog
        && (fact.starts_with("table products_fts")
            || fact.starts_with("column products_fts")
            || fact.starts_with("column products.search ")
            || fact == "index products(search)")
}

fn index(table: &str, columns: &[String], unique: bool) -> String {
    format!(
        "index {table}({}){}",
        columns.join(", "),
        if unique { " unique" } else { "" }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_migrations_agree() {
    if !bazaar_kit::testing::server_available("PostgreSQL", "127.0.0.1:5432").await {
        return;
    }
    let server = bazaar_kit::testing::postgres_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let checks = ServiceName::ALL.into_iter().filter_map(|name| {
        let migrations = crate::platform::migrations(name)?;
        let (server, dir, run) = (server.clone(), dir.path().to_path_buf(), run.clone());
        Some(async move {
            let wait = Duration::from_secs(10);
            let sqlite_url = format!("sqlite://{}/{name}.db", dir.display());
            let sqlite = Db::connect(&sqlite_url, migrations, wait)
                .await
                .expect("sqlite");
            let database = format!("bzt_{run}_parity_{name}");
            let postgres = Db::connect(&format!("{server}/{database}"), migrations, wait)
                .await
                .expect("postgres");
            let (lite, pg) = (
                sqlite_schema(&sqlite).await,
                postgres_schema(&postgres).await,
            );
            sqlite.close().await;
            postgres.close().await;
            // Dropped here; a killed run leaves it to `.ci/run` (bzt_ prefix).
            if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{server}/postgres")).await
            {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await;
            }
            assert!(
                lite.iter().any(|f| f.starts_with("table ")),
                "{name}: no tables"
            );
            let mut drift = Vec::new();
            for only in lite.difference(&pg).filter(|f| !dialect_specific(name, f)) {
                drift.push(format!("{name}: only on SQLite:     {only}"));
            }
            for only in pg.difference(&lite).filter(|f| !dialect_specific(name, f)) {
                drift.push(format!("{name}: only on PostgreSQL: {only}"));
            }
            drift
        })
    });
    let drift: Vec<String> = futures::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        drift.is_empty(),
        "the dialects' migrations disagree:\n{}",
        drift.join("\n")
    );
}
