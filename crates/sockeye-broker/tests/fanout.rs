//! Fan-out: a broadcast to 10,000 sockets is encoded once and shared by refcount.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use bytes::Bytes;
use sockeye_broker::{Args, Broker};
use support::Client;

#[tokio::test]
async fn a_broadcast_to_10_000_sockets_shares_one_encoding() {
    let broker = Broker::builder().namespace("/", |ns| ns).build();
    let clients: Vec<Client> = (0..10_000)
        .map(|_| {
            let mut c = Client::open(&broker);
            c.connect("/");
            c
        })
        .collect();
    let ns = broker.namespace("/").unwrap();
    assert_eq!(ns.socket_count(), 10_000);
    let args = Args::one(&serde_json::json!({"content": "hello"}))
        .unwrap()
        .binary(Bytes::from_static(b"\x01\x02"));
    ns.broadcast().emit_args("news", args).await.unwrap();

    let mut text_ptr = None;
    let mut binary_ptr = None;
    for client in &clients {
        let sent = client.transport.take();
        assert_eq!(sent.len(), 1, "exactly one copy each");
        let text = sent[0].text().unwrap();
        assert_eq!(
            text,
            r#"451-["news",{"content":"hello"},{"_placeholder":true,"num":0}]"#
        );
        let t = text.as_bytes().as_ptr();
        let b = sent[0].binaries()[0].as_ptr();
        assert_eq!(
            *text_ptr.get_or_insert(t),
            t,
            "same text buffer: encoded once"
        );
        assert_eq!(*binary_ptr.get_or_insert(b), b, "same attachment buffer");
    }
}
