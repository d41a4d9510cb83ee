//! Acknowledgements: emit with ack, timeouts on tokio's paused clock, broadcasts with ack
//! (one shared ack id, one encode), disconnects.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::time::Duration;

use sockeye_broker::{AckError, Args, Broker, BrokerConfig, SocketRef};
use support::Client;

fn broker() -> Broker {
    Broker::builder()
        .config(BrokerConfig::default().ack_timeout(Duration::from_secs(2)))
        .namespace("/", |ns| ns)
        .build()
}

fn connect(broker: &Broker) -> (Client, SocketRef) {
    let mut client = Client::open(broker);
    let id = client.connect("/");
    let socket = broker.namespace("/").unwrap().socket(id).unwrap();
    (client, socket)
}

/// The ack id of an emitted `42<id>[...]` / `452-<id>[...]` packet.
fn ack_id(text: &str) -> u64 {
    let rest = text.trim_start_matches(|c: char| c != '-' && c != '[' && !c.is_ascii_digit());
    let rest = text
        .strip_prefix("42")
        .or_else(|| rest.split_once('-').map(|(_, r)| r))
        .unwrap_or(rest);
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn emit_with_ack_gets_the_answer() {
    let broker = broker();
    let (mut client, socket) = connect(&broker);
    let ack = socket.emit_with_ack("question", &"why").unwrap();
    let sent = client.transport.texts();
    assert_eq!(sent.len(), 1);
    let id = ack_id(&sent[0]);
    assert_eq!(sent[0], format!(r#"42{id}["question","why"]"#));
    client
        .text(&format!(r#"3{id}[{{"because":1}},2]"#))
        .unwrap();
    let answer = ack.await.unwrap();
    assert_eq!(answer.first::<serde_json::Value>().unwrap()["because"], 1);
    assert_eq!(answer.all::<(serde_json::Value, u8)>().unwrap().1, 2);
    assert_eq!(broker.namespace("/").unwrap().pending_acks(), 0);
}

#[tokio::test(start_paused = true)]
async fn emit_with_ack_times_out_on_the_paused_clock() {
    let broker = broker();
    let (mut client, socket) = connect(&broker);
    let ns = broker.namespace("/").unwrap();
    let start = tokio::time::Instant::now();
    let ack = socket
        .timeout(Duration::from_millis(300))
        .emit_with_ack("q", &1)
        .unwrap();
    assert_eq!(ns.pending_acks(), 1);
    assert_eq!(ack.await, Err(AckError::Timeout));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(310),
        "{waited:?}"
    );
    assert_eq!(ns.pending_acks(), 0);
    // A late answer is ignored.
    let id = ack_id(&client.transport.texts()[0]);
    client.text(&format!("3{id}[1]")).unwrap();
    assert_eq!(client.transport.closed(), None);
}

#[tokio::test(start_paused = true)]
async fn earlier_deadlines_wake_the_timer() {
    let broker = broker();
    let (_client, socket) = connect(&broker);
    let slow = socket
        .timeout(Duration::from_secs(60))
        .emit_with_ack("q", &1)
        .unwrap();
    tokio::task::yield_now().await;
    let fast = socket
        .timeout(Duration::from_millis(10))
        .emit_with_ack("q", &2)
        .unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(fast.await, Err(AckError::Timeout));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(slow.await, Err(AckError::Timeout));
}

#[tokio::test(start_paused = true)]
async fn disconnect_fails_pending_acks() {
    let broker = broker();
    let (mut client, socket) = connect(&broker);
    let ack = socket.emit_with_ack("q", &1).unwrap();
    client.text("1").unwrap();
    assert_eq!(ack.await, Err(AckError::Disconnected));
    assert_eq!(broker.namespace("/").unwrap().pending_acks(), 0);
}

#[tokio::test(start_paused = true)]
async fn binary_acks_from_the_client() {
    let broker = broker();
    let (mut client, socket) = connect(&broker);
    let ack = socket.emit_with_ack("q", &1).unwrap();
    let id = ack_id(&client.transport.texts()[0]);
    client
        .text(&format!(r#"61-{id}[{{"_placeholder":true,"num":0}}]"#))
        .unwrap();
    client.binary(b"\xff\x00").unwrap();
    let answer = ack.await.unwrap();
    assert_eq!(answer.attachments, [&b"\xff\x00"[..]]);
    assert_eq!(answer.args().attachments().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn broadcast_with_ack_collects_every_answer_with_one_shared_id() {
    let broker = broker();
    let mut clients: Vec<(Client, SocketRef)> = (0..4).map(|_| connect(&broker)).collect();
    for (_, s) in &clients[..3] {
        s.join("r");
    }
    let ns = broker.namespace("/").unwrap();
    let stream = ns
        .to("r")
        .timeout(Duration::from_secs(1))
        .emit_args_with_ack(
            "vote",
            Args::new()
                .arg(&"?")
                .unwrap()
                .binary(bytes::Bytes::from_static(b"b")),
        )
        .await
        .unwrap();
    assert_eq!(stream.expected(), 3);
    let mut texts = Vec::new();
    let mut first_ptr = None;
    for (client, _) in &clients[..3] {
        let sent = client.transport.take();
        assert_eq!(sent.len(), 1);
        let ptr = sent[0].text().unwrap().as_bytes().as_ptr();
        assert_eq!(
            *first_ptr.get_or_insert(ptr),
            ptr,
            "every recipient shares one encoding"
        );
        texts.push(sent[0].text().unwrap().as_str().to_owned());
    }
    assert_eq!(clients[3].0.transport.sent_count(), 0);
    assert!(texts.windows(2).all(|w| w[0] == w[1]), "one shared ack id");
    assert!(texts[0].starts_with("451-"), "{}", texts[0]);
    let id: u64 = texts[0]["451-".len()..]
        .split('[')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Two answer, one stays silent.
    clients[0].0.text(&format!("3{id}[\"yes\"]")).unwrap();
    clients[1].0.text(&format!("3{id}[\"no\"]")).unwrap();
    let started = tokio::time::Instant::now();
    let timeout = stream.collect_all().await.unwrap_err();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "one timeout for the broadcast"
    );
    assert_eq!(timeout.to_string(), "operation has timed out");
    let ok: Vec<String> = timeout
        .answers
        .iter()
        .map(|a| a.result.as_ref().unwrap().first::<String>().unwrap())
        .collect();
    assert_eq!(
        ok,
        ["yes", "no"],
        "the silent one yields no timeout item of its own"
    );
    assert_eq!(timeout.expected, 3);
    assert_eq!(timeout.answers[0].socket, Some(clients[0].1.id()));
    tokio::task::yield_now().await;
    assert_eq!(ns.pending_acks(), 0);
    // The id counter is namespace-wide: the next emit uses a new id.
    drop(clients[3].1.emit_with_ack("q", &1).unwrap());
    let next = ack_id(&clients[3].0.transport.texts()[0]);
    assert_ne!(next, id);
    drop(clients.drain(..));
}

#[tokio::test(start_paused = true)]
async fn broadcast_with_ack_to_nobody_ends_at_once() {
    let broker = broker();
    let stream = broker
        .namespace("/")
        .unwrap()
        .to("empty")
        .emit_with_ack("q", &1)
        .await
        .unwrap();
    assert_eq!(stream.expected(), 0);
    assert!(stream.collect_all().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_timer_task_stops_when_idle_and_restarts() {
    let broker = broker();
    let (_client, socket) = connect(&broker);
    for _ in 0..3 {
        let ack = socket
            .timeout(Duration::from_millis(50))
            .emit_with_ack("q", &1)
            .unwrap();
        assert_eq!(ack.await, Err(AckError::Timeout));
        // Idle: the task has nothing to wait for and ends; the next emit starts a new one.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_broadcast_with_a_huge_timeout_does_not_overflow_the_clock() {
    let broker = broker();
    let (mut client, _socket) = connect(&broker);
    // A timeout from another node (relayed from Redis) may be anything: Duration::MAX must not
    // panic on `now + timeout`; the broadcast waits for its answer instead.
    let stream = broker
        .namespace("/")
        .unwrap()
        .broadcast()
        .timeout(Duration::MAX)
        .emit_with_ack("vote", &"?")
        .await
        .unwrap();
    let sent = client.transport.texts();
    let id = ack_id(&sent[0]);
    client.text(&format!(r#"3{id}["yes"]"#)).unwrap();
    let answers = stream.collect_all().await.unwrap();
    assert_eq!(answers.len(), 1);
}
