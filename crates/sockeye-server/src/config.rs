//! Start-up configuration: command-line flags, `SOCKEYE_*` environment variables and an optional
//! TOML file, resolved once into [`Settings`].
//!
//! Precedence, per setting: flag > environment variable > file > default. `PORT` (what hosting
//! platforms set) counts as an environment variable for `--port`, after `SOCKEYE_PORT`.
//!
//! Every value is checked before the server binds anything; a bad one is a [`ConfigError`] whose
//! message names the setting (`--rate-limit`), so an operator knows what to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use sockeye_auth::Algorithm;

/// The `sockeye` command line.
#[derive(Debug, Parser)]
#[command(
    name = "sockeye",
    version,
    about = "A Socket.IO v5 / Engine.IO v4 server: JWT-authenticated real-time gateway with rooms",
    long_about = "A Socket.IO v5 / Engine.IO v4 server: JWT-authenticated real-time gateway with \
rooms.\n\nEvery setting is a flag, an environment variable (shown in brackets) and a key of the \
TOML file given with --config (the flag's name without the dashes, e.g. `rate-limit = 50`). \
Precedence: flag > environment > file > default. For a limit, 0 turns it off.\n\nWith no JWT \
key configured (--jwt-secret, --jwt-public-key or --jwt-jwks) the server starts in development \
mode: a random secret, a ready token printed, NOT for production."
)]
pub struct Cli {
    /// The settings of the server (also used by `sockeye token`).
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// What to do; without a subcommand the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Mint an HS256 token with the configured --jwt-secret, for local testing.
    Token(TokenArgs),
}

/// `sockeye token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The `sub` claim: the user id other clients see.
    #[arg(long, value_name = "NAME")]
    pub sub: String,
    /// How long the token is valid: seconds, or a number with s, m, h or d (`90s`, `15m`, `1h`,
    /// `7d`).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
}

/// Every server setting as it came from the command line or the environment (clap fills both).
/// `None` means "not given here": the file or the default decides.
#[derive(Debug, Default, Args)]
pub struct SettingsArgs {
    /// A TOML file with settings (keys as the flags without the leading dashes).
    #[arg(long, env = "SOCKEYE_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Address to listen on [default: 0.0.0.0].
    #[arg(long, env = "SOCKEYE_HOST", value_name = "ADDR", global = true)]
    pub host: Option<String>,

