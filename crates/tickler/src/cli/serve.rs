//! `tickler serve`: the daemon.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tickler::config::{ClockMode, Config, LogFormat};
use tickler::data_dir::DataDir;
use tickler::{Clock, ManualClock, SledStore, Store, SystemClock};
use tokio::sync::Notify;
use tracing_subscriber::EnvFilter;

pub async fn run(
    mut config: Config,
    socket: Option<PathBuf>,
    clock: Option<ClockMode>,
    start: Option<tickler::Timestamp>,
) -> anyhow::Result<()> {
    if let Some(socket) = socket {
        config.socket = Some(socket);
    }
    if let Some(clock) = clock {
        config.clock = clock;
    }
    if let Some(start) = start {
        if config.clock != ClockMode::Manual {
            anyhow::bail!("--start {start} sets where a manual clock starts: add --clock manual");
        }
        config.manual_clock_start = Some(start);
    }
    init_logging(&config);
    // A broken policy, template or seed is reported before anything is created on disk.
    config.catalog()?;
    config.learning_seeds()?;

    // Held for the daemon's life: no offline tool or second daemon opens the store meanwhile.
    let locked = DataDir::create_and_lock(&config.data_dir)?;
    // Up before the store opens, so a prober sees the process alive (`/healthz`) and not yet
    // ready (`/readyz`) while recovery runs.
    let opened = tickler_admin::http::OpenedEngine::default();
    let http_stop = Arc::new(Notify::new());
    if let Some(addr) = config.http_listen {
        let endpoint = tickler_admin::http::bind(addr, config.http_allow_non_loopback).await?;
        tracing::info!(%addr, "serving GET /metrics, /healthz and /readyz");
        tokio::spawn(endpoint.serve(opened.clone(), http_stop.clone()));
    }
    let (store_dir, recovered) = locked.store_to_serve()?;
    if let Some(recovered) = recovered {
        tracing::warn!(data_dir = %config.data_dir.display(), "{recovered}");
    }
    let store: Arc<dyn Store> = Arc::new(
        SledStore::open_with(&store_dir, config.durability.store())
            .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?,
    );
    let clock: Arc<dyn Clock> = match config.clock {
        ClockMode::System => Arc::new(SystemClock),
        // Told where to start, it starts there (or resumes later); else it resumes where the
        // store's last run left it, and a new store starts now.
        ClockMode::Manual => Arc::new(ManualClock::new(match config.manual_clock_start {
            Some(start) => start,
            None => tickler_engine::stored_manual_clock(store.as_ref())?
                .unwrap_or_else(|| SystemClock.now()),
        })),
    };
    let engine = config.open_engine(store, clock).await?;
    let socket = config.socket_path();
    let sockets = bind_sockets(&config).await?;
    opened.opened(engine.clone());
    tracing::info!(
        socket = %socket.display(),
        data_dir = %config.data_dir.display(),
        clock = ?config.clock,
        durability = config.durability.store().name(),
        now = %engine.now(),
        "tickler serving"
    );

    let stop = Arc::new(Notify::new());
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received; shutting down");
            stop.notify_one();
        });
    }
    let dashboard_stop = Arc::new(Notify::new());
    if let Some(addr) = config.dashboard_listen {
        let endpoint =
            tickler_admin::dashboard::bind(addr, config.dashboard_allow_non_loopback).await?;
        let tokens = tickler::dashboard_tokens::TokenFiles::ensure(&config.data_dir)?;
        let dashboard = tickler_admin::dashboard::Dashboard::new(
            engine.clone(),
            Config::command_families(),
            Arc::new(tokens),
        );
        tracing::info!(%addr, "serving the dashboard");
        tokio::spawn(dashboard.serve(endpoint, dashboard_stop.clone()));
    }
    let families = Config::command_families();
    tickler_admin::server::serve(engine.clone(), families, sockets, stop).await;
    http_stop.notify_one();
    dashboard_stop.notify_one();
    engine.shutdown().await?;
    tracing::info!("tickler stopped");
    Ok(())
}

/// The admin socket and, if configured, the application socket.
pub(super) async fn bind_sockets(
    config: &Config,
) -> anyhow::Result<Vec<tickler_admin::server::Socket>> {
    let path = config.socket_path();
    let access = config.socket_access()?;
    if let Some(group) = &config.socket_group
        && !config.operator_groups.contains(group)
        && !config.app_groups.contains(group)
    {
        tracing::warn!(
            socket_group = %group,
            "socket_group lets its members open the admin socket, but gives them no role: \
             list it in operator_groups or app_groups, or they are refused"
        );
    }
    let listener = tickler_admin::server::bind(&path, &access).await?;
    let mut sockets = vec![tickler_admin::server::Socket {
        listener,
        path,
        access,
    }];
    if let Some((path, access)) = config.app_socket_access()? {
        let listener = tickler_admin::server::bind(&path, &access).await?;
        tracing::info!(socket = %path.display(), "serving applications");
        sockets.push(tickler_admin::server::Socket {
            listener,
            path,
            access,
        });
    }
    Ok(sockets)
}

pub(super) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

pub(super) fn init_logging(config: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
