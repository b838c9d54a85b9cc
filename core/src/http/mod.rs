//! HTTP edge: router, GraphQL transport, health checks, graceful shutdown.
//!
//! `POST /graphql` takes a JSON GraphQL request; `GET /graphql?query=...` runs queries (never
//! mutations, as the GraphQL-over-HTTP spec requires) and, without a query, serves GraphiQL to
//! browsers. `/healthz` answers while the process runs; `/readyz` only while the database
//! answers too. Tests call [`launch`] with a listener on `127.0.0.1:0`.

mod documents;
mod graphql;

use crate::AppState;
use crate::config::Settings;
use crate::graphql::{AppSchema, build_checked_schema, build_schema};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct HttpState {
    pub(crate) app: AppState,
    pub(crate) schema: AppSchema,
    /// The schema in fast validation mode, for documents already checked (`documents`).
    pub(crate) checked_schema: AppSchema,
    pub(crate) documents: std::sync::Arc<documents::Documents>,
}

/// The whole router, callable from tests without a socket.
pub fn router(app: AppState) -> Router {
    let schema = build_schema(Some(app.clone()), &app.settings.api);
    let checked_schema = build_checked_schema(app.clone(), &app.settings.api);
    let body_max = app.settings.api.body_bytes_max;
    let timeout = Duration::from_secs(app.settings.server.request_timeout_s);
    let documents = std::sync::Arc::new(documents::Documents::new(&app.settings.api));
    let state = HttpState {
        app,
        schema,
        checked_schema,
        documents,
    };
    Router::new()
        .route(
            "/graphql",
            get(graphql::graphql_get).post(graphql::graphql_post),
        )
        .route("/", get(|| async { Redirect::temporary("/graphql") }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(body_max))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    if s.app.db.ping().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish for at most
/// `server.shutdown_grace_s` seconds.
pub async fn serve(
    listener: TcpListener,
    app: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grace = Duration::from_secs(app.settings.server.shutdown_grace_s);
    let db = app.db.clone();
    let (background_stop, background_rx) = tokio::sync::watch::channel(false);
    let jobs = app
        .settings
        .jobs
        .enabled
        .then(|| crate::jobs::spawn(app.clone(), background_rx.clone()));
    let checkpoint = crate::db::checkpoint::spawn(&app.db, background_rx);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router(app)).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = tx.send(());
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        r = &mut server => r?,
        () = async { let _ = rx.await; tokio::time::sleep(grace).await } => {
            tracing::warn!("in-flight requests did not finish within {grace:?}; stopping anyway");
        }
    }
    let _ = background_stop.send(true);
    if let Some(j) = jobs {
        let _ = j.await;
    }
    if let Some(c) = checkpoint {
        let _ = c.await;
    }
    db.close().await;
    Ok(())
}

/// A started server: its address and, when it was just generated, the platform key.
pub struct Launched {
    pub addr: SocketAddr,
    /// The state the server runs with (tests run jobs and read the database through it).
    pub app: AppState,
    pub generated_platform_key: Option<String>,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Connects, migrates, ensures the platform key and serves on `listener` in a task.
pub async fn launch(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Launched> {
    launch_with_clock(settings, crate::clock::Clock::system(), listener, shutdown).await
}

/// [`launch`] with another clock (tests drive a manual one).
pub async fn launch_with_clock(
    settings: Settings,
    clock: crate::clock::Clock,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Launched> {
    let (app, generated_platform_key) = AppState::start_with_clock(settings, clock).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(serve(listener, app.clone(), shutdown));
    Ok(Launched {
        addr,
        app,
        generated_platform_key,
        task,
    })
}

/// A future that resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so a signal sent right after start-up is
/// never lost to the default action.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