    /// Port to listen on; `PORT` is read too, after SOCKEYE_PORT [default: 3000].
    #[arg(
        long,
        env = "SOCKEYE_PORT",
        allow_negative_numbers = true,
        value_name = "PORT",
        global = true
    )]
    pub port: Option<u16>,

    /// Shared secret for HS256/384/512 tokens (at least 32 bytes).
    #[arg(
        long,
        env = "SOCKEYE_JWT_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<String>,

    /// PEM file with the public key for RS*/PS*/ES*/EdDSA tokens.
    #[arg(
        long,
        env = "SOCKEYE_JWT_PUBLIC_KEY",
        value_name = "FILE",
        global = true
    )]
    pub jwt_public_key: Option<PathBuf>,

    /// JWKS file (keys selected by `kid`, reloaded when it changes, for key rotation).
    #[arg(long, env = "SOCKEYE_JWT_JWKS", value_name = "FILE", global = true)]
    pub jwt_jwks: Option<PathBuf>,

    /// Accepted algorithms, comma-separated (HS256, HS384, HS512, RS256, RS384, RS512, PS256,
    /// PS384, PS512, ES256, ES384, EdDSA) [default: HS256 with a secret, the key's family with a
    /// public key]. `none` is never accepted.
    #[arg(
        long,
        env = "SOCKEYE_JWT_ALGORITHMS",
        value_name = "LIST",
        global = true
    )]
    pub jwt_algorithms: Option<String>,

    /// Required `iss` claim.
    #[arg(long, env = "SOCKEYE_JWT_ISSUER", value_name = "ISS", global = true)]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim (the token's `aud` must be or contain it).
    #[arg(long, env = "SOCKEYE_JWT_AUDIENCE", value_name = "AUD", global = true)]
    pub jwt_audience: Option<String>,

    /// Leeway for `exp` and `nbf`, in seconds [default: 0].
    #[arg(
        long,
        env = "SOCKEYE_JWT_LEEWAY",
        allow_negative_numbers = true,
        value_name = "SECONDS",
        global = true
    )]
    pub jwt_leeway: Option<u64>,

    /// Origins allowed cross-origin access, comma-separated (`https://app.example.com`), or `*`
    /// for any (development) [default: none; same-origin pages and clients without Origin always
    /// work].
    #[arg(long, env = "SOCKEYE_CORS_ORIGINS", value_name = "LIST", global = true)]
    pub cors_origins: Option<String>,

    /// PEM certificate chain: serve HTTPS/WSS (needs --tls-key).
    #[arg(long, env = "SOCKEYE_TLS_CERT", value_name = "FILE", global = true)]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, env = "SOCKEYE_TLS_KEY", value_name = "FILE", global = true)]
    pub tls_key: Option<PathBuf>,

    /// Engine.IO maxPayload: the largest packet or polling body in bytes [default: 1000000].
    #[arg(
        long,
        env = "SOCKEYE_MAX_PAYLOAD",
        allow_negative_numbers = true,
        value_name = "BYTES",
        global = true
    )]
    pub max_payload: Option<usize>,

    /// Engine.IO pingInterval in milliseconds [default: 25000].
    #[arg(
        long,
        env = "SOCKEYE_PING_INTERVAL",
        allow_negative_numbers = true,
        value_name = "MS",
        global = true
    )]
    pub ping_interval: Option<u64>,

    /// Engine.IO pingTimeout in milliseconds [default: 20000].
    #[arg(
        long,
        env = "SOCKEYE_PING_TIMEOUT",
        allow_negative_numbers = true,
        value_name = "MS",
        global = true
    )]
    pub ping_timeout: Option<u64>,

    /// Events per second each socket may send; 0 turns rate limiting off [default: 20].
    #[arg(
        long,
        env = "SOCKEYE_RATE_LIMIT",
        allow_negative_numbers = true,
        value_name = "PER_SECOND",
        global = true
    )]
    pub rate_limit: Option<u32>,

    /// Burst of events a socket may send at once; 0 means one second's worth [default: 40].
    #[arg(
        long,
        env = "SOCKEYE_RATE_BURST",
        allow_negative_numbers = true,
        value_name = "EVENTS",
        global = true
    )]
    pub rate_burst: Option<u32>,

    /// Engine.IO sessions per client address; 0 turns the cap off [default: 256].
    #[arg(
        long,
        env = "SOCKEYE_MAX_CONNECTIONS_PER_IP",
        allow_negative_numbers = true,
        value_name = "N",
        global = true
    )]
    pub max_connections_per_ip: Option<u32>,

    /// Longest message `content` in Unicode code points; 0 turns the cap off (maxPayload still
    /// applies) [default: 4096].
    #[arg(
        long,
        env = "SOCKEYE_MAX_CONTENT_LENGTH",
        allow_negative_numbers = true,
        value_name = "CHARS",
        global = true
    )]
    pub max_content_length: Option<usize>,

    /// Take the client address from the last entry of `X-Forwarded-For` (set it only behind a
    /// reverse proxy that sets the header).
    #[arg(
        long,
        env = "SOCKEYE_TRUST_PROXY",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        global = true
    )]
    pub trust_proxy: Option<bool>,

    /// Number of trusted reverse proxies in front of the server: the client address is the
    /// N-th entry of `X-Forwarded-For` counted from the right (each proxy appends the address
    /// it saw; entries further left are whatever the client sent). 0 trusts no header;
    /// `--trust-proxy` alone is 1 [default: 0].
    #[arg(
        long,
        env = "SOCKEYE_TRUST_PROXY_HOPS",
        value_name = "N",
        global = true
    )]
    pub trust_proxy_hops: Option<u32>,

    /// Log format [default: text]. The level comes from RUST_LOG (default `info`).
    #[arg(long, env = "SOCKEYE_LOG_FORMAT", value_name = "FORMAT", global = true)]
    pub log_format: Option<LogFormat>,

    /// Seconds a graceful shutdown (SIGTERM, Ctrl-C) may take before connections are cut
    /// [default: 10].
    #[arg(
        long,
        env = "SOCKEYE_SHUTDOWN_TIMEOUT",
        allow_negative_numbers = true,
        value_name = "SECONDS",
        global = true
    )]
    pub shutdown_timeout: Option<u64>,

    /// Join a cluster on this Redis (`redis://[user:password@]host:port[/db]`): every node on
    /// it, sockeye or Node `socket.io` with `@socket.io/redis-adapter`, shares broadcasts, rooms
    /// and cluster requests [default: none, one node alone].
    #[arg(
        long,
        env = "SOCKEYE_REDIS_URL",
        value_name = "URL",
        hide_env_values = true,
        global = true
    )]
    pub redis_url: Option<String>,

    /// The Redis adapter's format: `classic` (Node's `createAdapter`, PUBLISH/PSUBSCRIBE) or
    /// `sharded` (`createShardedAdapter`, SPUBLISH/SSUBSCRIBE, Redis 7) [default: classic].
    /// Every node of a cluster must use the same.
    #[arg(long, env = "SOCKEYE_REDIS_MODE", value_name = "MODE", global = true)]
    pub redis_mode: Option<RedisModeSetting>,

    /// The prefix of the Redis channels (Node's `key` / `channelPrefix`); every node of a
    /// cluster must use the same [default: socket.io].
    #[arg(
        long,
        env = "SOCKEYE_REDIS_KEY_PREFIX",
        value_name = "PREFIX",
        global = true
    )]
    pub redis_key_prefix: Option<String>,

    /// How long this node waits for the other nodes' answers to a cluster request
    /// (fetchSockets, allRooms, serverSideEmit with ack, the client counts of a broadcast with
    /// ack), in milliseconds (Node's `requestsTimeout`) [default: 5000].
    #[arg(
        long,
        env = "SOCKEYE_CLUSTER_REQUEST_TIMEOUT_MS",
        allow_negative_numbers = true,
        value_name = "MS",
        global = true
    )]
    pub cluster_request_timeout_ms: Option<u64>,
}

