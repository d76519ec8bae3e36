//! The catalog's SQL, in one place: free functions over `&Db`. Every query runs on SQLite and
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

pub use categories::{Category, category_id, count_categories, create_category, list_categories};
pub use products::{
    Product, count_products, create_product, delete_product, list_products, product,
    products_by_ids, update_product,
};
pub use reservations::{commit_reservation, expire_reservations, release_reservation, reserve};

/// Starts a transaction that will write. On SQLite it is `BEGIN
/// IMMEDIATE`: the write lock is taken up front, where the busy timeout
/// applies, so concurrent writers queue instead of failing with
/// "database is locked" when a statement upgrades a read lock.
pub(crate) async fn begin_write(db: &Db) -> Result<Transaction<'static, Any>, sqlx::Error> {
    match db.backend() {
        Backend::Sqlite => db.pool().begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => db.pool().begin().await,
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
