//! The catalog's SQL, in one place. Every query runs on SQLite and
//! PostgreSQL through the kit's `AnyPool`; the few dialect differences
//! (full-text search, collation) are switched on [`Backend`].

pub mod categories;
pub mod products;
pub mod reservations;

use bazaar_kit::Db;
use bazaar_kit::db::Backend;
use sqlx::any::AnyArguments;
use sqlx::query::{QueryAs, QueryScalar};
use sqlx::{Any, Transaction};

pub use categories::Category;
pub use products::Product;

/// The catalog's storage.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
}

impl Store {
    /// Storage over `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Starts a transaction that will write. On SQLite it is `BEGIN
    /// IMMEDIATE`: the write lock is taken up front, where the busy timeout
    /// applies, so concurrent writers queue instead of failing with
    /// "database is locked" when a statement upgrades a read lock.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend() {
            Backend::Sqlite => self.db.pool().begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.db.pool().begin().await,
        }
    }
}

/// A bind value of a dynamically built query.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// Binds `args`, in order, to a query built at run time.
pub(crate) fn bind_all<'q, O>(
    mut q: QueryAs<'q, Any, O, AnyArguments>,
    args: &[Arg],
) -> QueryAs<'q, Any, O, AnyArguments> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.clone()),
            Arg::Int(i) => q.bind(*i),
        };
    }
    q
}

/// [`bind_all`] for scalar queries.
pub(crate) fn bind_scalar<'q, O>(
    mut q: QueryScalar<'q, Any, O, AnyArguments>,
    args: &[Arg],
) -> QueryScalar<'q, Any, O, AnyArguments> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.clone()),
            Arg::Int(i) => q.bind(*i),
        };
    }
    q
}
