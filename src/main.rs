//! The `centralita` command: `run` (the default) starts the controller;
//! `check-config` loads the config, every IVR file and every sound, prints
//! every problem and exits 1 if there is any.

use anyhow::Context;
use centralita::config::{Overrides, PortRange};
use centralita::server::{load_all, Server, ServerOptions};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "centralita",
    version,
    about = "Call-center controller: SIP IVR, ACD, tickets"
)]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, default_value = "config/centralita.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Start the controller (the default).
    Run(RunArgs),
    /// Check the config, every IVR file and every sound; exit 1 on any problem.
    CheckConfig,
    /// Read the tickets (while the server runs or not).
    #[command(subcommand)]
    Tickets(TicketsCommand),
    /// The logbook's chain of MACs.
    #[command(subcommand)]
    Logbook(LogbookCommand),
}

#[derive(Subcommand)]
enum TicketsCommand {
    /// Tickets, newest first.
    List {
        /// open, in_progress, escalated, resolved or closed.
        #[arg(long)]
        status: Option<String>,
        /// A queue one of its calls waited in.
        #[arg(long)]
        queue: Option<String>,
        /// An agent one of its calls was offered to or taken by.
        #[arg(long)]
        agent: Option<String>,
        /// The caller's user part (its number).
        #[arg(long)]
        caller: Option<String>,
        /// Opened since (RFC 3339, e.g. 2026-12-01T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only those past their due time and not resolved.
        #[arg(long)]
        overdue: bool,
        /// 1, 2 or 3 (an on-site visit).
        #[arg(long)]
        level: Option<u8>,
        /// Words people wrote in its logbook (one word is also tried as the
        /// caller's number).
        #[arg(long)]
        text: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// One ticket with its calls and its logbook.
    Show {
        number: String,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LogbookCommand {
    /// Walk every ticket's chain; exit 1 naming each ticket whose history
    /// was edited, deleted, inserted, reordered or cut short.
    Verify {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(clap::Args, Clone, Default)]
struct RunArgs {
    /// SIP listen address (UDP and TCP), e.g. 0.0.0.0:5060.
    #[arg(long)]
    sip_listen: Option<SocketAddr>,
    /// HTTP listen address for /health and /metrics, e.g. 127.0.0.1:8080.
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// RTP port range LOW-HIGH, e.g. 20000-39999.
    #[arg(long)]
    rtp_ports: Option<PortRange>,
    /// Directory for tickets and state.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            sip_listen: self.sip_listen,
            http_listen: self.http_listen,
            rtp_ports: self.rtp_ports,
            data_dir: self.data_dir.clone(),
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn")),
        )
        .init();
    match cli.command {
        Some(Command::CheckConfig) => check_config(&cli.config),
        Some(Command::Tickets(cmd)) => tickets(&cli.config, cmd),
        Some(Command::Logbook(LogbookCommand::Verify { data_dir })) => {
            verify_logbook(&cli.config, data_dir)
        }
        Some(Command::Run(args)) => run(&cli.config, &args),
        None => run(&cli.config, &cli.run),
    }
}

/// The ticket store's files, from the config (and `--data-dir`).
fn store_options(
    config: &std::path::Path,
    data_dir: Option<PathBuf>,
) -> Result<centralita::tickets::sqlite::StoreOptions, std::process::ExitCode> {
    let ov = Overrides {
        data_dir,
        ..Overrides::default()
    };
    match centralita::config::RuntimeConfig::load(config, &ov) {
        Ok(c) => Ok(c.store),
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            Err(std::process::ExitCode::FAILURE)
        }
    }
}

fn tickets(config: &std::path::Path, cmd: TicketsCommand) -> std::process::ExitCode {
    use centralita::tickets::{report, Millis, TicketFilter, TicketNumber, TicketStatus};
    let fail = |msg: String| {
        eprintln!("centralita: {msg}");
        std::process::ExitCode::FAILURE
    };
    match cmd {
        TicketsCommand::List {
            status,
            queue,
            agent,
            caller,
            since,
            overdue,
            level,
            text,
            limit,
            json,
            data_dir,
        } => {
            let store = match store_options(config, data_dir) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let status = match status.as_deref().map(TicketStatus::parse) {
                Some(None) => {
                    return fail(
                        "--status: expected open, in_progress, escalated, resolved or closed"
                            .into(),
                    )
                }
                Some(s) => s,
                None => None,
            };
            let since = match since.as_deref().map(Millis::parse_rfc3339) {
                Some(None) => {
                    return fail(
                        "--since: expected an RFC 3339 time, e.g. 2026-12-01T00:00:00Z".into(),
                    )
                }
                Some(s) => s,
                None => None,
            };
            let filter = TicketFilter {
                status,
                queue,
                agent,
                caller,
                since,
                overdue,
                level,
                text,
                limit,
                ..TicketFilter::default()
            };
            match report::list(&store, &filter, json) {
                Ok(out) => {
                    print!("{out}");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => fail(e.to_string()),
            }
        }
        TicketsCommand::Show {
            number,
            json,
            data_dir,
        } => {
            let store = match store_options(config, data_dir) {
                Ok(s) => s,
                Err(code) => return code,
            };
            let Some(n) = TicketNumber::parse(&number) else {
                return fail(format!("{number:?} is not a ticket number"));
            };
            match report::show(&store, n, json) {
                Ok(Some(out)) => {
                    println!("{out}");
                    std::process::ExitCode::SUCCESS
                }
                Ok(None) => fail(format!("no ticket {n}")),
                Err(e) => fail(e.to_string()),
            }
        }
    }
}

fn verify_logbook(config: &std::path::Path, data_dir: Option<PathBuf>) -> std::process::ExitCode {
    let store = match store_options(config, data_dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match centralita::tickets::report::verify(&store) {
        Ok(Ok(summary)) => {
            println!("{summary}");
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(problems)) => {
            println!("{problems}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("centralita: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn check_config(path: &std::path::Path) -> std::process::ExitCode {
    match load_all(path, &Overrides::default()) {
        Ok(l) => {
            println!(
                "{}: OK ({} numbers, {} IVR menus, {} prompts in {} languages, {} knowledge-base articles)",
                path.display(),
                l.config.numbers.len(),
                l.ivr.menu_names().len(),
                l.ivr.prompt_names().len(),
                l.config.languages.len(),
                l.kb.articles()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!("{} problem(s) found", problems.len());
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(path: &std::path::Path, args: &RunArgs) -> std::process::ExitCode {
    match run_inner(path, args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("centralita: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_inner(path: &std::path::Path, args: &RunArgs) -> anyhow::Result<()> {
    let loaded = match load_all(path, &args.overrides()) {
        Ok(l) => l,
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            anyhow::bail!(
                "{} configuration problem(s); nothing started",
                problems.len()
            );
        }
    };
    // Each call holds a few sockets: the soft limit on open files (often
    // 1,024) would cap the controller at a few hundred calls; the hard one
    // is the operator's word.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < 4096 => tracing::warn!(
            limit = n,
            "few file descriptors allowed: each call holds a few (raise ulimit -n)"
        ),
        Ok(n) => tracing::info!(limit = n, "open files allowed"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        // Listening for the stop signals before anything is said to be up:
        // a SIGTERM right after the start-up line is a clean stop too.
        let stop = stop_signals();
        let server = Server::start(loaded, ServerOptions::default()).await?;
        eprintln!(
            "centralita: SIP on {}, HTTP on http://{}",
            server.sip_addr, server.http_addr
        );
        stop.await;
        tracing::info!("shutting down: refusing new calls, hanging up active ones");
        tokio::time::timeout(Duration::from_secs(4), server.shutdown())
            .await
            .ok();
        anyhow::Ok(())
    })?;
    // Do not wait for lingering transaction timers.
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}

/// A future that completes on Ctrl-C or SIGTERM; both are listened for
/// from the moment this is called.
fn stop_signals() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}
