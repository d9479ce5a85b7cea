//! Start-up and shutdown: open the store, register static tenants, build the
//! shared data path, bind one listener per worker, serve the admin API, and
//! on SIGTERM/SIGINT stop accepting, drain, and flush the usage counts
//! before exiting.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::config::{Config, TlsConfig};
use crate::metrics::Metrics;
use crate::provision::Provisioner;
use crate::proxy::decide::Policy;
use crate::proxy::headers::HeaderNames;
use crate::proxy::listener::{self, ListenerSettings};
use crate::proxy::{signing, DataPath};
use crate::reload::{ConfigSource, PoolsSource, Reloader};
use crate::routing::{self, Router};
use crate::store::{self, Store, StoreError};
use crate::tls::acme::Acme;
use crate::tls::TlsFront;
use crate::traffic::limits::Limiter;
use crate::traffic::usage::flush::Flusher;
use crate::upstream::Pools;

mod signals;
mod warming;
mod workers;

use signals::{spawn_reload_on_hangup, wait_for_signal};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the store: {0}")]
    Store(#[source] StoreError),
    #[error("cannot load the provisioning files: {0}")]
    Provision(#[source] crate::provision::ProvisionError),
    #[error("cannot register static tenant '{id}': {source}")]
    StaticTenant { id: String, source: StoreError },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot set up TLS: {0}")]
    Tls(#[source] crate::tls::TlsError),
    #[error("cannot sign tenant headers: {0}")]
    Signing(#[source] crate::config::ConfigError),
}

/// Runs the gateway until a shutdown signal, then drains and returns.
/// `source` is where the config came from, for reloads.
pub fn run(config: Config, source: ConfigSource) -> Result<(), ServerError> {
    let control = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("control")
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)?;
    control.block_on(serve(config, source))
}

async fn serve(config: Config, source: ConfigSource) -> Result<(), ServerError> {
    let opened = store::open(&config.store, store::OpenMode::CreateIfMissing)
        .await
        .map_err(ServerError::Store)?;
    let shutdown = CancellationToken::new();
    let change_feed = opened.follow_changes(config.store.resync_interval, shutdown.clone());
    let provisioner = match opened.postgres() {
        Some(pg) => Some(Arc::new(
            Provisioner::load(pg.clone(), &config.provisioning).map_err(ServerError::Provision)?,
        )),
        None => None,
    };
    let store = opened.store;
    register_static_tenants(store.as_ref(), &config).await?;
    if config.tls.as_ref().is_some_and(|tls| tls.acme.is_some()) {
        store
            .prepare_certificates()
            .await
            .map_err(ServerError::Store)?;
    }

    let metrics = Arc::new(Metrics::new(
        config.metrics.per_tenant,
        config.metrics.max_tenant_series,
    ));
    let router = Arc::new(Router::new(
        store.clone(),
        &config.cache,
        config.routing.strip_www,
        metrics.clone(),
    ));
    let feed_misses_writes = config.store.kind == crate::config::StoreKind::Postgres
        && config.store.layout == crate::config::StoreLayout::DjangoTenants
        && !config.store.django.change_triggers;
    if config.cache.warm && feed_misses_writes {
        router.table_misses_writes();
    }
    if config.cache.warm {
        warming::start(router.clone());
    }
    let workers = config.worker_threads();
    for warning in config.warnings() {
        tracing::warn!(%warning, "config");
    }
    let pools_source = PoolsSource::resolve(&config, None, &metrics).await;
    let pools = Pools::build(
        &config.pools,
        &config.plan_pools(),
        &config.upstream,
        workers,
        &metrics,
        None,
        &pools_source.resolved,
    );
    if pools.get(None).is_none() {
        tracing::warn!("no `default` pool configured: tenants without a pool will get 503 (use --default-backend)");
    }
    let (workers_tls, acme) = match &config.tls {
        Some(tls) => {
            let on_demand = OnDemandParts {
                store: &store,
                router: &router,
                metrics: &metrics,
            };
            let (bound, acme) = bind_tls(tls, &config, workers, on_demand)?;
            (Some(bound), acme)
        }
        None => (None, None),
    };
    let tls_front = workers_tls.as_ref().map(|(front, _)| front.clone());
    // Another process's change also drops this one's copy of a certificate
    // (reloaded from the store, or refused, at the next handshake).
    let forget_certificate = acme.clone().map(|acme| {
        Box::new(move |domain: &str| acme.forget(domain)) as routing::follow::DomainChanged
    });
    tokio::spawn(routing::follow::follow(
        router.clone(),
        change_feed,
        forget_certificate,
    ));
    let usage = (config.usage.enabled)
        .then(|| Flusher::start(workers, &store, &metrics, config.usage.flush_interval));
    let data_path = Arc::new(DataPath {
        router,
        pools: arc_swap::ArcSwap::from_pointee(pools),
        policy: Policy::from_config(&config.routing),
        names: HeaderNames::from_config(&config.headers),
        signer: arc_swap::ArcSwapOption::new(
            signing::signer_for(&config.headers).map_err(ServerError::Signing)?,
        ),
        metrics,
        limiter: Limiter::new(&config.plans, &config.limits),
        max_request_body: config.limits.max_request_body,
        access_log: config.log.access_log,
        tls: tls_front.clone(),
        usage: usage.as_ref().map(|flusher| flusher.meter().clone()),
        holds: Default::default(),
    });

    let reloader = Reloader::start(source, data_path.clone(), workers, pools_source);
    let (listeners, data_addr) = workers::bind_listeners(config.listen, workers)?;
    let admin_listener = tokio::net::TcpListener::bind(config.admin.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.admin.listen,
            source,
        })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|source| ServerError::Bind {
            addr: config.admin.listen,
            source,
        })?;

    if let Some(acme) = &acme {
        acme.start_renewal(shutdown.clone());
    }
    let settings = ListenerSettings {
        header_read_timeout: config.limits.header_read_timeout,
        drain_timeout: config.shutdown.drain_timeout,
        http1: config.data_path.http1,
    };
    let (mut tls_listeners, https_addr) = match workers_tls {
        Some((_, (listeners, addr))) => (listeners.into_iter().map(Some).collect(), Some(addr)),
        None => (Vec::new(), None),
    };
    tls_listeners.resize_with(workers, || None);
    let threads = workers::spawn(
        listeners,
        tls_listeners,
        &data_path,
        settings,
        &shutdown,
        tls_front,
    )?;

    let admin_state = Arc::new(AdminState {
        store,
        data_path,
        token: config.admin.token.clone(),
        access: admin::guard::AccessRules::new(&config.admin),
        reloader: reloader.clone(),
        provisioner,
        events: crate::provision::events::Events::new(&config.events),
        acme,
        usage: usage.clone(),
    });
    let admin_shutdown = shutdown.clone();
    let admin = tokio::spawn(serve_admin(
        admin_listener,
        admin::app(admin_state),
        settings,
        admin_shutdown,
    ));

    let https = https_addr.map_or(String::new(), |addr| format!(", https://{addr}"));
    println!(
        "tenant-gateway listening on http://{data_addr} (admin http://{admin_addr}{https}, store {}, {workers} workers)",
        store::describe(&config.store)
    );
    tracing::info!(%data_addr, %admin_addr, workers, "ready");

    spawn_reload_on_hangup(reloader.clone());
    wait_for_signal().await;
    reloader.stop().await;
    tracing::info!(drain_timeout = ?config.shutdown.drain_timeout, "shutting down: no new connections, draining");
    shutdown.cancel();
    workers::join(threads).await;
    // Every request has drained (or was cut off): their counts are final.
    if let Some(flusher) = &usage {
        flusher.finish().await;
    }
    let _ = tokio::time::timeout(config.shutdown.drain_timeout, admin).await;
    tracing::info!("stopped");
    Ok(())
}

