//! `tessera serve`: build the app, listen, and shut down gracefully on SIGINT/SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::clock::SystemClock;
use crate::config::Config;

pub async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let listen = config.server.listen;
    let metrics_listen = config.metrics.address().map_err(anyhow::Error::msg)?;
    let open_files = raise_open_file_limit();
    let limits = crate::http::serve::Limits::from_config(&config.server)
        .within_open_files(open_files, config.database.max_connections);
    if limits.max_connections < config.server.max_connections {
        tracing::warn!(
            configured = config.server.max_connections,
            used = limits.max_connections,
            open_files,
            "server.max_connections lowered to stay below the open-file limit (raise LimitNOFILE)"
        );
    }
    let grace = Duration::from_secs(config.server.request_timeout_secs.saturating_add(5));
    let data_dir = config.data_dir.clone();
    let key_file = config.key_file();
    let (app, startup) = crate::build(config, Arc::new(SystemClock)).await?;
    app.use_writer_chains();
    if startup.created_data_dir {
        tracing::info!(path = %data_dir.display(), "created data directory");
    }
    if startup.created_key_file {
        tracing::info!(
            path = %key_file.display(),
            "created encryption key file (mode 0600): back it up with the database"
        );
    }
    tracing::info!(database = %startup.database, "database ready");
    if let Some((username, password)) = app.service.create_first_admin().await? {
        // Shown once, on the terminal only (never through the log, which may be shipped).
        eprintln!(
            "\n  Tessera created the first admin account.\n\n    username: {username}\n    password: {}\n\n  \
             This password is shown only now. Log in with it and change it:\n    \
             tessera user passwd {username}\n",
            password.expose()
        );
    }
    crate::service::housekeeping::start(&app.service);
    crate::service::keys::start_follower(&app.service);
    if let Some(addr) = metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (metrics.listen)"))?;
        tracing::info!(address = %listener.local_addr()?, "metrics at /metrics");
        let router = crate::http::metrics_router(app.service.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    // Kept until the HTTP server stops: dropping it stops RADIUS.
    let _radius = crate::radius::start(app.service.clone()).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        max_connections = limits.max_connections,
        open_files,
        "listening"
    );
    let drain = Duration::from_secs(app.service.config().server.drain_secs);
    let service = app.service.clone();
    let shutdown = async move {
        shutdown_signal().await;
        // Taken out of the load balancer first (readiness fails), still serving meanwhile;
        // then the listener closes and requests in flight finish.
        service.start_draining();
        if !drain.is_zero() {
            tracing::info!(seconds = drain.as_secs(), "draining: /readyz answers 503");
            tokio::time::sleep(drain).await;
        }
    };
    crate::http::serve::serve(listener, app.router(), limits, shutdown, grace).await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Raises the soft limit of open files to the hard limit (the most an unprivileged process may
/// ask for) and returns the soft limit now in force; `u64::MAX` where there is no such limit.
fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            let current =
                rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
            tracing::warn!(error = %e, open_files = current, "cannot raise the open-file limit");
            current
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