/// `--redis-mode`: which of Node's two Redis adapter formats the cluster speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RedisModeSetting {
    /// `createAdapter`: PUBLISH / PSUBSCRIBE on `<prefix>#<nsp>#` channels.
    #[default]
    Classic,
    /// `createShardedAdapter`: SPUBLISH / SSUBSCRIBE, per-room channels subscribed while the
    /// room has local members.
    Sharded,
}

impl RedisModeSetting {
    /// `classic` or `sharded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Sharded => "sharded",
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The TOML file: the same settings, keys spelled as the flags (`rate-limit`; `rate_limit` works
/// too). Unknown keys are refused, so a typo does not go unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileSettings {
    host: Option<String>,
    port: Option<u16>,
    jwt_secret: Option<String>,
    jwt_public_key: Option<PathBuf>,
    jwt_jwks: Option<PathBuf>,
    jwt_algorithms: Option<StringOrList>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    jwt_leeway: Option<u64>,
    cors_origins: Option<StringOrList>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    max_payload: Option<usize>,
    ping_interval: Option<u64>,
    ping_timeout: Option<u64>,
    rate_limit: Option<u32>,
    rate_burst: Option<u32>,
    max_connections_per_ip: Option<u32>,
    max_content_length: Option<usize>,
    trust_proxy: Option<bool>,
    trust_proxy_hops: Option<u32>,
    log_format: Option<LogFormat>,
    shutdown_timeout: Option<u64>,
    redis_url: Option<String>,
    redis_mode: Option<RedisModeSetting>,
    redis_key_prefix: Option<String>,
    cluster_request_timeout_ms: Option<u64>,
}

/// `"HS256,HS512"` or `["HS256", "HS512"]` in the file.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    List(Vec<String>),
}

impl StringOrList {
    fn joined(self) -> String {
        match self {
            Self::One(s) => s,
            Self::List(items) => items.join(","),
        }
    }
}

/// Which cross-origin requests are allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorsOrigins {
    /// None: only same-origin pages and clients that send no `Origin`.
    #[default]
    None,
    /// Any origin (`*`).
    Any,
    /// These origins exactly.
    List(Vec<String>),
}

/// The JWT key material and checks.
#[derive(Clone, Default)]
pub struct JwtSettings {
    /// HS* shared secret.
    pub secret: Option<String>,
    /// PEM public key file.
    pub public_key: Option<PathBuf>,
    /// JWKS file.
    pub jwks: Option<PathBuf>,
    /// Accepted algorithms; `None`: the verifier's default for the keys.
    pub algorithms: Option<Vec<Algorithm>>,
    /// Required issuer.
    pub issuer: Option<String>,
    /// Required audience.
    pub audience: Option<String>,
    /// Leeway for the time claims.
    pub leeway: Duration,
}

impl fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSettings")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("public_key", &self.public_key)
            .field("jwks", &self.jwks)
            .field("algorithms", &self.algorithms)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl JwtSettings {
    /// Whether any key is configured; without one the server runs in development mode.
    pub fn has_key(&self) -> bool {
        self.secret.is_some() || self.public_key.is_some() || self.jwks.is_some()
    }
}

/// A certificate chain and key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// The per-socket event rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: NonZeroU32,
    /// Bucket size.
    pub burst: NonZeroU32,
}

/// Every setting, resolved and checked. Produced by [`Settings::resolve`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Listen address (a name or an IP).
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// JWT verification.
    pub jwt: JwtSettings,
    /// CORS.
    pub cors: CorsOrigins,
    /// TLS, when configured.
    pub tls: Option<TlsFiles>,
    /// Engine.IO maxPayload.
    pub max_payload: NonZeroUsize,
    /// Engine.IO pingInterval.
    pub ping_interval: Duration,
    /// Engine.IO pingTimeout.
    pub ping_timeout: Duration,
    /// Per-socket rate limit; `None` when off.
    pub rate_limit: Option<RateLimit>,
    /// Sessions per client address; `None` when off.
    pub max_connections_per_ip: Option<NonZeroU32>,
    /// Longest `content` in code points; `None` when off.
    pub max_content_length: Option<NonZeroUsize>,
    /// Trust `X-Forwarded-For` (`trust_proxy_hops > 0`).
    pub trust_proxy: bool,
    /// How many trusted proxies append to `X-Forwarded-For` (0: the header is ignored).
    pub trust_proxy_hops: u32,
    /// Log format.
    pub log_format: LogFormat,
    /// Graceful shutdown deadline.
    pub shutdown_timeout: Duration,
    /// The Redis cluster this node joins; `None`: one node alone (`--redis-url` not set).
    pub cluster: Option<ClusterSettings>,
}

/// `--redis-url` and the settings that go with it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterSettings {
    /// The Redis URL (may hold a password: never log it; [`fmt::Debug`] redacts it).
    pub redis_url: String,
    /// The adapter's format.
    pub mode: RedisModeSetting,
    /// The channel prefix.
    pub key_prefix: String,
    /// How long cluster requests wait for the other nodes.
    pub request_timeout: Duration,
}

