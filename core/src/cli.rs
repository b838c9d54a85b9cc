//! Command line of the `loyalty` binary.

use crate::config::Settings;
use crate::{AppState, demo, http};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "loyalty",
    version,
    about = "White-label loyalty platform server"
)]
struct Cli {
    /// Configuration file (default: ./loyalty.toml when it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the GraphQL server (applies pending migrations first).
    Serve {
        /// Create a demo club if there is none and print a key and a request to try.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Background jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Points ledger tools.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
}

#[derive(Subcommand, Debug)]
enum JobsCommand {
    /// Unlock due pending points and expire due lots until nothing is due, then exit.
    RunOnce,
}

#[derive(Subcommand, Debug)]
enum LedgerCommand {
    /// Check the ledger's invariants; exits 1 and lists the violations if any is broken.
    Audit,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: configuration: {e:#}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Config => match settings.redacted_toml() {
            Ok(t) => {
                print!("{t}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            ExitCode::SUCCESS
        }
        command => {
            init_tracing(&settings);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(command, settings)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_tracing(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if settings.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            let db = crate::db::Db::connect(&settings.database).await?;
            db.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve { demo } => {
            let listen = settings.server.listen.clone();
            let shutdown = http::shutdown_signal()?;
            let (app, generated) = AppState::start(settings).await?;
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            let addr = listener.local_addr()?;
            println!("GraphiQL:     http://{addr}/graphql");
            match &generated {
                Some(key) => println!(
                    "Platform key: {key}\n              (shown once; stored hashed. Set auth.platform_key to choose your own.)"
                ),
                None => println!("Platform key: printed on first start, or auth.platform_key"),
            }
            if demo {
                demo::ensure_demo(&app, addr).await?;
            }
            http::serve(listener, app, shutdown).await
        }
        Command::Jobs {
            command: JobsCommand::RunOnce,
        } => {
            let (app, _) = AppState::start(settings).await?;
            let batch = app.settings.jobs.batch_max;
            let r =
                crate::ledger::jobs::run_until_idle(&app.db, batch, 10_000, crate::clock::now())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}: {e:?}"))?;
            println!("unlocked {} lots, expired {} lots", r.unlocked, r.expired);
            Ok(())
        }
        Command::Ledger {
            command: LedgerCommand::Audit,
        } => {
            let (app, _) = AppState::start(settings).await?;
            let violations = crate::ledger::audit::audit(&app.db)
                .await
                .map_err(|e| anyhow::anyhow!("{e}: {e:?}"))?;
            if violations.is_empty() {
                println!("ledger audit: ok (7 invariants hold)");
                return Ok(());
            }
            for v in &violations {
                println!("invariant {}: {}", v.invariant, v.detail);
            }
            anyhow::bail!("ledger audit: {} violations", violations.len())
        }
        Command::Config | Command::Schema => Ok(()),
    }
}
