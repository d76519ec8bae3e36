//! Identity's SQL, in one place. Runs on SQLite and PostgreSQL through
//! `AnyPool`: `$n` placeholders, TEXT ids and times, BIGINT flags.

pub mod keys;
pub mod refresh;
pub mod throttle;
pub mod users;

/// Now, in epoch seconds.
pub fn epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
