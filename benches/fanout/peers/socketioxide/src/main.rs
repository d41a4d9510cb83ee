//! socketioxide peer server for sockeye's fan-out benchmark.
//!
//! Implements the benchmark contract (see `benches/fanout/README.md`):
//! - `join`: room name (string) or `{ room }`, acked with `{ ok: true, room, size }`;
//! - `message`: `{ content, room }`, every member of `room` (sender included) receives event
//!   `message` `{ id, content, from: { sub, sid }, room, ts }`; acked with `{ ok: true, id }`.
//!
//! No authentication (a token in the handshake auth payload is ignored). Listens on
//! `127.0.0.1:$PORT`. `MAX_BUFFER_SIZE` sets socketioxide's per-socket packet buffer (default
//! here 65536; socketioxide's own default is 128, set `MAX_BUFFER_SIZE=128` to measure it).
//! Packets that socketioxide refuses to queue are counted and printed on SIGTERM/SIGINT.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socketioxide::{
    SocketIo,
    extract::{AckSender, Data, SocketRef, State},
    handler::ConnectHandler as _,
    socket::DisconnectReason,
};

#[derive(Default)]
struct AppState {
    /// Members per room, kept by this app (socketioxide counts them only in O(members)).
    rooms: Mutex<HashMap<String, usize>>,
    seq: AtomicU64,
    id_prefix: u32,
    /// Deliveries socketioxide refused to queue (full per-socket buffer or closed socket).
    dropped: AtomicU64,
    broadcasts: AtomicU64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JoinArg {
    Name(String),
    Obj { room: String },
}

#[derive(Deserialize)]
struct MessageArg {
    content: Value,
    room: Option<String>,
}

#[derive(Serialize)]
struct From<'a> {
    sub: &'static str,
    sid: &'a str,
}

#[derive(Serialize)]
struct Outgoing<'a> {
    id: &'a str,
    content: &'a str,
    from: From<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
    ts: u64,
}

fn valid_room(room: &str) -> bool {
    (1..=128).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

fn error_ack(code: &str, message: &str) -> Value {
    json!({ "ok": false, "error": { "code": code, "message": message } })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

type St = State<Arc<AppState>>;

async fn on_join(s: SocketRef, Data(arg): Data<JoinArg>, ack: AckSender, State(st): St) {
    let room = match arg {
        JoinArg::Name(r) | JoinArg::Obj { room: r } => r,
    };
    if !valid_room(&room) {
        ack.send(&error_ack("VALIDATION", "invalid room name")).ok();
        return;
    }
    let already = s.rooms().iter().any(|r| r == room.as_str());
    let size = {
        let mut rooms = st.rooms.lock().expect("room map lock is never poisoned");
        let n = rooms.entry(room.clone()).or_insert(0);
        if !already {
            *n += 1;
        }
        *n
    };
    if !already {
        s.join(room.clone());
    }
    ack.send(&json!({ "ok": true, "room": room, "size": size }))
        .ok();
}

async fn on_message(s: SocketRef, Data(arg): Data<MessageArg>, ack: AckSender, State(st): St) {
    let Value::String(content) = arg.content else {
        ack.send(&error_ack("VALIDATION", "content must be a string"))
            .ok();
        return;
    };
    let seq = st.seq.fetch_add(1, Ordering::Relaxed) + 1;
    // sockeye's id format, so that every server sends payloads of the same size.
    let id = format!("{:08x}-{seq}", st.id_prefix);
    let sid = s.id.to_string();
    let mut out = Outgoing {
        id: &id,
        content: &content,
        from: From {
            sub: "bench",
            sid: &sid,
        },
        room: None,
        ts: now_ms(),
    };
    match arg.room {
        Some(room) => {
            if !s.rooms().iter().any(|r| r == room.as_str()) {
                ack.send(&error_ack("NOT_IN_ROOM", "not in room")).ok();
                return;
            }
            out.room = Some(&room);
            st.broadcasts.fetch_add(1, Ordering::Relaxed);
            if let Err(socketioxide::BroadcastError::Socket(errs)) =
                s.within(room.clone()).emit("message", &out).await
            {
                st.dropped.fetch_add(errs.len() as u64, Ordering::Relaxed);
            }
        }
        None => {
            if s.emit("message", &out).is_err() {
                st.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    ack.send(&json!({ "ok": true, "id": id })).ok();
}

async fn on_disconnect(s: SocketRef, _reason: DisconnectReason, State(st): St) {
    let mine = s.rooms();
    let mut rooms = st.rooms.lock().expect("room map lock is never poisoned");
    for r in mine {
        if let Some(n) = rooms.get_mut(r.as_ref()) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                rooms.remove(r.as_ref());
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3002);
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
    let max_buffer: usize = std::env::var("MAX_BUFFER_SIZE")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(65_536);
    let state = Arc::new(AppState {
        id_prefix: (now_ms() as u32) ^ std::process::id(),
        ..AppState::default()
    });
    let ping_interval = std::env::var("PING_INTERVAL_MS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(25_000);
    let (layer, io) = SocketIo::builder()
        .ping_interval(std::time::Duration::from_millis(ping_interval))
        .max_buffer_size(max_buffer)
        .max_payload(1_000_000)
        .with_state(state.clone())
        .build_layer();
    // The handlers are registered in a connect middleware, which runs before socketioxide sends
    // the CONNECT answer: registered in the connect handler itself (run after the answer), a
    // client's first event can arrive before its handler exists and is then ignored.
    io.ns(
        "/",
        (async || {}).with(async |s: SocketRef| {
            s.on("join", on_join);
            s.on("message", on_message);
            s.on_disconnect(on_disconnect);
            Ok::<(), std::convert::Infallible>(())
        }),
    );
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(async || "ok\n"))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind((host.as_str(), port)).await?;
    eprintln!("socketioxide peer listening on http://{host}:{port} (max_buffer_size {max_buffer})");
    let st = state.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler installs");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            eprintln!(
                "socketioxide peer: {} broadcasts, {} deliveries dropped by socketioxide",
                st.broadcasts.load(Ordering::Relaxed),
                st.dropped.load(Ordering::Relaxed)
            );
            std::process::exit(0);
        })
        .await?;
    Ok(())
}