impl fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("redis_url", &redact_url(&self.redis_url))
            .field("mode", &self.mode)
            .field("key_prefix", &self.key_prefix)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// The URL with its user-info (`user:password@`) replaced by `***@`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The defaults of the contract (and of the reference server for Engine.IO).
pub mod defaults {
    /// `--host`.
    pub const HOST: &str = "0.0.0.0";
    /// `--port`.
    pub const PORT: u16 = 3000;
    /// `--max-payload`.
    pub const MAX_PAYLOAD: usize = 1_000_000;
    /// `--ping-interval`, ms.
    pub const PING_INTERVAL_MS: u64 = 25_000;
    /// `--ping-timeout`, ms.
    pub const PING_TIMEOUT_MS: u64 = 20_000;
    /// `--rate-limit`.
    pub const RATE_LIMIT: u32 = 20;
    /// `--rate-burst`.
    pub const RATE_BURST: u32 = 40;
    /// `--max-connections-per-ip`.
    pub const MAX_CONNECTIONS_PER_IP: u32 = 256;
    /// `--max-content-length`.
    pub const MAX_CONTENT_LENGTH: usize = 4096;
    /// `--shutdown-timeout`, s.
    pub const SHUTDOWN_TIMEOUT_S: u64 = 10;
    /// `--redis-key-prefix` (Node's default `key`).
    pub const REDIS_KEY_PREFIX: &str = "socket.io";
    /// `--cluster-request-timeout-ms` (Node's default `requestsTimeout`).
    pub const CLUSTER_REQUEST_TIMEOUT_MS: u64 = 5000;
}

impl Default for Settings {
    fn default() -> Self {
        Self::resolve(SettingsArgs::default(), &NoEnv).expect("the defaults are valid")
    }
}

/// Where `PORT` is read from (the process environment, or nothing in tests).
pub trait Env {
    /// The variable's value, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// An empty environment.
#[derive(Debug, Clone, Copy)]
pub struct NoEnv;

impl Env for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

impl Settings {
    /// Resolves flags and environment (already in `args`), `PORT` from `env`, and the file named
    /// by `--config`, then checks every value.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first bad setting.
    pub fn resolve(args: SettingsArgs, env: &dyn Env) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let port = match args.port {
            Some(port) => port,
            None => match env.var("PORT").filter(|p| !p.trim().is_empty()) {
                Some(text) => text.trim().parse().map_err(|_| ConfigError::Invalid {
                    setting: "PORT",
                    reason: format!("`{text}` is not a port number (0..=65535)"),
                })?,
                None => file.port.unwrap_or(defaults::PORT),
            },
        };
        let host = args
            .host
            .or(file.host)
            .unwrap_or_else(|| defaults::HOST.to_owned());
        if host.trim().is_empty() {
            return Err(invalid("--host", "must not be empty"));
        }

        let algorithms = match args
            .jwt_algorithms
            .or_else(|| file.jwt_algorithms.map(StringOrList::joined))
        {
            Some(list) => Some(parse_algorithms(&list)?),
            None => None,
        };
        let jwt = JwtSettings {
            secret: args
                .jwt_secret
                .or(file.jwt_secret)
                .filter(|s| !s.is_empty()),
            public_key: args.jwt_public_key.or(file.jwt_public_key),
            jwks: args.jwt_jwks.or(file.jwt_jwks),
            algorithms,
            issuer: args
                .jwt_issuer
                .or(file.jwt_issuer)
                .filter(|s| !s.is_empty()),
            audience: args
                .jwt_audience
                .or(file.jwt_audience)
                .filter(|s| !s.is_empty()),
            leeway: Duration::from_secs(args.jwt_leeway.or(file.jwt_leeway).unwrap_or(0)),
        };
        if let Some(secret) = &jwt.secret
            && secret.len() < sockeye_auth::MIN_SECRET_LEN
        {
            return Err(invalid(
                "--jwt-secret",
                format!(
                    "is {} bytes long; at least {} are required",
                    secret.len(),
                    sockeye_auth::MIN_SECRET_LEN
                ),
            ));
        }
        for (setting, path) in [
            ("--jwt-public-key", &jwt.public_key),
            ("--jwt-jwks", &jwt.jwks),
        ] {
            if let Some(path) = path {
                check_readable(setting, path)?;
            }
        }

