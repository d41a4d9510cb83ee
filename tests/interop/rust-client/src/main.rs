//! A stock Rust Socket.IO client (`rust_socketio`) against a running sockeye server.
//!
//! Usage: `sockeye-interop-rust-client URL TOKEN_A TOKEN_B BAD_TOKEN` (tokens for two distinct
//! `sub`s and one the server must refuse). Checks, printing one line each:
//! connect with a token (auth object), join with an acknowledgement, a room broadcast received by
//! both members, the echo of a message without a room, and a refused connection. Exits 1 on the
//! first failure.

use std::process::ExitCode;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use rust_socketio::client::Client;
use rust_socketio::{ClientBuilder, Event, Payload, RawClient, TransportType};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(8);

/// What the callbacks report to the main thread.
#[derive(Debug)]
enum Seen {
    Connected,
    Message(Value),
    Error(String),
}

fn first_value(payload: Payload) -> Value {
    #[allow(deprecated)]
    match payload {
        Payload::Text(mut values) if !values.is_empty() => values.swap_remove(0),
        Payload::Text(_) => Value::Null,
        Payload::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        Payload::Binary(b) => json!({ "binary": b.len() }),
    }
}

fn open(
    url: &str,
    token: &str,
    transport: TransportType,
) -> Result<(Client, Receiver<Seen>), String> {
    let (tx, rx) = channel::<Seen>();
    let (tx_msg, tx_err) = (tx.clone(), tx.clone());
    let client = ClientBuilder::new(url)
        .auth(json!({ "token": token }))
        .transport_type(transport)
        .reconnect(false)
        .on(Event::Connect, move |_, _| {
            let _ = tx.send(Seen::Connected);
        })
        .on("message", move |payload: Payload, _: RawClient| {
            let _ = tx_msg.send(Seen::Message(first_value(payload)));
        })
        .on(Event::Error, move |payload: Payload, _: RawClient| {
            let _ = tx_err.send(Seen::Error(first_value(payload).to_string()));
        })
        .connect()
        .map_err(|e| format!("connect: {e}"))?;
    Ok((client, rx))
}

fn wait_connected(rx: &Receiver<Seen>, who: &str) -> Result<(), String> {
    match rx.recv_timeout(WAIT) {
        Ok(Seen::Connected) => Ok(()),
        Ok(other) => Err(format!(
            "{who}: expected the namespace connect, got {other:?}"
        )),
        Err(_) => Err(format!("{who}: no namespace connect within {WAIT:?}")),
    }
}

/// Emits with an acknowledgement and waits for it.
fn emit_ack(client: &Client, event: &str, data: Value) -> Result<Value, String> {
    let (tx, rx): (Sender<Value>, Receiver<Value>) = channel();
    client
        .emit_with_ack(event, data, WAIT, move |payload: Payload, _: RawClient| {
            let _ = tx.send(first_value(payload));
        })
        .map_err(|e| format!("emit {event}: {e}"))?;
    let value = rx
        .recv_timeout(WAIT + Duration::from_secs(1))
        .map_err(|_| format!("no acknowledgement for '{event}' within {WAIT:?}"))?;
    // rust_socketio hands an ACK over as the raw JSON array of its arguments: take the first.
    Ok(match value {
        Value::Array(mut args) if !args.is_empty() => args.swap_remove(0),
        other => other,
    })
}

/// Waits for a `message` event whose content is `content`.
fn wait_message(rx: &Receiver<Seen>, who: &str, content: &str) -> Result<Value, String> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(Seen::Message(m)) if m["content"] == content => return Ok(m),
            Ok(Seen::Error(e)) => {
                return Err(format!(
                    "{who}: error event while waiting for a message: {e}"
                ));
            }
            Ok(_) => {}
            Err(_) => return Err(format!("{who}: no message {content:?} within {WAIT:?}")),
        }
    }
}

fn check(cond: bool, what: &str, got: &Value) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(format!("{what}: got {got}"))
    }
}

fn run(url: &str, token_a: &str, token_b: &str, bad_token: &str) -> Result<(), String> {
    let room = format!("rust-room-{}", std::process::id());

    let (a, rx_a) = open(url, token_a, TransportType::Any)?;
    wait_connected(&rx_a, "client A (polling, then upgrade)")?;
    println!("ok - client A connects with auth.token (polling + upgrade)");
    let (b, rx_b) = open(url, token_b, TransportType::Websocket)?;
    wait_connected(&rx_b, "client B (websocket)")?;
    println!("ok - client B connects with auth.token (websocket only)");

    let ack = emit_ack(&a, "join", json!(room))?;
    check(
        ack["ok"] == true && ack["room"] == room.as_str() && ack["size"] == 1,
        "A join ack",
        &ack,
    )?;
    let ack = emit_ack(&b, "join", json!({ "room": room }))?;
    check(
        ack["ok"] == true && ack["room"] == room.as_str() && ack["size"] == 2,
        "B join ack",
        &ack,
    )?;
    println!("ok - join acknowledged with room and size");

    let content = "hello from rust_socketio";
    let ack = emit_ack(&a, "message", json!({ "content": content, "room": room }))?;
    check(
        ack["ok"] == true && !ack["id"].is_null(),
        "room message ack",
        &ack,
    )?;
    println!("ok - message to a room acknowledged with an id");
    let got_b = wait_message(&rx_b, "client B", content)?;
    check(
        got_b["room"] == room.as_str()
            && got_b["id"] == ack["id"]
            && got_b["from"]["sub"].is_string(),
        "room broadcast at B",
        &got_b,
    )?;
    let got_a = wait_message(&rx_a, "client A", content)?;
    check(
        got_a["room"] == room.as_str() && got_a["id"] == ack["id"],
        "room broadcast at A (sender)",
        &got_a,
    )?;
    println!("ok - room broadcast received by both members, the sender too");

    let echo = "echo from rust_socketio";
    b.emit("message", json!({ "content": echo }))
        .map_err(|e| format!("emit message: {e}"))?;
    let got = wait_message(&rx_b, "client B", echo)?;
    check(
        got.get("room").is_none() && got["ts"].is_number(),
        "echo",
        &got,
    )?;
    println!("ok - message without a room is echoed to the sender");

    let (c, rx_c) = open(url, bad_token, TransportType::Websocket)?;
    match rx_c.recv_timeout(WAIT) {
        Ok(Seen::Error(e)) if e.contains("unauthorized") && e.contains("UNAUTHORIZED") => {
            println!("ok - a bad token is refused: {e}");
        }
        other => {
            return Err(format!(
                "client C with a bad token: expected a ConnectError, got {other:?}"
            ));
        }
    }

    let _ = a.disconnect();
    let _ = b.disconnect();
    let _ = c.disconnect();
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, token_a, token_b, bad_token] = args.as_slice() else {
        eprintln!("usage: sockeye-interop-rust-client URL TOKEN_A TOKEN_B BAD_TOKEN");
        return ExitCode::from(2);
    };
    match run(url, token_a, token_b, bad_token) {
        Ok(()) => {
            println!("rust_socketio: all checks passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("not ok - {e}");
            ExitCode::FAILURE
        }
    }
}
