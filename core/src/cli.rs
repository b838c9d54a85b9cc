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
    /// Configuration file (default: ./loyalty.toml when it exists). Goes before the command
    /// (`loyalty --config FILE serve`); `plugin run --config` is the plugin's config.
    #[arg(long)]
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
    /// Plugin author tools: scaffold, build and run a plugin locally.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Subcommand, Debug)]
enum PluginCommand {
    /// Write a new plugin crate that builds against this repository's SDK.
    New {
        /// Crate and plugin name: a-z, 0-9 and -, starting with a letter.
        name: String,
        /// point-rule, reward-type or referral-scheme.
        #[arg(long, default_value = "point-rule")]
        kind: String,
        /// Directory to write the crate into (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The SDK crate to depend on (default: the SDK of the repository this binary was
        /// built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin crate for wasm32-unknown-unknown and encode the component; prints its path.
    Build {
        /// The plugin crate's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run a component once under the production limits ([plugins] settings) and report its
    /// output, fuel, memory peak and time. Exits 1 when the plugin fails.
    Run {
        /// The component (.wasm).
        file: PathBuf,
        /// The input record of the plugin's kind, as JSON (its `config` field is replaced).
        #[arg(long)]
        input: PathBuf,
        /// The plugin config, as JSON (default: `{}`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
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
        Command::Plugin { command } => match plugin(command, &settings) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
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
            let r = crate::jobs::run_once(&app, app.db.now())
                .await
                .map_err(|e| anyhow::anyhow!("{e}: {e:?}"))?;
            println!(
                "unlocked {} lots, expired {} lots, recorded {} birthday events, expired {} \
                 redemption codes, ran {} tier reviews ({} moved a member), re-evaluated {} \
                 members after a ladder change",
                r.ledger.unlocked,
                r.ledger.expired,
                r.birthdays,
                r.codes_expired,
                r.tiers.reviewed,
                r.tiers.moved,
                r.tiers.reevaluated
            );
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
        Command::Config | Command::Schema | Command::Plugin { .. } => Ok(()),
    }
}

/// The SDK of the repository this binary was built from.
fn default_sdk_path() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk"))
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

fn plugin(command: PluginCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    use loyalty_plugin_host as host;
    match command {
        PluginCommand::New {
            name,
            kind,
            dir,
            sdk,
        } => {
            let kind: host::PluginKind = kind.parse().map_err(anyhow::Error::msg)?;
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let sdk = sdk.unwrap_or_else(default_sdk_path);
            let manifest = host::scaffold(&name, kind, &dir, &sdk)?;
            println!("created {}", manifest.display());
            println!("next:    loyalty plugin build {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Build { dir } => {
            let component = host::build(&dir)?;
            println!("{}", component.display());
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Run {
            file,
            input,
            config,
            json,
        } => {
            let wasm = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let input = read(&input)?;
            let config = match config {
                Some(path) => read(&path)?,
                None => "{}".to_string(),
            };
            let host = host::PluginHost::new(settings.plugins.clone())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let report = host::run(&host, &wasm, &input, &config)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(if report.failure.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
