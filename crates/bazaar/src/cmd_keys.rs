//! `bazaar keys rotate`: rotates identity's token signing keys in its
//! database; a running identity signs with the new key at once, and keys
//! it retires stay published until every token they signed has expired.

use std::process::ExitCode;

use bazaar_identity::accounts::admin;
use bazaar_identity::signing::keys;
use bazaar_kit::Config;

/// `keys` subcommands.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Start signing with a new key; the old one stays published until
    /// the tokens it signed have expired.
    Rotate,
}

/// Runs the command.
pub async fn run(config: &Config, args: Args) -> anyhow::Result<ExitCode> {
    let db = admin::open(config).await?;
    let result = match args.action {
        Action::Rotate => admin::rotate_keys(&db).await,
    };
    db.close().await;
    let rotation = result.map_err(|e| anyhow::anyhow!("rotating keys: {e}"))?;
    println!("Signing key rotated.");
    println!("  signing now    {}", rotation.active);
    for kid in &rotation.retired {
        println!(
            "  retired        {kid} (still published for {}s)",
            keys::OVERLAP_SECS
        );
    }
    println!("  next (published) {}", rotation.next);
    Ok(ExitCode::SUCCESS)
}
