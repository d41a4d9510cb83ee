//! Handlers and extractors: typed data, state, binary, acks, catch-all listeners, per-event
//! middleware, fallback.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sockeye_broker::{
    AckSender, Args, Bin, Broker, Data, Event, RawArgs, Rejected, SocketRef, State, TryData,
};
use support::Client;

#[derive(serde::Deserialize)]
struct Message {
    content: String,
    room: Option<String>,
}

#[derive(Clone)]
struct AppState {
    prefix: &'static str,
}

#[tokio::test]
async fn typed_data_state_and_optional_ack() {
    let broker = Broker::builder()
        .state(AppState { prefix: ">" })
        .namespace("/", |ns| {
            ns.on(
                "message",
                async |socket: SocketRef,
                       State(state): State<AppState>,
                       TryData(msg): TryData<Message>,
                       ack: Option<AckSender>| {
                    let reply = match msg {
                        Ok(m) => serde_json::json!({
                            "ok": true,
                            "text": format!("{}{}", state.prefix, m.content),
                            "room": m.room,
                        }),
                        Err(_) => serde_json::json!({"ok": false, "error": "VALIDATION"}),
                    };
                    match ack {
                        Some(ack) => ack.send(&reply).unwrap(),
                        None => socket.emit("message", &reply).unwrap(),
                    }
                },
            )
        })
        .build();
    let mut client = Client::open(&broker);
    client.connect("/");
    client.text(r#"2["message",{"content":"hi"}]"#).unwrap();
    assert_eq!(
        client.transport.texts(),
        [r#"42["message",{"ok":true,"room":null,"text":">hi"}]"#]
    );
    client.text(r#"27["message",{"nope":1}]"#).unwrap();
    assert_eq!(
        client.transport.texts(),
        [r#"437[{"error":"VALIDATION","ok":false}]"#]
    );
}

#[tokio::test]
async fn failed_extraction_skips_the_handler() {
    let calls = Arc::new(Mutex::new(0));
    let c = calls.clone();
    let broker = Broker::builder()
        .namespace("/", move |ns| {
            ns.on("typed", move |Data(_): Data<Message>| {
                *c.lock().unwrap() += 1;
                std::future::ready(())
            })
        })
        .build();
    let mut client = Client::open(&broker);
    client.connect("/");
    client.text(r#"2["typed",42]"#).unwrap();
    client.text(r#"2["typed"]"#).unwrap();
    client.text(r#"2["typed",{"content":"x"}]"#).unwrap();
    assert_eq!(*calls.lock().unwrap(), 1);
    assert_eq!(client.transport.closed(), None);
}

#[tokio::test]
async fn binary_arguments_in_and_out() {
    let broker = Broker::builder()
        .namespace("/", |ns| {
            ns.on(
                "upload",
                async |socket: SocketRef, Data(name): Data<String>, Bin(files): Bin| {
                    let total: usize = files.iter().map(Bytes::len).sum();
                    let args = Args::one(&name)
                        .unwrap()
                        .arg(&total)
                        .unwrap()
                        .binary(Bytes::from_static(b"thanks"));
                    socket.emit_args("uploaded", args).unwrap();
                },
            )
        })
        .build();
    let mut client = Client::open(&broker);
    client.connect("/");
    client
        .text(r#"52-["upload","f",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#)
        .unwrap();
    client.binary(b"abc").unwrap();
    client.binary(b"de").unwrap();
    let sent = client.transport.take();
    assert_eq!(
        sent[0].text().unwrap(),
        r#"451-["uploaded","f",5,{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(sent[0].binaries(), [&b"thanks"[..]]);
}

#[tokio::test]
async fn catch_all_middleware_and_fallback() {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log.clone());
    let broker = Broker::builder()
        .namespace("/", move |ns| {
            ns.on_any(move |Event(name): Event| {
                l1.lock().unwrap().push(format!("any:{name}"));
                std::future::ready(())
            })
            .event_middleware(move |Event(name): Event| {
                let blocked = name == "blocked";
                l2.lock().unwrap().push(format!("mw:{name}"));
                std::future::ready(if blocked {
                    Err(Rejected::new("blocked"))
                } else {
                    Ok(())
                })
            })
            .on("known", move |RawArgs(args): RawArgs| {
                l3.lock().unwrap().push(format!("known:{}", args.json()));
                std::future::ready(())
            })
            .on("blocked", async || unreachable!("the middleware drops it"))
            .on_fallback(async |socket: SocketRef, Event(name): Event| {
                socket
                    .emit(
                        "error",
                        &serde_json::json!({"code": "UNKNOWN_EVENT", "event": name}),
                    )
                    .unwrap();
            })
            .on_any_outgoing(move |_socket, event, message| {
                l4.lock()
                    .unwrap()
                    .push(format!("out:{event}:{}", message.text().unwrap()));
            })
        })
        .build();
    let mut client = Client::open(&broker);
    client.connect("/");
    client.text(r#"2["known",1,2]"#).unwrap();
    client.text(r#"2["blocked"]"#).unwrap();
    client.text(r#"2["mystery"]"#).unwrap();
    assert_eq!(
        client.transport.texts(),
        [r#"42["error",{"code":"UNKNOWN_EVENT","event":"mystery"}]"#]
    );
    assert_eq!(
        *log.lock().unwrap(),
        [
            "any:known",
            "mw:known",
            "known:1,2",
            "any:blocked",
            "mw:blocked",
            "any:mystery",
            "mw:mystery",
            r#"out:error:42["error",{"code":"UNKNOWN_EVENT","event":"mystery"}]"#,
        ]
    );
}

#[tokio::test]
async fn events_are_handled_in_arrival_order_even_when_handlers_suspend() {
    let broker = Broker::builder()
        .namespace("/", |ns| {
            ns.on("n", async |socket: SocketRef, Data(n): Data<u32>| {
                socket.emit("seen", &n).unwrap();
                tokio::task::yield_now().await;
                socket.emit("done", &n).unwrap();
            })
        })
        .build();
    let mut client = Client::open(&broker);
    client.connect("/");
    for n in 0..3 {
        client.text(&format!(r#"2["n",{n}]"#)).unwrap();
    }
    // The synchronous part of each handler ran as its packet arrived.
    assert_eq!(
        client.transport.texts(),
        [r#"42["seen",0]"#, r#"42["seen",1]"#, r#"42["seen",2]"#]
    );
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    assert_eq!(client.transport.texts().len(), 3);
}

#[tokio::test]
async fn socket_emit_flags_and_errors() {
    let broker = Broker::builder().namespace("/", |ns| ns).build();
    let mut client = Client::open(&broker);
    let id = client.connect("/");
    let socket = broker.namespace("/").unwrap().socket(id).unwrap();
    socket.volatile().compress(false).emit("x", &()).unwrap();
    let sent = client.transport.take_with_flags();
    assert_eq!(sent[0].0.text().unwrap(), r#"42["x",null]"#);
    assert!(sent[0].1.volatile && !sent[0].1.compress);
    socket.emit_args("none", Args::new()).unwrap();
    assert_eq!(client.transport.texts(), [r#"42["none"]"#]);
    client.transport.set_mode(support::Mode::Full);
    assert_eq!(
        socket.emit("x", &1),
        Err(sockeye_broker::EmitError::QueueFull)
    );
    client.text("1").unwrap();
    assert_eq!(
        socket.emit("x", &1),
        Err(sockeye_broker::EmitError::Disconnected)
    );
}

#[tokio::test]
async fn a_panicking_handler_does_not_unwind_into_the_transport() {
    let broker = Broker::builder()
        .namespace("/", |ns| {
            ns.on("boom", async || panic!("handler bug"))
                .on("ok", async |socket: SocketRef| {
                    socket.emit("fine", &1).unwrap()
                })
        })
        .build();
    let mut client = Client::open(&broker);
    client.connect("/");
    client.text(r#"2["boom"]"#).unwrap();
    client.text(r#"2["ok"]"#).unwrap();
    assert_eq!(client.transport.texts(), [r#"42["fine",1]"#]);
}