        let cors = match args
            .cors_origins
            .or_else(|| file.cors_origins.map(StringOrList::joined))
        {
            Some(list) => parse_cors(&list)?,
            None => CorsOrigins::None,
        };

        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid("--tls-key", "is required with --tls-cert"));
            }
            (None, Some(_)) => {
                return Err(invalid("--tls-cert", "is required with --tls-key"));
            }
            (Some(cert), Some(key)) => {
                check_readable("--tls-cert", &cert)?;
                check_readable("--tls-key", &key)?;
                Some(TlsFiles { cert, key })
            }
        };

        let max_payload = args
            .max_payload
            .or(file.max_payload)
            .unwrap_or(defaults::MAX_PAYLOAD);
        let max_payload = NonZeroUsize::new(max_payload).ok_or_else(|| {
            invalid(
                "--max-payload",
                "must be at least 1: it is announced to every client",
            )
        })?;
        let ping_interval = positive_ms(
            "--ping-interval",
            args.ping_interval
                .or(file.ping_interval)
                .unwrap_or(defaults::PING_INTERVAL_MS),
        )?;
        let ping_timeout = positive_ms(
            "--ping-timeout",
            args.ping_timeout
                .or(file.ping_timeout)
                .unwrap_or(defaults::PING_TIMEOUT_MS),
        )?;

        let rate = args
            .rate_limit
            .or(file.rate_limit)
            .unwrap_or(defaults::RATE_LIMIT);
        let burst = args
            .rate_burst
            .or(file.rate_burst)
            .unwrap_or(defaults::RATE_BURST);
        let rate_limit = NonZeroU32::new(rate).map(|per_second| RateLimit {
            per_second,
            burst: NonZeroU32::new(burst).unwrap_or(per_second),
        });

        let trust_proxy_hops = args
            .trust_proxy_hops
            .or(file.trust_proxy_hops)
            .unwrap_or_else(|| u32::from(args.trust_proxy.or(file.trust_proxy).unwrap_or(false)));
        let max_connections_per_ip = NonZeroU32::new(
            args.max_connections_per_ip
                .or(file.max_connections_per_ip)
                .unwrap_or(defaults::MAX_CONNECTIONS_PER_IP),
        );
        let max_content_length = NonZeroUsize::new(
            args.max_content_length
                .or(file.max_content_length)
                .unwrap_or(defaults::MAX_CONTENT_LENGTH),
        );
        let shutdown_timeout = Duration::from_secs(
            args.shutdown_timeout
                .or(file.shutdown_timeout)
                .unwrap_or(defaults::SHUTDOWN_TIMEOUT_S),
        );

        let cluster = resolve_cluster(
            args.redis_url.or(file.redis_url),
            args.redis_mode.or(file.redis_mode),
            args.redis_key_prefix.or(file.redis_key_prefix),
            args.cluster_request_timeout_ms
                .or(file.cluster_request_timeout_ms),
        )?;

        Ok(Self {
            host,
            port,
            jwt,
            cors,
            tls,
            max_payload,
            ping_interval,
            ping_timeout,
            rate_limit,
            max_connections_per_ip,
            max_content_length,
            trust_proxy: trust_proxy_hops > 0,
            trust_proxy_hops,
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            shutdown_timeout,
            cluster,
        })
    }
}

/// Checks `--redis-url` and its companions: the cluster settings without a URL are refused
/// (they would silently do nothing).
fn resolve_cluster(
    url: Option<String>,
    mode: Option<RedisModeSetting>,
    key_prefix: Option<String>,
    request_timeout_ms: Option<u64>,
) -> Result<Option<ClusterSettings>, ConfigError> {
    let Some(url) = url.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()) else {
        for (setting, given) in [
            ("--redis-mode", mode.is_some()),
            ("--redis-key-prefix", key_prefix.is_some()),
            ("--cluster-request-timeout-ms", request_timeout_ms.is_some()),
        ] {
            if given {
                return Err(invalid(setting, "needs --redis-url (the cluster's Redis)"));
            }
        }
        return Ok(None);
    };
    let valid_url = url.split_once("://").is_some_and(|(scheme, rest)| {
        scheme == "redis" && !rest.is_empty() && !rest.starts_with('/')
    });
    if !valid_url {
        return Err(invalid(
            "--redis-url",
            format!(
                "`{}` is not a URL like redis://127.0.0.1:6379 (rediss:// TLS is not supported)",
                redact_url(&url)
            ),
        ));
    }
    let key_prefix = key_prefix.unwrap_or_else(|| defaults::REDIS_KEY_PREFIX.to_owned());
    if key_prefix.is_empty() {
        return Err(invalid(
            "--redis-key-prefix",
            "must not be empty (Node's nodes use socket.io)",
        ));
    }
    let request_timeout = positive_ms(
        "--cluster-request-timeout-ms",
        request_timeout_ms.unwrap_or(defaults::CLUSTER_REQUEST_TIMEOUT_MS),
    )?;
    Ok(Some(ClusterSettings {
        redis_url: url,
        mode: mode.unwrap_or_default(),
        key_prefix,
        request_timeout,
    }))
}

/// A setting that stops the server at start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is out of range or not understood.
    #[error("invalid {setting}: {reason}")]
    Invalid {
        /// The setting, as its flag (`--rate-limit`).
        setting: &'static str,
        /// What is wrong, without secret values.
        reason: String,
    },
    /// The `--config` file cannot be read or parsed.
    #[error("invalid --config file {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The JWT keys or checks are unusable.
    #[error("invalid {setting}: {source}")]
    Jwt {
        /// The setting at fault (`--jwt-public-key`, `--jwt-algorithms`, ...).
        setting: &'static str,
        /// The verifier's reason.
        #[source]
        source: sockeye_auth::ConfigError,
    },
    /// The TLS certificate or key is unusable.
    #[error("invalid {setting}: {reason}")]
    Tls {
        /// `--tls-cert` or `--tls-key`.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
}

pub(crate) fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// The longest heartbeat setting accepted: JavaScript's `setTimeout` limit (about 24.8 days), which
/// every client's timers must be able to represent.
const MAX_TIMER_MS: u64 = 2_147_483_647;

