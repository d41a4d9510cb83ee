//! A cluster node of `tests/cluster/CONTRACT.md` (issue 12's NODE-CONTRACT.md): what a sockeye
//! node exposes so that a cluster of sockeye and Node `socket.io` nodes on one Redis can be
//! checked from the outside with real clients (`tests/cluster/check.js`). It is the sockeye twin
//! of the Node reference node `tests/cluster/node-node.js`.
//!
//! ```sh
//! cargo build --release -p sockeye-server --example cluster-node
//! PORT=3001 NODE_NAME=n1 REDIS_URL=redis://127.0.0.1:6379 target/release/examples/cluster-node
//! ```
//!
//! Configured only by the environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `PORT` | listen on `127.0.0.1:PORT` (required) |
//! | `NODE_NAME` | this node's name, in answers and in `socket.data.node` (required) |
//! | `REDIS_URL` | the shared Redis; unset or empty: one node alone with the in-memory adapter |
//! | `REDIS_ADAPTER_MODE` | `classic` (default) or `sharded` |
//! | `CLUSTER_KEY_PREFIX` | channel prefix (default `socket.io`) |
//! | `CLUSTER_REQUEST_TIMEOUT_MS` | timeout of this node's cluster requests (default 5000) |
//! | `CLUSTER_NAMESPACES` | comma-separated namespaces to serve (default `/`) |
//! | `CLUSTER_JWT_SECRET` | when set: clients must send `auth.token`, an HS256 JWT whose `sub` is `auth.name` |
//!
//! Every namespace answers the `cluster:*` events of the contract (each with an ack, `{ ok:
//! false, error }` on failure) and listens for the server-side events `cluster:note` (relayed
//! to this node's own clients as `cluster:server-note`) and `cluster:ping` (answered with `{
//! node, from }`). The node connects to Redis and waits until every subscription is confirmed
//! before it listens, so a client that can connect is in the cluster.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use sockeye_auth::{Token, Verifier};
use sockeye_broker::{
    AckSender, AdapterError, AdapterFactory, Args, Bin, BroadcastOperator, Broker, ConnectError,
    Event, MemoryAdapter, Namespace, NamespaceBuilder, Room, ServerAck, ServerEvent,
    ServerSideEmitError, SocketRef, State, TryData,
};
use sockeye_redis::{RedisCluster, RedisConfig, RedisMode};
use sockeye_server::Server;

/// What every handler needs, from the environment.
#[derive(Debug)]
struct Node {
    name: String,
    request_timeout: Duration,
    verifier: Option<Verifier>,
    mode: Mode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Classic,
    Sharded,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Sharded => "sharded",
        }
    }
}

/// The settings read from the environment.
#[derive(Debug)]
struct Env {
    port: u16,
    node: Node,
    redis_url: Option<String>,
    key_prefix: String,
    namespaces: Vec<String>,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn read_env() -> Result<Env, String> {
    let port = env_var("PORT")
        .ok_or("PORT is not set")?
        .parse::<u16>()
        .map_err(|e| format!("PORT: {e}"))?;
    let name = env_var("NODE_NAME").ok_or("NODE_NAME is not set")?;
    let mode = match env_var("REDIS_ADAPTER_MODE").as_deref() {
        None | Some("classic") => Mode::Classic,
        Some("sharded") => Mode::Sharded,
        Some(other) => {
            return Err(format!(
                "REDIS_ADAPTER_MODE must be classic or sharded, not {other}"
            ));
        }
    };
    let request_timeout = match env_var("CLUSTER_REQUEST_TIMEOUT_MS") {
        None => Duration::from_millis(5000),
        Some(ms) => {
            Duration::from_millis(ms.parse::<u64>().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                format!("CLUSTER_REQUEST_TIMEOUT_MS: not a positive number: {ms}")
            })?)
        }
    };
    let namespaces: Vec<String> = env_var("CLUSTER_NAMESPACES")
        .unwrap_or_else(|| "/".to_owned())
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            if name.starts_with('/') {
                name.to_owned()
            } else {
                format!("/{name}")
            }
        })
        .collect();
    if namespaces.is_empty() {
        return Err("CLUSTER_NAMESPACES names no namespace".to_owned());
    }
    let verifier = env_var("CLUSTER_JWT_SECRET")
        .map(|secret| {
            Verifier::builder()
                .hmac_secret(secret.as_bytes())
                .build()
                .map_err(|e| format!("CLUSTER_JWT_SECRET: {e}"))
        })
        .transpose()?;
    Ok(Env {
        port,
        node: Node {
            name,
            request_timeout,
            verifier,
            mode,
        },
        redis_url: env_var("REDIS_URL"),
        key_prefix: env_var("CLUSTER_KEY_PREFIX").unwrap_or_else(|| "socket.io".to_owned()),
        namespaces,
    })
}

