//! `tessera serve`: build the app, listen, and shut down gracefully on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::clock::SystemClock;
use crate::config::Config;

pub async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let listen = config.server.listen;
    let data_dir = config.data_dir.clone();
    let key_file = config.key_file();
    let (app, startup) = crate::build(config, Arc::new(SystemClock)).await?;
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
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    axum::serve(
        listener,
        app.router()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("server failed")?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
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
