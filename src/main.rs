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
        Some(Command::Run(args)) => run(&cli.config, &args),
        None => run(&cli.config, &cli.run),
    }
}

fn check_config(path: &std::path::Path) -> std::process::ExitCode {
    match load_all(path, &Overrides::default()) {
        Ok(l) => {
            println!(
                "{}: OK ({} numbers, {} IVR menus, {} prompts in {} languages)",
                path.display(),
                l.config.numbers.len(),
                l.ivr.menu_names().len(),
                l.ivr.prompt_names().len(),
                l.config.languages.len()
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let server = Server::start(loaded, ServerOptions::default()).await?;
        eprintln!(
            "centralita: SIP on {}, HTTP on http://{}",
            server.sip_addr, server.http_addr
        );
        wait_for_signal().await;
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

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