fn positive_ms(setting: &'static str, ms: u64) -> Result<Duration, ConfigError> {
    if ms == 0 {
        return Err(invalid(setting, "must be at least 1 millisecond"));
    }
    if ms > MAX_TIMER_MS {
        return Err(invalid(
            setting,
            format!("must be at most {MAX_TIMER_MS} milliseconds (what client timers can hold)"),
        ));
    }
    Ok(Duration::from_millis(ms))
}

fn check_readable(setting: &'static str, path: &Path) -> Result<(), ConfigError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(invalid(
            setting,
            format!("{} is not a file", path.display()),
        )),
        Err(error) => Err(invalid(
            setting,
            format!("cannot read {}: {error}", path.display()),
        )),
    }
}

/// Parses `HS256,HS512` (case-insensitive names, spaces allowed).
///
/// # Errors
///
/// `--jwt-algorithms` is named for an empty list, `none` or an unknown name.
pub fn parse_algorithms(list: &str) -> Result<Vec<Algorithm>, ConfigError> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name.eq_ignore_ascii_case("none") {
            return Err(invalid(
                "--jwt-algorithms",
                "`none` is never accepted: tokens must be signed",
            ));
        }
        let alg: Algorithm = name.parse().map_err(|_| {
            invalid(
                "--jwt-algorithms",
                format!(
                    "unknown algorithm `{name}`; known: {}",
                    Algorithm::ALL.map(Algorithm::as_str).join(", ")
                ),
            )
        })?;
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    if out.is_empty() {
        return Err(invalid("--jwt-algorithms", "the list is empty"));
    }
    Ok(out)
}

/// Parses `*` or a comma-separated list of origins (`scheme://host[:port]`).
///
/// # Errors
///
/// `--cors-origins` is named for an entry that is not an origin.
pub fn parse_cors(list: &str) -> Result<CorsOrigins, ConfigError> {
    let items: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Ok(CorsOrigins::None);
    }
    if items.contains(&"*") {
        return Ok(CorsOrigins::Any);
    }
    let mut origins = Vec::new();
    for item in items {
        let origin = item.trim_end_matches('/');
        let valid = origin.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+')
                && !rest.is_empty()
                && !rest.contains('/')
        });
        if !valid {
            return Err(invalid(
                "--cors-origins",
                format!("`{item}` is not an origin like https://app.example.com or *"),
            ));
        }
        origins.push(origin.to_owned());
    }
    Ok(CorsOrigins::List(origins))
}

/// Parses a token lifetime: `3600`, `90s`, `15m`, `1h`, `7d`.
///
/// # Errors
///
/// A message for clap, which names `--ttl`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 3600, 90s, 15m, 1h or 7d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit `{unit}`: use s, m, h or d")),
    };
    let secs = n
        .checked_mul(scale)
        .filter(|&s| s > 0)
        .ok_or_else(|| format!("`{text}` must be more than 0 and reasonably small"))?;
    Ok(Duration::from_secs(secs))
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let file_error = |reason: String| ConfigError::File {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    parse_file(&text).map_err(file_error)
}