/// The TLS front (static certificates loaded) and one HTTPS listener per worker.
type TlsListeners = (Arc<TlsFront>, (Vec<std::net::TcpListener>, SocketAddr));

/// What on-demand certificates need besides the TLS front.
struct OnDemandParts<'a> {
    store: &'a Arc<dyn Store>,
    router: &'a Arc<Router>,
    metrics: &'a Arc<Metrics>,
}

/// Builds the TLS front and, with `tls.acme`, the on-demand issuer behind it.
fn bind_tls(
    tls: &TlsConfig,
    config: &Config,
    workers: usize,
    parts: OnDemandParts<'_>,
) -> Result<(TlsListeners, Option<Acme>), ServerError> {
    let mut front = TlsFront::build(tls, config.routing.strip_www).map_err(ServerError::Tls)?;
    let acme = tls.acme.as_ref().map(|acme_config| {
        let acme = Acme::new(
            acme_config.clone(),
            parts.store.clone(),
            parts.router.clone(),
            &front,
            parts.metrics.clone(),
        );
        front.set_on_demand(Arc::new(acme.clone()), parts.store.clone());
        acme
    });
    let (listeners, addr) = workers::bind_listeners(tls.listen, workers)?;
    front.https_port = addr.port();
    Ok(((Arc::new(front), (listeners, addr)), acme))
}

/// Creates static tenants that are missing and adds their missing domains.
async fn register_static_tenants(store: &dyn Store, config: &Config) -> Result<(), ServerError> {
    let rules = config.spec_rules();
    for spec in &config.tenants {
        let err = |source| ServerError::StaticTenant {
            id: spec.id.clone(),
            source,
        };
        // Config validation already accepted every static tenant.
        let Ok(tenant) = spec.clone().validate(&rules) else {
            continue;
        };
        match store.get_tenant(&tenant.id).await.map_err(err)? {
            None => {
                store.create_tenant(tenant).await.map_err(err)?;
            }
            Some(existing) => {
                for domain in tenant.domains {
                    if !existing.domains.iter().any(|d| d.domain == domain) {
                        store
                            .add_domain(&tenant.id, domain, false)
                            .await
                            .map_err(err)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Serves the admin API on the data path's accept loop and connection
/// settings (`axum::serve` has no header-read timeout, so a client that
/// never finished its request head could hold an admin connection forever).
async fn serve_admin(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    settings: ListenerSettings,
    shutdown: CancellationToken,
) {
    // HTTP/1.1 only: the API needs nothing else, and without protocol
    // sniffing nothing is read before the header-read timeout applies.
    let builder = Arc::new(listener::http_builder(settings.header_read_timeout).http1_only());
    listener::accept_loop(
        listener,
        settings,
        shutdown,
        move |stream, peer, shutdown| {
            let builder = builder.clone();
            // The Host check also answers to the address this connection was
            // accepted on (a wildcard listener has no single own address).
            let app = match stream.local_addr() {
                Ok(local) => app
                    .clone()
                    .layer(axum::Extension(admin::guard::LocalAddr(local))),
                Err(_) => app.clone(),
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            async move { listener::drive(&builder, stream, service, peer, shutdown).await }
        },
    )
    .await;
}