// ----- the contract's events ------------------------------------------------------------------

/// `rooms`, `except`, `join`, `leave`: absent/null, one name, or a list of names.
fn room_list(payload: &Value, field: &str) -> Result<Vec<Room>, String> {
    match payload.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(room)) => Ok(vec![Room::new(room)]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(room) => Ok(Room::new(room)),
                other => Err(format!("{field}: not a room name: {other}")),
            })
            .collect(),
        Some(other) => Err(format!("{field}: not a room or a list of rooms: {other}")),
    }
}

/// `nsp.to(rooms).except(except)`; no rooms means the whole namespace.
fn target(ns: &Namespace, payload: &Value) -> Result<BroadcastOperator, String> {
    let rooms = room_list(payload, "rooms")?;
    let except = room_list(payload, "except")?;
    Ok(ns.to(rooms).except(except))
}

/// The event's `payload` as arguments: its binary placeholders renumbered to the attachments it
/// uses, so the bytes go out as binary again.
fn payload_args(payload: Option<&Value>, attachments: &[Bytes]) -> Result<Args, String> {
    let mut value = payload.cloned().unwrap_or(Value::Null);
    let mut used = Vec::new();
    renumber_placeholders(&mut value, attachments, &mut used)?;
    let json = serde_json::to_string(&value).map_err(|e| e.to_string())?;
    Ok(Args::raw(&json, used))
}

