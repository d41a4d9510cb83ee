//! The `sockeye` binary: the default application of `APP-CONTRACT.md`.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Parser as _;
use sockeye_auth::{MintClaims, mint};
use sockeye_broker::AdapterFactory;
use sockeye_server::cluster::ClusterStatus;
use sockeye_server::config::{
    Cli, ClusterSettings, Command, ProcessEnv, Settings, TokenArgs, redact_url,
};
use sockeye_server::{ServerBuilder, build_verifier, logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::resolve(cli.settings, &ProcessEnv) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("sockeye: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Some(Command::Token(args)) => token(&settings, &args),
        _ => run(settings),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sockeye: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `sockeye token --sub NAME --ttl 1h`: one HS256 token on stdout.
fn token(settings: &Settings, args: &TokenArgs) -> anyhow::Result<()> {
    let secret = settings
        .jwt
        .secret
        .as_deref()
        .context("`sockeye token` signs with --jwt-secret (or SOCKEYE_JWT_SECRET): set it")?;
    let token = mint_token(secret.as_bytes(), settings, &args.sub, args.ttl)?;
    println!("{}", token.as_str());
    Ok(())
}

fn mint_token(
    secret: &[u8],
    settings: &Settings,
    sub: &str,
    ttl: Duration,
) -> anyhow::Result<sockeye_auth::Token> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut claims = MintClaims::new(sub, now.saturating_add(ttl.as_secs())).issued_at(now);
    if let Some(issuer) = &settings.jwt.issuer {
        claims = claims.issuer(issuer.clone());
    }
    if let Some(audience) = &settings.jwt.audience {
        claims = claims.audience(audience.clone());
    }
    mint(secret, &claims).context("--jwt-secret cannot sign a token")
}

fn run(mut settings: Settings) -> anyhow::Result<()> {
    logging::init(settings.log_format);
    let dev = !settings.jwt.has_key();
    let mut dev_token = None;
    if dev {
        let secret = random_secret();
        let token = mint_token(
            secret.as_bytes(),
            &settings,
            "dev-user",
            Duration::from_secs(86_400),
        )?;
        settings.jwt.secret = Some(secret);
        dev_token = Some(token.as_str().to_owned());
    }
    let verifier = Arc::new(build_verifier(&settings.jwt)?);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let mut builder = ServerBuilder::from_settings(&settings)
            .verifier(verifier.clone())
            .dev_token(dev_token.clone());
        if let Some(cluster) = &settings.cluster {
            let (factory, status) = connect_cluster(cluster).await?;
            builder = builder.adapter(factory).cluster(status);
        }
        let server = builder.build()?;
        let address = (settings.host.as_str(), settings.port);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on --host {} --port {}",
                    settings.host, settings.port
                )
            })?;
        let local = listener.local_addr()?;
        let scheme = if server.is_tls() { "https" } else { "http" };
        tracing::info!(
            address = %local,
            tls = server.is_tls(),
            algorithms = ?verifier.algorithms(),
            "sockeye listening"
        );
        if verifier.jwks_key_counts().is_some() {
            tokio::spawn(reload_jwks(verifier.clone()));
        }
        if server.is_tls() {
            tokio::spawn(server.clone().reload_tls_on_sighup());
        }
        if let Some(token) = &dev_token {
            let host = match local.ip() {
                ip if ip.is_unspecified() => "localhost".to_owned(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            let url = format!("{scheme}://{host}:{}/", local.port());
            print_dev_banner(&url, token);
        }
        server.serve(listener, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    Ok(())
}

/// Connects to the cluster's Redis (`--redis-url`): the adapter of every namespace and what
/// `/readyz` and `/metrics` read. Fails when Redis cannot be reached at start.
async fn connect_cluster(
    cluster: &ClusterSettings,
) -> anyhow::Result<(AdapterFactory, Arc<dyn ClusterStatus>)> {
    tracing::info!(
        redis = %redact_url(&cluster.redis_url),
        mode = cluster.mode.as_str(),
        key_prefix = %cluster.key_prefix,
        "joining the cluster"
    );
    let redis =
        sockeye_redis::RedisCluster::connect(sockeye_server::cluster::redis_config(cluster))
            .await
            .map_err(|e| anyhow::anyhow!("--redis-url {}: {e}", redact_url(&cluster.redis_url)))?;
    let factory = redis.adapter_factory();
    let status: Arc<dyn ClusterStatus> = Arc::new(sockeye_server::cluster::RedisStatus(redis));
    Ok((factory, status))
}

fn print_dev_banner(url: &str, token: &str) {
    let line = "=".repeat(78);
    println!("{line}");
    println!("  DEVELOPMENT MODE: NOT FOR PRODUCTION");
    println!("  No JWT key is configured (--jwt-secret, --jwt-public-key or --jwt-jwks), so this");
    println!("  server made a random secret that lives only as long as this process.");
    println!();
    println!("  Example page: {url}");
    println!("  Token (sub \"dev-user\", valid 24 h):");
    println!("  {token}");
    println!("{line}");
    tracing::warn!("development mode: random JWT secret, not for production");
}

fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Re-reads the JWKS file every 5 s (key rotation).
async fn reload_jwks(verifier: Arc<sockeye_auth::Verifier>) {
    let mut interval = tokio::time::interval(Duration::from_secs(5));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let v = verifier.clone();
        match tokio::task::spawn_blocking(move || v.reload_if_changed()).await {
            Ok(Ok(true)) => tracing::info!(keys = ?verifier.jwks_key_counts(), "JWKS reloaded"),
            Ok(Ok(false)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "JWKS reload failed; the previous keys stay"),
            Err(error) => tracing::warn!(%error, "JWKS reload task failed"),
        }
    }
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received");
    }
}
