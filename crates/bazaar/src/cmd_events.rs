//! `bazaar events`: the operator's view of the dead-letter stores.

use anyhow::Context;
use bazaar_kit::db::Db;
use bazaar_kit::events::inbox;
use bazaar_kit::{Config, ServiceName};
use clap::Subcommand;

use crate::platform::migrations;

/// Dead-letter operations.
#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// List events a consumer gave up on, with their last error.
    DeadLetters {
        /// Only this service's store.
        #[arg(long)]
        service: Option<String>,
    },
    /// Queue dead letters for replay; the running consumer re-applies them
    /// within a second (each at most once: the inbox still dedupes).
    Replay {
        /// The dead letter's id (from `dead-letters`).
        id: Option<String>,
        /// Every dead letter (of `--service`, or of all services).
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// Only this service's store.
        #[arg(long)]
        service: Option<String>,
    },
}

/// Opens a service's existing database: never creates or migrates one
/// (an operator's look must not leave a schema behind, or need DDL rights).
async fn open(config: &Config, name: ServiceName) -> anyhow::Result<Option<Db>> {
    if migrations(name).is_none() {
        return Ok(None);
    }
    let db = Db::open_existing(&config.database_url(name))
        .await
        .with_context(|| format!("{name}: opening its database"))?;
    if db.is_none() {
        eprintln!("{name}: no database yet (run `bazaar migrate`); skipped");
    }
    Ok(db)
}

fn services(only: Option<&str>) -> anyhow::Result<Vec<ServiceName>> {
    match only {
        Some(name) => Ok(vec![
            ServiceName::parse(name).with_context(|| format!("unknown service {name:?}"))?,
        ]),
        None => Ok(ServiceName::ALL
            .into_iter()
            .filter(|n| n.has_database())
            .collect()),
    }
}

/// Runs an events subcommand.
pub async fn run(config: &Config, command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::DeadLetters { service } => {
            let mut total = 0;
            for name in services(service.as_deref())? {
                let Some(db) = open(config, name).await? else {
                    continue;
                };
                let letters = inbox::list_dead_letters(&db).await?;
                for l in &letters {
                    println!(
                        "{}  {:<13} consumer={} type={} event={} attempts={}{}\n    error: {}",
                        l.id,
                        name.as_str(),
                        l.consumer,
                        l.event_type,
                        l.event_id,
                        l.attempts,
                        if l.replay_requested {
                            " (replay queued)"
                        } else {
                            ""
                        },
                        l.error
                    );
                }
                total += letters.len();
                db.close().await;
            }
            println!("{total} dead letter(s)");
        }
        EventsCommand::Replay { id, all, service } => {
            if id.is_none() && !all {
                anyhow::bail!("give a dead-letter id, or --all");
            }
            let mut queued = 0;
            for name in services(service.as_deref())? {
                let Some(db) = open(config, name).await? else {
                    continue;
                };
                queued += inbox::request_replay(&db, id.as_deref()).await?;
                db.close().await;
            }
            if queued == 0 {
                anyhow::bail!("no matching dead letter");
            }
            println!(
                "{queued} dead letter(s) queued for replay; running consumers pick them up within a second"
            );
        }
    }
    Ok(())
}