fn renumber_placeholders(
    value: &mut Value,
    attachments: &[Bytes],
    used: &mut Vec<Bytes>,
) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            if map.get("_placeholder") == Some(&Value::Bool(true)) {
                let num = map
                    .get("num")
                    .and_then(Value::as_u64)
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or("a binary placeholder without a number")?;
                let bytes = attachments
                    .get(num)
                    .ok_or("a binary placeholder past the attachments")?;
                map.insert("num".to_owned(), json!(used.len()));
                used.push(bytes.clone());
            } else {
                for item in map.values_mut() {
                    renumber_placeholders(item, attachments, used)?;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                renumber_placeholders(item, attachments, used)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn adapter_error(error: AdapterError) -> String {
    match error {
        AdapterError::Unsupported => "this operation is not supported by the adapter".to_owned(),
        other => other.to_string(),
    }
}

/// Every `cluster:*` event: runs it and answers its ack.
async fn dispatch(
    socket: SocketRef,
    Event(event): Event,
    TryData(payload): TryData<Value>,
    Bin(attachments): Bin,
    ack: Option<AckSender>,
    State(node): State<Arc<Node>>,
) {
    let payload = match payload {
        Ok(value @ Value::Object(_)) => value,
        _ => Value::Object(Map::new()),
    };
    let Some(answer) = run(&socket, &event, &payload, &attachments, &node).await else {
        return;
    };
    let answer = answer.unwrap_or_else(|error| json!({ "ok": false, "error": error }));
    if let Some(ack) = ack {
        let _ = ack.send(&answer);
    }
}

/// The answer to one event; `None` for an event that is not the contract's.
async fn run(
    socket: &SocketRef,
    event: &str,
    payload: &Value,
    attachments: &[Bytes],
    node: &Node,
) -> Option<Result<Value, String>> {
    let ns = socket.namespace();
    let answer = match event {
        "cluster:whoami" => Ok(json!({
            "ok": true, "node": node.name, "id": socket.id().as_str(), "nsp": ns.name(),
        })),
        "cluster:join" => room_list(payload, "room").map(|rooms| {
            socket.join(rooms);
            json!({ "ok": true })
        }),
        "cluster:leave" => room_list(payload, "room").map(|rooms| {
            socket.leave(rooms);
            json!({ "ok": true })
        }),
        "cluster:broadcast" => broadcast(ns, payload, attachments).await,
        "cluster:broadcast-ack" => broadcast_ack(ns, payload, attachments, node).await,
        "cluster:fetch" => fetch(ns, payload, node).await,
        "cluster:sockets-join" => match (target(ns, payload), room_list(payload, "join")) {
            (Ok(op), Ok(rooms)) => op.join(rooms).await.map(ok).map_err(adapter_error),
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        "cluster:sockets-leave" => match (target(ns, payload), room_list(payload, "leave")) {
            (Ok(op), Ok(rooms)) => op.leave(rooms).await.map(ok).map_err(adapter_error),
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        "cluster:disconnect" => match target(ns, payload) {
            Ok(op) => {
                let close = payload.get("close").and_then(Value::as_bool) == Some(true);
                op.disconnect(close).await.map(ok).map_err(adapter_error)
            }
            Err(e) => Err(e),
        },
        "cluster:server-emit" => server_emit(ns, payload, node).await,
        "cluster:server-count" => ns
            .server_count()
            .await
            .map(|count| json!({ "ok": true, "count": count }))
            .map_err(adapter_error),
        "cluster:all-rooms" => match ns.all_rooms().await {
            Ok(rooms) if rooms.is_complete() => Ok(json!({ "ok": true, "rooms": rooms.value })),
            Ok(rooms) => Err(format!(
                "timeout reached: {} node(s) did not answer allRooms",
                rooms.missing_nodes
            )),
            Err(AdapterError::Unsupported) => Err(format!(
                "allRooms is not supported in {} mode",
                node.mode.as_str()
            )),
            Err(e) => Err(adapter_error(e)),
        },
        _ => return None,
    };
    Some(answer)
}

fn ok(_: ()) -> Value {
    json!({ "ok": true })
}

fn event_name(payload: &Value) -> Result<&str, String> {
    payload
        .get("event")
        .and_then(Value::as_str)
        .ok_or_else(|| "event: not a string".to_owned())
}

async fn broadcast(
    ns: &Namespace,
    payload: &Value,
    attachments: &[Bytes],
) -> Result<Value, String> {
    let op = target(ns, payload)?;
    let event = event_name(payload)?;
    let args = payload_args(payload.get("payload"), attachments)?;
    op.emit_args(event, args).await.map_err(|e| e.to_string())?;
    Ok(json!({ "ok": true }))
}

async fn broadcast_ack(
    ns: &Namespace,
    payload: &Value,
    attachments: &[Bytes],
    node: &Node,
) -> Result<Value, String> {
    let timeout = payload
        .get("timeout")
        .and_then(Value::as_u64)
        .filter(|ms| *ms > 0)
        .map_or(node.request_timeout, Duration::from_millis);
    let op = target(ns, payload)?.timeout(timeout);
    let event = event_name(payload)?;
    let args = payload_args(payload.get("payload"), attachments)?;
    let stream = op
        .emit_args_with_ack(event, args)
        .await
        .map_err(|e| e.to_string())?;
    // Each client's first ack argument, as Node's callback gets them.
    let first = |answers: Vec<sockeye_broker::AckAnswer>| -> Vec<Value> {
        answers
            .into_iter()
            .filter_map(|answer| answer.result.ok())
            .map(|response| response.first::<Value>().unwrap_or(Value::Null))
            .collect()
    };
    Ok(match stream.collect_all().await {
        Ok(answers) => json!({ "ok": true, "error": null, "responses": first(answers) }),
        Err(timeout) => json!({
            "ok": false, "error": timeout.to_string(), "responses": first(timeout.answers),
        }),
    })
}

async fn fetch(ns: &Namespace, payload: &Value, node: &Node) -> Result<Value, String> {
    let sockets = target(ns, payload)?
        .timeout(node.request_timeout)
        .fetch_sockets()
        .await
        .map_err(adapter_error)?;
    if !sockets.is_complete() {
        // Node rejects fetchSockets when a node does not answer in time.
        return Err(format!(
            "timeout reached while waiting for fetchSockets response ({} node(s) did not answer)",
            sockets.missing_nodes
        ));
    }
    let list: Vec<Value> = sockets
        .value
        .into_iter()
        .map(|socket| json!({ "id": socket.id.as_str(), "rooms": socket.rooms, "data": socket.data }))
        .collect();
    Ok(json!({ "ok": true, "sockets": list }))
}

async fn server_emit(ns: &Namespace, payload: &Value, node: &Node) -> Result<Value, String> {
    if payload.get("ack").and_then(Value::as_bool) == Some(true) {
        let args = vec![json!({ "from": node.name })];
        let result = ns
            .server_side_emit_with_ack("cluster:ping", args, node.request_timeout)
            .await;
        return Ok(match result {
            Ok(responses) => json!({ "ok": true, "error": null, "responses": responses }),
            Err(ServerSideEmitError::Timeout {
                responses,
                expected,
            }) => json!({
                "ok": false,
                "error": format!(
                    "timeout reached: only {} responses received out of {expected}",
                    responses.len()
                ),
                "responses": responses,
            }),
            Err(error) => json!({ "ok": false, "error": error.to_string(), "responses": [] }),
        });
    }
    let note = json!({ "from": node.name, "payload": payload.get("payload").cloned().unwrap_or(Value::Null) });
    ns.server_side_emit("cluster:note", vec![note])
        .await
        .map_err(adapter_error)?;
    Ok(json!({ "ok": true }))
}

// ----- handshake -------------------------------------------------------------------------------

/// With `CLUSTER_JWT_SECRET`: `auth.token` must be a valid HS256 JWT whose `sub` is `auth.name`.
async fn authenticate(
    socket: SocketRef,
    State(node): State<Arc<Node>>,
) -> Result<(), ConnectError> {
    let Some(verifier) = &node.verifier else {
        return Ok(());
    };
    let auth: Value = socket.handshake().auth().unwrap_or(Value::Null);
    let name = auth.get("name").and_then(Value::as_str);
    let token = auth
        .get("token")
        .and_then(Value::as_str)
        .and_then(|text| Token::new(text).ok());
    let claims = token.and_then(|token| verifier.verify(&token, SystemTime::now()).ok());
    match (claims, name) {
        (Some(claims), Some(name)) if claims.sub() == Some(name) => Ok(()),
        _ => Err(ConnectError::new("unauthorized")),
    }
}

/// `socket.data = { name: auth.name, node: NODE_NAME }`.
async fn on_connect(socket: SocketRef, State(node): State<Arc<Node>>) {
    let auth: Value = socket.handshake().auth().unwrap_or(Value::Null);
    let name = auth.get("name").cloned().unwrap_or(Value::Null);
    let _ = socket.set_data(&json!({ "name": name, "node": node.name }));
}

/// The handlers of one namespace; `handle` is filled once the broker is built (the server-side
/// listeners need the namespace to emit to its local clients).
fn handlers(
    ns: NamespaceBuilder,
    node: &Arc<Node>,
    handle: &Arc<OnceLock<Namespace>>,
) -> NamespaceBuilder {
    let (note_node, note_ns) = (node.clone(), handle.clone());
    let ping_node = node.clone();
    ns.connect_middleware(authenticate)
        .on_connect(on_connect)
        .on_fallback(dispatch)
        .on_server_event("cluster:note", move |event: &ServerEvent, _ack| {
            let Some(ns) = note_ns.get().cloned() else {
                return;
            };
            let msg = event.args.first().cloned().unwrap_or(Value::Null);
            let note = json!({
                "node": note_node.name,
                "from": msg.get("from").cloned().unwrap_or(Value::Null),
                "payload": msg.get("payload").cloned().unwrap_or(Value::Null),
            });
            tokio::spawn(async move {
                if let Err(error) = ns.local().emit("cluster:server-note", &note).await {
                    eprintln!("cluster-node: cluster:server-note: {error}");
                }
            });
        })
        .on_server_event(
            "cluster:ping",
            move |event: &ServerEvent, ack: Option<ServerAck>| {
                let from = event
                    .args
                    .first()
                    .and_then(|msg| msg.get("from"))
                    .cloned()
                    .unwrap_or(Value::Null);
                if let Some(ack) = ack {
                    ack.send(json!({ "node": ping_node.name, "from": from }));
                }
            },
        )
}

// ----- the cluster -----------------------------------------------------------------------------

/// The adapter of this node: the in-memory one alone, or Redis. With Redis, the node waits
/// (10 s at most) until every subscription is confirmed, so a client that can connect is in
/// the cluster.
async fn adapter_factory(env: &Env) -> Result<(AdapterFactory, Option<RedisCluster>), String> {
    let Some(url) = &env.redis_url else {
        return Ok((MemoryAdapter::factory(), None));
    };
    let mode = match env.node.mode {
        Mode::Classic => RedisMode::Classic,
        Mode::Sharded => RedisMode::Sharded,
    };
    let config = RedisConfig::new(url.clone())
        .mode(mode)
        .key_prefix(env.key_prefix.clone())
        .request_timeout(env.node.request_timeout);
    let cluster = RedisCluster::connect(config)
        .await
        .map_err(|e| format!("Redis ({} mode): {e}", env.node.mode.as_str()))?;
    Ok((cluster.adapter_factory(), Some(cluster)))
}

/// Waits until the Redis subscriptions of every namespace are confirmed.
async fn wait_ready(cluster: &RedisCluster) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cluster.is_ready() {
        if tokio::time::Instant::now() >= deadline {
            return Err("Redis subscriptions not confirmed within 10 s".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match serve().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cluster-node: {error}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn serve() -> Result<(), String> {
    let env = read_env()?;
    let (factory, cluster) = adapter_factory(&env).await?;
    let node = Arc::new(env.node);
    let mut builder = Broker::builder().adapter(factory).state(node.clone());
    let mut handles = Vec::new();
    for name in &env.namespaces {
        let handle = Arc::new(OnceLock::new());
        builder = builder.namespace(name, |ns| handlers(ns, &node, &handle));
        handles.push((name.clone(), handle));
    }
    let broker = builder.build();
    for (name, handle) in handles {
        let ns = broker
            .namespace(&name)
            .ok_or_else(|| format!("namespace {name} was not built"))?;
        let _ = handle.set(ns);
    }
    if let Some(cluster) = &cluster {
        wait_ready(cluster).await?;
    }
    let server = Server::builder()
        .broker(broker)
        .max_connections_per_ip(None)
        .build()
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", env.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", env.port))?;
    eprintln!(
        "cluster-node {}: listening on 127.0.0.1:{} ({}, namespaces {})",
        node.name,
        env.port,
        if env.redis_url.is_some() {
            node.mode.as_str()
        } else {
            "in-memory, alone"
        },
        env.namespaces.join(" ")
    );
    server
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
