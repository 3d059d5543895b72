//! Wiring: load everything (config, IVR, sounds), then start the media
//! clock, the SIP stack, the calls and the HTTP listener; and stop them in
//! order on shutdown.

pub mod overload;

use crate::acd::driver::{acd_config, AgentStatus, Switchboard};
use crate::acd::lines::LineCapacity;
use crate::call::driver::CallParts;
use crate::call::{CallContext, CallSettings, Calls};
use crate::config::{Overrides, RuntimeConfig};
use crate::ivr::IvrScript;
use crate::media::clock::{ClockCommand, MediaClock};
use crate::media::ports::PortPool;
use crate::media::prompts::PromptLibrary;
use crate::metrics::Metrics;
use crate::sip::accounts::Accounts;
use crate::sip::{SipStack, StackOptions};
use crate::tickets::{Millis, SqliteStore, TicketStore};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A problem found while loading: each names its file (and key where
/// there is one); `check-config` prints them all.
#[derive(Debug, thiserror::Error)]
pub enum LoadProblem {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Ivr(#[from] crate::ivr::IvrLoadError),
    #[error(transparent)]
    Prompt(#[from] crate::media::prompts::PromptError),
    #[error("{file}: numbers.{number}: menu {menu:?} is not defined in {ivr_dir}")]
    UnknownMenu {
        file: String,
        number: String,
        menu: String,
        ivr_dir: String,
    },
    #[error("{file}: acd.callback_trunk: menu {menu:?} calls back a number the caller types, which needs a trunk (e.g. callback_trunk = \"sip:192.0.2.1:5060\")")]
    NoCallbackTrunk { file: String, menu: String },
    #[error("knowledge base: {0}")]
    Kb(#[from] crate::kb::KbError),
}

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{file}: the agents and queues: {source}")]
    Acd {
        file: String,
        #[source]
        source: crate::acd::AcdConfigError,
    },
    #[error("cannot start the media clock: {0}")]
    MediaClock(#[source] std::io::Error),
    #[error("{0}")]
    Store(#[source] crate::tickets::StoreError),
    #[error("cannot listen for {what} on {addr}: {source}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Everything read from disk, validated.
pub struct Loaded {
    pub config: RuntimeConfig,
    pub ivr: Arc<IvrScript>,
    pub feature_ivr: Arc<IvrScript>,
    pub prompts: Arc<PromptLibrary>,
    pub kb: Arc<crate::kb::Kb>,
}

/// Load the config, every IVR file and every sound they name. Returns every
/// problem found, each naming its file (and key where there is one).
pub fn load_all(config_path: &Path, ov: &Overrides) -> Result<Loaded, Vec<LoadProblem>> {
    let config = RuntimeConfig::load(config_path, ov)
        .map_err(|es| es.into_iter().map(LoadProblem::from).collect::<Vec<_>>())?;
    let mut problems = Vec::new();
    let ivr = match IvrScript::load_dir(&config.ivr_dir) {
        Ok(s) => Some(s),
        Err(es) => {
            problems.extend(es.into_iter().map(LoadProblem::from));
            None
        }
    };
    let Some(ivr) = ivr else {
        return Err(problems);
    };
    for (number, menu) in &config.numbers {
        if !ivr.has_menu(menu) {
            problems.push(LoadProblem::UnknownMenu {
                file: config.config_file.display().to_string(),
                number: number.clone(),
                menu: menu.clone(),
                ivr_dir: config.ivr_dir.display().to_string(),
            });
        }
    }
    if config.callback_trunk().is_none() {
        for menu in ivr.typed_callback_menus() {
            problems.push(LoadProblem::NoCallbackTrunk {
                file: config.config_file.display().to_string(),
                menu: menu.to_string(),
            });
        }
    }
    // The IVR's prompts, the agents' feature-code prompts, and the spoken
    // numbers 0-99 that queue announcements use, in every language.
    let feature_ivr = crate::call::feature_script()
        .map_err(|es| es.into_iter().map(LoadProblem::from).collect::<Vec<_>>())?;
    let mut names = ivr.prompt_names();
    names.extend(feature_ivr.prompt_names());
    names.extend(crate::call::QUEUE_PROMPTS.iter().map(|p| p.to_string()));
    for q in config.queues.values() {
        for fb in [&q.on_max_wait, &q.on_no_agents] {
            if let crate::acd::Fallback::MessageAndHangup { prompt } = fb {
                names.insert(prompt.clone());
            }
        }
    }
    names.extend((0..100).map(|n| format!("numbers/{n}")));
    let extra = vec![
        (
            "hold_music".to_string(),
            format!("{}.wav", config.hold_music),
        ),
        ("ringback".to_string(), "music/ringback.wav".to_string()),
    ];
    let prompts = match PromptLibrary::load(&config.sounds_dir, &config.languages, &names, &extra) {
        Ok(p) => Some(p),
        Err(es) => {
            problems.extend(es.into_iter().map(LoadProblem::from));
            None
        }
    };
    let kb = match crate::kb::Kb::load(&config.kb_dir) {
        Ok(kb) => Some(kb),
        Err(es) => {
            problems.extend(es.into_iter().map(LoadProblem::from));
            None
        }
    };
    match (prompts, kb, problems.is_empty()) {
        (Some(prompts), Some(kb), true) => Ok(Loaded {
            config,
            ivr: Arc::new(ivr),
            feature_ivr: Arc::new(feature_ivr),
            prompts: Arc::new(prompts),
            kb: Arc::new(kb),
        }),
        _ => Err(problems),
    }
}

/// Test and benchmark knobs that are not operator configuration.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Shortened SIP T1 (tests of retransmission timing).
    pub sip_t1: Option<Duration>,
}

/// A running controller.
pub struct Server {
    pub sip_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub metrics: Metrics,
    store: Arc<SqliteStore>,
    store_options: crate::tickets::sqlite::StoreOptions,
    ctx: Arc<CallContext>,
    stack: Arc<SipStack>,
    cancel: CancellationToken,
    clock: MediaClock,
    clock_threads: Vec<std::thread::JoinHandle<()>>,
    switchboard: Switchboard,
    overload: Arc<crate::server::overload::Overload>,
}

impl Server {
    pub async fn start(loaded: Loaded, opts: ServerOptions) -> Result<Server, StartError> {
        let Loaded {
            config,
            ivr,
            feature_ivr,
            prompts,
            kb,
        } = loaded;
        let thresholds: Vec<f64> = config
            .queues
            .values()
            .map(|q| f64::from(q.service_level_secs))
            .collect();
        let metrics = Metrics::with_thresholds(&thresholds);
        metrics.lines.set(i64::from(config.acd.lines));
        metrics.lines_reserved.set(i64::from(config.acd.reserve));
        let cancel = CancellationToken::new();
        let events = crate::events::EventBus::new();
        // The ticket store first: without it no call can be taken. Calls a
        // crash (or a stop) left up are closed `interrupted` before any new one.
        let store =
            SqliteStore::open(&config.store, metrics.store.clone()).map_err(StartError::Store)?;
        let interrupted = store
            .interrupt_unfinished(Millis::now())
            .await
            .map_err(StartError::Store)?;
        if !interrupted.is_empty() {
            tracing::warn!(
                tickets = interrupted.len(),
                "calls left up by the last stop closed as interrupted"
            );
        }
        let store = Arc::new(store);
        let shards = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        let (clock, clock_threads) =
            MediaClock::start(metrics.clone(), shards).map_err(StartError::MediaClock)?;
        let ports = PortPool::new(
            config.rtp_ports,
            config.sip_listen.ip(),
            metrics.rtp_ports_in_use.clone(),
        );
        let guard = crate::sip::guard::Guard::new(config.limits.clone(), metrics.clone());
        tokio::spawn(Arc::clone(&guard).run(cancel.child_token()));
        let (accounts, presence) = Accounts::new(&config, metrics.clone(), Arc::clone(&guard));
        let (callbacks_tx, callbacks_rx) = tokio::sync::mpsc::unbounded_channel();
        // The trunk's lines: one owner, shared by callers and callbacks.
        let lines = LineCapacity::new(
            config.acd.lines,
            config.acd.reserve,
            Some(metrics.line_gauges()),
        );
        let switchboard = Switchboard::start(
            acd_config(&config),
            Arc::clone(&accounts),
            callbacks_tx,
            metrics.clone(),
            presence,
            cancel.clone(),
            Arc::clone(&lines),
            Arc::clone(&store) as Arc<dyn TicketStore>,
            events.clone(),
        )
        .map_err(|source| StartError::Acd {
            file: config.config_file.display().to_string(),
            source,
        })?;
        // A 200 OK waits 64·T1 for its ACK (RFC 3261 §13.3.1.4).
        let t1 = opts.sip_t1.unwrap_or(Duration::from_millis(500));
        let settings = Arc::new(CallSettings {
            config: config.clone(),
            ivr,
            feature_ivr,
            ack_timeout: t1 * 64,
        });
        let ctx = CallContext::new(CallParts {
            settings,
            switchboard: switchboard.clone(),
            prompts,
            clock: clock.clone(),
            ports,
            metrics: metrics.clone(),
            lines,
            shutdown: cancel.child_token(),
            store: Arc::clone(&store) as Arc<dyn TicketStore>,
            events: events.clone(),
        });
        let overload = Arc::new(crate::server::overload::Overload::default());
        overload.spawn_monitor(metrics.clone(), cancel.clone());
        let stack_opts = StackOptions {
            advertise: config.advertise,
            user_agent: config.user_agent.clone(),
            refuse_user_agents: config.refuse_user_agents.clone(),
            retry_after_secs: config.retry_after_secs,
            t1: opts.sip_t1,
            overload: Arc::clone(&overload),
            guard: Arc::clone(&guard),
        };
        tokio::spawn(crate::call::callback::run_callbacks(
            Arc::clone(&ctx),
            callbacks_rx,
        ));
        let handler = Arc::new(Calls(Arc::clone(&ctx)));
        let stack = SipStack::start(
            config.sip_listen,
            stack_opts,
            metrics.clone(),
            handler,
            accounts,
            cancel.clone(),
        )
        .await
        .map_err(|source| StartError::Listen {
            what: "SIP",
            addr: config.sip_listen,
            source,
        })?;
        let stack = Arc::new(stack);
        let _ = ctx.sip.set(Arc::clone(&stack));
        let http_error = |source| StartError::Listen {
            what: "HTTP",
            addr: config.http_listen,
            source,
        };
        let listener = tokio::net::TcpListener::bind(config.http_listen)
            .await
            .map_err(http_error)?;
        let http_addr = listener.local_addr().map_err(http_error)?;
        let _ = ctx.http_addr.set(http_addr);
        let app = crate::http::router(crate::http::HttpParts {
            metrics: metrics.clone(),
            overload: Arc::clone(&overload),
            live: Arc::clone(&ctx.live),
            switchboard: switchboard.clone(),
            store: Arc::clone(&store),
            readers: Arc::new(crate::tickets::sqlite::ReaderPool::new(&config.store.path)),
            auth: Arc::new(crate::http::auth::Auth::new(&config)),
            events: events.clone(),
            desk: crate::http::DeskConfig::from_config(&config),
            kb,
            guard: Arc::clone(&guard),
        });
        crate::http::spawn_queue_ticker(switchboard.clone(), events.clone(), cancel.clone());
        if let Some(target) = config.cti.clone() {
            let names = config
                .agents
                .iter()
                .map(|(id, a)| (id.clone(), a.name.clone()))
                .collect();
            tracing::info!(receiver = %target.addr, "helpdesk webhooks (Zammad CTI) on");
            crate::helpdesk::start(target, &events, names, metrics.clone(), cancel.clone());
        }
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let http_cancel = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { http_cancel.cancelled().await })
                .await;
        });
        tracing::info!(sip = %stack.local_addr, http = %http_addr, "centralita is taking calls");
        Ok(Server {
            sip_addr: stack.local_addr,
            http_addr,
            metrics,
            store,
            store_options: config.store.clone(),
            ctx,
            stack,
            cancel,
            clock,
            clock_threads,
            switchboard,
            overload,
        })
    }

    /// An agent's state (from the one state machine, in the ACD).
    /// Refuse new calls with 503 as if overloaded (or stop doing so).
    pub fn force_overload(&self, on: bool) {
        self.overload.force(on);
    }

    pub async fn agent_status(&self, agent: &str) -> Option<AgentStatus> {
        self.switchboard.status(agent).await
    }

    /// Dialogs rsipstack holds: back to 0 once every call has ended (a leak
    /// would show here).
    pub fn sip_dialogs(&self) -> usize {
        self.stack.dialog_count()
    }

    /// Stop taking calls (503), send BYE to the active ones, and stop —
    /// without waiting for transaction timers. Bounded to a few seconds.
    pub async fn shutdown(mut self) {
        self.stack.stop_accepting();
        self.ctx.shutdown.cancel();
        self.ctx.tracker.close();
        if tokio::time::timeout(Duration::from_secs(3), self.ctx.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some calls did not end within 3 s");
        }
        self.stack.shutdown();
        self.cancel.cancel();
        self.clock.send(ClockCommand::Shutdown);
        let threads = std::mem::take(&mut self.clock_threads);
        let _ =
            tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join())))
                .await;
        // What the calls wrote as they ended is committed before the store stops.
        let store = Arc::clone(&self.store);
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }

    /// Where the ticket store is (its database and key).
    pub fn store_options(&self) -> &crate::tickets::sqlite::StoreOptions {
        &self.store_options
    }

    /// Whether the ticket store failed its last commit.
    pub fn store_failing(&self) -> bool {
        self.store.failing()
    }
}