fn parse_file(text: &str) -> Result<FileSettings, String> {
    let table: BTreeMap<String, toml::Value> = toml::from_str(text).map_err(|e| e.to_string())?;
    // `rate_limit` and `rate-limit` are the same key.
    let normalized: toml::Table = table
        .into_iter()
        .map(|(k, v)| (k.replace('_', "-"), v))
        .collect();
    FileSettings::deserialize(normalized).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct MapEnv(HashMap<&'static str, &'static str>);

    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| (*s).to_owned())
        }
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("sockeye").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_the_contract() {
        let s = Settings::default();
        assert_eq!(s.host, "0.0.0.0");
        assert_eq!(s.port, 3000);
        assert_eq!(s.max_payload.get(), 1_000_000);
        assert_eq!(s.ping_interval, Duration::from_millis(25_000));
        assert_eq!(s.ping_timeout, Duration::from_millis(20_000));
        let rate = s.rate_limit.unwrap();
        assert_eq!((rate.per_second.get(), rate.burst.get()), (20, 40));
        assert_eq!(s.max_connections_per_ip.map(NonZeroU32::get), Some(256));
        assert_eq!(s.max_content_length.map(NonZeroUsize::get), Some(4096));
        assert!(!s.trust_proxy);
        assert!(!s.jwt.has_key());
        assert_eq!(s.cors, CorsOrigins::None);
    }

    #[test]
    fn zero_turns_limits_off() {
        let cli = parse(&[
            "--rate-limit",
            "0",
            "--max-connections-per-ip",
            "0",
            "--max-content-length",
            "0",
        ])
        .unwrap();
        let s = Settings::resolve(cli.settings, &NoEnv).unwrap();
        assert!(s.rate_limit.is_none());
        assert!(s.max_connections_per_ip.is_none());
        assert!(s.max_content_length.is_none());
        let cli = parse(&["--rate-limit", "5", "--rate-burst", "0"]).unwrap();
        let rate = Settings::resolve(cli.settings, &NoEnv)
            .unwrap()
            .rate_limit
            .unwrap();
        assert_eq!(rate.burst.get(), 5, "burst 0 is one second's worth");
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (args, name) in [
            (&["--rate-limit", "nope"][..], "--rate-limit"),
            (&["--port", "70000"], "--port"),
            (&["--max-payload", "-1"], "--max-payload"),
            (&["--jwt-leeway", "soon"], "--jwt-leeway"),
            (&["--log-format", "xml"], "--log-format"),
        ] {
            let err = parse(args).unwrap_err().to_string();
            assert!(err.contains(name), "{args:?}: {err}");
        }
        for (args, name) in [
            (&["--jwt-algorithms", "XY999"][..], "--jwt-algorithms"),
            (&["--jwt-algorithms", "none"], "--jwt-algorithms"),
            (&["--jwt-algorithms", ","], "--jwt-algorithms"),
            (&["--tls-cert", "/nonexistent/cert.pem"], "--tls-key"),
            (&["--tls-key", "/nonexistent/key.pem"], "--tls-cert"),
            (
                &[
                    "--tls-cert",
                    "/nonexistent/c",
                    "--tls-key",
                    "/nonexistent/k",
                ],
                "--tls-cert",
            ),
            (
                &["--jwt-public-key", "/nonexistent/key.pem"],
                "--jwt-public-key",
            ),
            (&["--jwt-secret", "short"], "--jwt-secret"),
            (&["--max-payload", "0"], "--max-payload"),
            (&["--ping-interval", "0"], "--ping-interval"),
            (
                &["--ping-interval", "18446744073709551615"],
                "--ping-interval",
            ),
            (&["--ping-timeout", "2147483648"], "--ping-timeout"),
            (&["--cors-origins", "not an origin"], "--cors-origins"),
            (&["--host", ""], "--host"),
        ] {
            let cli = parse(args).unwrap();
            let err = Settings::resolve(cli.settings, &NoEnv)
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{args:?}: {err}");
        }
    }

    #[test]
    fn secret_values_stay_out_of_errors_and_debug() {
        let cli = parse(&["--jwt-secret", "tiny-secret"]).unwrap();
        let err = Settings::resolve(cli.settings, &NoEnv)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("tiny-secret"), "{err}");
        let secret = "0123456789abcdef0123456789abcdef-secret";
        let cli = parse(&["--jwt-secret", secret]).unwrap();
        let s = Settings::resolve(cli.settings, &NoEnv).unwrap();
        assert!(!format!("{s:?}").contains(secret));
    }

    #[test]
    fn port_env_is_after_flag_and_sockeye_port() {
        let env = MapEnv(HashMap::from([("PORT", "4000")]));
        let s = Settings::resolve(parse(&[]).unwrap().settings, &env).unwrap();
        assert_eq!(s.port, 4000);
        let s = Settings::resolve(parse(&["--port", "5000"]).unwrap().settings, &env).unwrap();
        assert_eq!(s.port, 5000);
        let bad = MapEnv(HashMap::from([("PORT", "x")]));
        let err = Settings::resolve(parse(&[]).unwrap().settings, &bad).unwrap_err();
        assert!(err.to_string().contains("PORT"));
    }

    #[test]
    fn file_is_below_flags() {
        let dir = std::env::temp_dir().join(format!("sockeye-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sockeye.toml");
        std::fs::write(
            &path,
            "port = 4100\nrate_limit = 7\nrate-burst = 9\ncors-origins = [\"https://a.example\"]\n\
             jwt-algorithms = \"HS256, HS512\"\nlog-format = \"json\"\ntrust-proxy = true\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let s = Settings::resolve(
            parse(&["--config", p, "--rate-limit", "3"])
                .unwrap()
                .settings,
            &NoEnv,
        )
        .unwrap();
        assert_eq!(s.port, 4100);
        let rate = s.rate_limit.unwrap();
        assert_eq!((rate.per_second.get(), rate.burst.get()), (3, 9));
        assert_eq!(s.cors, CorsOrigins::List(vec!["https://a.example".into()]));
        assert_eq!(
            s.jwt.algorithms,
            Some(vec![Algorithm::HS256, Algorithm::HS512])
        );
        assert_eq!(s.log_format, LogFormat::Json);
        assert!(s.trust_proxy);
        assert_eq!(s.trust_proxy_hops, 1);

        std::fs::write(&path, "rate-limitt = 3\n").unwrap();
        let err = Settings::resolve(parse(&["--config", p]).unwrap().settings, &NoEnv)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rate-limitt") && err.contains("--config"),
            "{err}"
        );
        std::fs::write(&path, "rate-limit = \"many\"\n").unwrap();
        let err = Settings::resolve(parse(&["--config", p]).unwrap().settings, &NoEnv)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--config"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cors_lists() {
        assert_eq!(parse_cors("*").unwrap(), CorsOrigins::Any);
        assert_eq!(parse_cors(" ").unwrap(), CorsOrigins::None);
        assert_eq!(
            parse_cors("http://a.test, https://b.test:8443/").unwrap(),
            CorsOrigins::List(vec!["http://a.test".into(), "https://b.test:8443".into()])
        );
        assert!(parse_cors("a.test").is_err());
        assert!(parse_cors("http://a.test/path").is_err());
    }

    #[test]
    fn ttl_forms() {
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("soon").is_err());
    }

    #[test]
    fn token_subcommand_takes_settings() {
        let cli = parse(&[
            "token",
            "--sub",
            "alice",
            "--ttl",
            "2h",
            "--jwt-secret",
            "x",
        ])
        .unwrap();
        let Some(Command::Token(t)) = cli.command else {
            panic!("no token command")
        };
        assert_eq!(t.sub, "alice");
        assert_eq!(t.ttl, Duration::from_secs(7200));
        assert_eq!(cli.settings.jwt_secret.as_deref(), Some("x"));
    }

    #[test]
    fn trust_proxy_flag_forms() {
        let s = parse(&["--trust-proxy"]).unwrap().settings;
        assert_eq!(s.trust_proxy, Some(true));
        let s = parse(&["--trust-proxy", "false"]).unwrap().settings;
        assert_eq!(s.trust_proxy, Some(false));
    }

    #[test]
    fn cluster_is_off_without_redis_url_and_has_node_defaults_with_it() {
        let s = Settings::resolve(parse(&[]).unwrap().settings, &NoEnv).unwrap();
        assert!(s.cluster.is_none());
        let cli = parse(&["--redis-url", "redis://127.0.0.1:6379"]).unwrap();
        let cluster = Settings::resolve(cli.settings, &NoEnv)
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(cluster.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(cluster.mode, RedisModeSetting::Classic);
        assert_eq!(cluster.key_prefix, "socket.io");
        assert_eq!(cluster.request_timeout, Duration::from_millis(5000));
        let cli = parse(&[
            "--redis-url",
            "redis://redis.internal:6380/2",
            "--redis-mode",
            "sharded",
            "--redis-key-prefix",
            "chat",
            "--cluster-request-timeout-ms",
            "1500",
        ])
        .unwrap();
        let cluster = Settings::resolve(cli.settings, &NoEnv)
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(cluster.redis_url, "redis://redis.internal:6380/2");
        assert_eq!(cluster.mode, RedisModeSetting::Sharded);
        assert_eq!(cluster.key_prefix, "chat");
        assert_eq!(cluster.request_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn cluster_settings_come_from_the_file_below_flags() {
        let dir = std::env::temp_dir().join(format!("sockeye-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sockeye.toml");
        std::fs::write(
            &path,
            "redis-url = \"redis://10.0.0.5:6379\"\nredis_mode = \"sharded\"\n\
             redis-key-prefix = \"app\"\ncluster-request-timeout-ms = 2500\n",
        )
        .unwrap();
        let config = path.to_str().unwrap();
        let cluster = Settings::resolve(parse(&["--config", config]).unwrap().settings, &NoEnv)
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(cluster.redis_url, "redis://10.0.0.5:6379");
        assert_eq!(cluster.mode, RedisModeSetting::Sharded);
        assert_eq!(cluster.key_prefix, "app");
        assert_eq!(cluster.request_timeout, Duration::from_millis(2500));
        let cli = parse(&["--config", config, "--redis-mode", "classic"]).unwrap();
        let cluster = Settings::resolve(cli.settings, &NoEnv)
            .unwrap()
            .cluster
            .unwrap();
        assert_eq!(cluster.mode, RedisModeSetting::Classic);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_cluster_settings_name_the_setting() {
        let err = parse(&["--redis-mode", "cluster"]).unwrap_err().to_string();
        assert!(err.contains("--redis-mode"), "{err}");
        let err = parse(&["--cluster-request-timeout-ms", "soon"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--cluster-request-timeout-ms"), "{err}");
        let url = ["--redis-url", "redis://127.0.0.1:6379"];
        for (args, name) in [
            (&["--redis-url", "http://127.0.0.1:6379"][..], "--redis-url"),
            (&["--redis-url", "127.0.0.1:6379"], "--redis-url"),
            (&["--redis-url", "rediss://cache:6380"], "--redis-url"),
            (&["--redis-url", "redis://"], "--redis-url"),
            (&["--redis-mode", "sharded"], "--redis-mode"),
            (&["--redis-key-prefix", "x"], "--redis-key-prefix"),
            (
                &["--cluster-request-timeout-ms", "100"],
                "--cluster-request-timeout-ms",
            ),
            (
                &[url[0], url[1], "--redis-key-prefix", ""],
                "--redis-key-prefix",
            ),
            (
                &[url[0], url[1], "--cluster-request-timeout-ms", "0"],
                "--cluster-request-timeout-ms",
            ),
        ] {
            let cli = parse(args).unwrap();
            let err = Settings::resolve(cli.settings, &NoEnv)
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{args:?}: {err}");
        }
    }

    #[test]
    fn redis_passwords_stay_out_of_errors_and_debug() {
        let cli = parse(&["--redis-url", "http://user:hunter2@cache:6379"]).unwrap();
        let err = Settings::resolve(cli.settings, &NoEnv)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let cli = parse(&["--redis-url", "redis://:hunter2@cache:6379/0"]).unwrap();
        let s = Settings::resolve(cli.settings, &NoEnv).unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("redis://***@cache:6379/0"), "{debug}");
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(redact_url("no scheme:pw"), "***");
    }
}
