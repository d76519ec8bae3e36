//! `bazaar createsuperuser`, as Django's: prompts for username, email and
//! the password twice (validated, with Django's bypass question), or takes
//! everything from flags and `BAZAAR_SUPERUSER_PASSWORD` with `--noinput`.
//! Works on identity's database directly, so it runs beside a live
//! platform, on SQLite or PostgreSQL.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use bazaar_identity::accounts::{self, admin};
use bazaar_kit::Config;

/// Environment variable holding the password with `--noinput`.
pub const PASSWORD_ENV: &str = "BAZAAR_SUPERUSER_PASSWORD";

/// `createsuperuser` flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The superuser's username.
    #[arg(long)]
    pub username: Option<String>,
    /// The superuser's email address.
    #[arg(long)]
    pub email: Option<String>,
    /// Do not prompt: take the password from BAZAAR_SUPERUSER_PASSWORD
    /// (without it the account gets an unusable password, as in Django).
    #[arg(long = "noinput", alias = "no-input")]
    pub noinput: bool,
}

fn read_line(prompt: &str) -> anyhow::Result<String> {
    print!("{prompt}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line)?;
    if n == 0 {
        anyhow::bail!("input ended; superuser not created");
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_password(prompt: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).context("reading the password")
    } else {
        read_line(prompt)
    }
}

/// Runs the command.
pub async fn run(config: &Config, args: Args) -> anyhow::Result<ExitCode> {
    let db = admin::open(config).await?;
    let result = if args.noinput {
        noninteractive(&db, args).await
    } else {
        interactive(&db, args).await
    };
    db.close().await;
    result
}

async fn noninteractive(db: &bazaar_kit::Db, args: Args) -> anyhow::Result<ExitCode> {
    let (Some(username), Some(email)) = (args.username, args.email) else {
        eprintln!("Error: You must use --username and --email with --noinput.");
        return Ok(ExitCode::FAILURE);
    };
    let username = match admin::check_username(db, &username).await {
        Ok(u) => u,
        Err(e) => {
            eprintln!("Error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let email = match admin::check_email(db, &email).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // As Django: the environment password is taken as is, unvalidated.
    // Or from the file BAZAAR_SUPERUSER_PASSWORD_FILE names.
    let password = bazaar_kit::secrets::env_or_file(PASSWORD_ENV)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .filter(|p| !p.is_empty());
    if password.is_none() {
        eprintln!("Warning: {PASSWORD_ENV} is not set; the superuser has an unusable password.");
    }
    create(db, username, email, password).await
}

async fn interactive(db: &bazaar_kit::Db, args: Args) -> anyhow::Result<ExitCode> {
    let mut given = args.username;
    let username = loop {
        let raw = match given.take() {
            Some(u) => u,
            None => read_line("Username: ")?,
        };
        match admin::check_username(db, &raw).await {
            Ok(u) => break u,
            Err(e) => eprintln!("Error: {e}"),
        }
    };
    let mut given = args.email;
    let email = loop {
        let raw = match given.take() {
            Some(e) => e,
            None => read_line("Email address: ")?,
        };
        match admin::check_email(db, &raw).await {
            Ok(e) => break e,
            Err(e) => eprintln!("Error: {e}"),
        }
    };
    let password = loop {
        let first = read_password("Password: ")?;
        let second = read_password("Password (again): ")?;
        if first != second {
            eprintln!("Error: Your passwords didn't match.");
            continue;
        }
        if first.trim().is_empty() {
            eprintln!("Error: Blank passwords aren't allowed.");
            continue;
        }
        let problems = accounts::password_errors(&first, username.as_str(), email.as_str());
        if problems.is_empty() {
            break first;
        }
        eprintln!("{}", problems.join("\n"));
        let answer = read_line("Bypass password validation and create user anyway? [y/N]: ")?;
        if answer.trim().eq_ignore_ascii_case("y") {
            break first;
        }
    };
    create(db, username, email, Some(password)).await
}

async fn create(
    db: &bazaar_kit::Db,
    username: bazaar_identity::domain::Username,
    email: bazaar_identity::domain::Email,
    password: Option<String>,
) -> anyhow::Result<ExitCode> {
    match admin::create_superuser(db, username, email, password).await {
        Ok(_) => {
            println!("Superuser created successfully.");
            Ok(ExitCode::SUCCESS)
        }
        Err(bazaar_identity::error::IdentityError::Validation(errors)) => {
            for (field, messages) in errors {
                eprintln!("Error: {field}: {}", messages.join(" "));
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(anyhow::anyhow!("creating the superuser: {e}")),
    }
}
