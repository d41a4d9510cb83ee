//! Codec benches: sockeye-codec's Engine.IO and Socket.IO decoders and encoders, side by side with
//! socketioxide's published parser crates (`socketioxide-parser-common`, `engineioxide-core`) on
//! the same inputs in the same run, so the ratio is measured on one machine at one time.
//!
//! Groups (each `…/sockeye/…` row has a `…/socketioxide/…` twin where their API allows it):
//!
//! - `socketio_decode`: a Socket.IO EVENT in text form to a packet. socketioxide's `decode_str`
//!   only splits the header; sockeye's `Packet::decode` also checks the JSON (well-formed, nesting
//!   depth, array with a non-reserved name), as the reference parser's `JSON.parse` does.
//! - `socketio_dispatch`: decode plus reading the event name, what a server does before it can
//!   route an event; the `socketioxide+json-check` row adds the JSON check sockeye does, so both
//!   do the same work.
//! - `socketio_encode`: a packet to its text form.
//! - `ws_text_frame`: a Socket.IO packet to the WebSocket text frame (`4` + packet).
//! - `engineio_decode` / `engineio_encode`: one Engine.IO message packet.
//! - `binary_event`: a BINARY_EVENT with two 1 KiB attachments, reassembled and encoded.
//! - `polling_payload`: a 100-packet long-polling body, split and built.
//! - `broadcast`: one 1 KiB event for 10,000 recipients: sockeye's encode-once `Outgoing` cloned
//!   per recipient, sockeye encoding per recipient, and socketioxide's shape (Socket.IO encode
//!   once, Engine.IO framing into a new `String` per recipient).
//!
//! Time is the benchmark thread's CPU time, not wall time: the machines this runs on are shared
//! (two cores, several builds at once), and CPU time does not count the time the thread waits for
//! a core. Set `SOCKEYE_BENCH_WALL=1` to measure wall time instead.
//!
//! Run: `cargo bench -p sockeye-benches --bench codec` (add `-- --warm-up-time 1
//! --measurement-time 3` for a quicker pass). Benches never assert times.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::VecDeque;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Throughput, criterion_group, criterion_main};
use engineioxide_core::{Packet as EioxPacket, PacketBuf, ProtocolVersion, Str};
use futures_util::StreamExt;
use socketioxide_core::Value;
use socketioxide_core::packet::{Packet as SioxPacket, PacketData};
use socketioxide_core::parser::{Parse, ParseConfig, ParseError, ParserState};
use socketioxide_parser_common::CommonParser;
use sockeye_codec::engineio::{self, Payload, PayloadBuilder};
use sockeye_codec::socketio::{self, Assembled, Assembler};
use sockeye_codec::{Outgoing, Utf8Bytes};

/// The three payload sizes of the issue: an EVENT packet of about this many bytes in text form.
const SIZES: [(&str, usize); 3] = [("16B", 16), ("1KiB", 1024), ("64KiB", 64 * 1024)];

const RECIPIENTS: usize = 10_000;

/// An EVENT packet (`2["message",...]`) of about `size` bytes, with realistic JSON: objects with
/// numbers, short strings, an escaped quote and non-ASCII text, so parsers do real work.
fn event_text(size: usize) -> String {
    if size <= 16 {
        return r#"2["msg","hi!!!"]"#.to_owned();
    }
    let mut text = String::from(r#"2["message",["#);
    let mut id = 0u32;
    while text.len() + 120 < size {
        if id > 0 {
            text.push(',');
        }
        text.push_str(&format!(
            r#"{{"id":{id},"user":"user-{id}","text":"h\u00e9llo \"w\" – grüße {id}","ok":true}}"#
        ));
        id += 1;
    }
    text.push_str("]]");
    while text.len() < size {
        text.insert(text.len() - 2, ' ');
    }
    text
}

fn sockeye_text(text: &str) -> Utf8Bytes {
    Utf8Bytes::from(text)
}

fn siox_str(text: &str) -> Str {
    Str::from(text.to_owned())
}

/// Polls a future that never waits (all inputs are in memory) to completion.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn siox_event(text: &str) -> SioxPacket {
    let state = ParserState::default();
    CommonParser
        .decode_str(&ParseConfig::default(), &state, siox_str(text))
        .unwrap()
}

fn socketio_decode(c: &mut Criterion) {
    let limits = socketio::Limits::default();
    let config = ParseConfig::default();
    let mut group = c.benchmark_group("socketio_decode");
    for (name, size) in SIZES {
        let text = event_text(size);
        group.throughput(Throughput::Bytes(text.len() as u64));
        let ours = sockeye_text(&text);
        group.bench_with_input(BenchmarkId::new("sockeye", name), &ours, |b, input| {
            b.iter(|| socketio::Packet::decode(black_box(input.clone()), &limits).unwrap());
        });
        let theirs = siox_str(&text);
        let state = ParserState::default();
        group.bench_with_input(
            BenchmarkId::new("socketioxide", name),
            &theirs,
            |b, input| {
                b.iter(|| {
                    CommonParser
                        .decode_str(&config, &state, black_box(input.clone()))
                        .unwrap()
                });
            },
        );
    }
    group.finish();
}

fn socketio_dispatch(c: &mut Criterion) {
    let limits = socketio::Limits::default();
    let config = ParseConfig::default();
    let mut group = c.benchmark_group("socketio_dispatch");
    for (name, size) in SIZES {
        let text = event_text(size);
        group.throughput(Throughput::Bytes(text.len() as u64));
        let ours = sockeye_text(&text);
        group.bench_with_input(BenchmarkId::new("sockeye", name), &ours, |b, input| {
            b.iter(|| {
                let packet = socketio::Packet::decode(black_box(input.clone()), &limits).unwrap();
                assert_eq!(packet.event_name().unwrap().len(), expected_name(size));
                packet
            });
        });
        let theirs = siox_str(&text);
        let state = ParserState::default();
        group.bench_with_input(
            BenchmarkId::new("socketioxide", name),
            &theirs,
            |b, input| {
                b.iter(|| {
                    let packet = CommonParser
                        .decode_str(&config, &state, black_box(input.clone()))
                        .unwrap();
                    let PacketData::Event(value, _) = &packet.inner else {
                        unreachable!()
                    };
                    assert_eq!(
                        CommonParser.read_event(value).unwrap().len(),
                        expected_name(size)
                    );
                    packet
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("socketioxide+json-check", name),
            &theirs,
            |b, input| {
                b.iter(|| {
                    let packet = CommonParser
                        .decode_str(&config, &state, black_box(input.clone()))
                        .unwrap();
                    let PacketData::Event(value, _) = &packet.inner else {
                        unreachable!()
                    };
                    assert_eq!(
                        CommonParser.read_event(value).unwrap().len(),
                        expected_name(size)
                    );
                    let json = value.as_str().unwrap();
                    serde_json::from_str::<serde::de::IgnoredAny>(json).unwrap();
                    packet
                });
            },
        );
    }
    group.finish();
}

fn expected_name(size: usize) -> usize {
    if size <= 16 { 3 } else { 7 }
}

fn socketio_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("socketio_encode");
    for (name, size) in SIZES {
        let text = event_text(size);
        group.throughput(Throughput::Bytes(text.len() as u64));
        let ours =
            socketio::Packet::decode(sockeye_text(&text), &socketio::Limits::default()).unwrap();
        group.bench_with_input(BenchmarkId::new("sockeye", name), &ours, |b, packet| {
            b.iter(|| black_box(packet).to_text());
        });
        let theirs = siox_event(&text);
        group.bench_with_input(
            BenchmarkId::new("socketioxide", name),
            &theirs,
            |b, packet| {
                b.iter(|| CommonParser.encode(black_box(packet).clone()));
            },
        );
    }
    group.finish();
}

fn ws_text_frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_text_frame");
    for (name, size) in SIZES {
        let text = event_text(size);
        group.throughput(Throughput::Bytes(text.len() as u64 + 1));
        let ours =
            socketio::Packet::decode(sockeye_text(&text), &socketio::Limits::default()).unwrap();
        group.bench_with_input(BenchmarkId::new("sockeye", name), &ours, |b, packet| {
            b.iter(|| Outgoing::socketio(black_box(packet), Vec::new()));
        });
        let theirs = siox_event(&text);
        group.bench_with_input(
            BenchmarkId::new("socketioxide", name),
            &theirs,
            |b, packet| {
                b.iter(|| {
                    let Value::Str(text, _) = CommonParser.encode(black_box(packet).clone()) else {
                        unreachable!()
                    };
                    String::from(EioxPacket::Message(text))
                });
            },
        );
    }
    group.finish();
}

fn engineio_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("engineio_decode");
    for (name, size) in SIZES {
        let text = format!("4{}", event_text(size));
        group.throughput(Throughput::Bytes(text.len() as u64));
        let ours = sockeye_text(&text);
        group.bench_with_input(BenchmarkId::new("sockeye", name), &ours, |b, input| {
            b.iter(|| engineio::Packet::decode_text(black_box(input.clone())).unwrap());
        });
        let theirs = siox_str(&text);
        group.bench_with_input(
            BenchmarkId::new("socketioxide", name),
            &theirs,
            |b, input| {
                b.iter(|| {
                    EioxPacket::parse(ProtocolVersion::V4, black_box(input.clone())).unwrap()
                });
            },
        );
    }
    group.finish();
}

fn engineio_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("engineio_encode");
    for (name, size) in SIZES {
        let text = event_text(size);
        group.throughput(Throughput::Bytes(text.len() as u64 + 1));
        let ours = engineio::Packet::Message(Payload::Text(sockeye_text(&text)));
        group.bench_with_input(BenchmarkId::new("sockeye", name), &ours, |b, packet| {
            b.iter(|| black_box(packet).to_text());
        });
        let theirs = EioxPacket::Message(siox_str(&text));
        group.bench_with_input(
            BenchmarkId::new("socketioxide", name),
            &theirs,
            |b, packet| {
                b.iter(|| String::from(black_box(packet).clone()));
            },
        );
    }
    group.finish();
}

const BINARY_TEXT: &str = r#"52-["upload",{"name":"a.bin","data":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1}]"#;

fn attachments() -> [Bytes; 2] {
    [
        Bytes::from(vec![0xab; 1024]),
        Bytes::from((0..1024u32).map(|i| i as u8).collect::<Vec<_>>()),
    ]
}

fn binary_event(c: &mut Criterion) {
    let [first, second] = attachments();
    let total = (BINARY_TEXT.len() + first.len() + second.len()) as u64;
    let mut group = c.benchmark_group("binary_event");
    group.throughput(Throughput::Bytes(total));

    let text = sockeye_text(BINARY_TEXT);
    let mut assembler = Assembler::new(socketio::Limits::default());
    group.bench_function("decode/sockeye", |b| {
        b.iter(|| {
            assert_eq!(
                assembler.push_text(black_box(text.clone())).unwrap(),
                Assembled::Pending
            );
            assembler.push_binary(black_box(first.clone())).unwrap();
            let Assembled::Packet { attachments, .. } =
                assembler.push_binary(black_box(second.clone())).unwrap()
            else {
                unreachable!()
            };
            attachments
        });
    });
    let theirs = siox_str(BINARY_TEXT);
    let config = ParseConfig::default();
    let state = ParserState::default();
    group.bench_function("decode/socketioxide", |b| {
        b.iter(|| {
            let pending = CommonParser.decode_str(&config, &state, black_box(theirs.clone()));
            assert!(matches!(pending, Err(ParseError::NeedsMoreBinaryData)));
            let pending = CommonParser.decode_bin(&config, &state, black_box(first.clone()));
            assert!(matches!(pending, Err(ParseError::NeedsMoreBinaryData)));
            CommonParser
                .decode_bin(&config, &state, black_box(second.clone()))
                .unwrap()
        });
    });

    let ours = socketio::Packet::decode(text.clone(), &socketio::Limits::default()).unwrap();
    group.bench_function("encode/sockeye", |b| {
        b.iter(|| Outgoing::socketio(black_box(&ours), vec![first.clone(), second.clone()]));
    });
    let data = BINARY_TEXT.strip_prefix("52-").unwrap();
    let theirs = SioxPacket::event(
        "/",
        Value::Str(
            siox_str(data),
            Some(VecDeque::from([first.clone(), second.clone()])),
        ),
    );
    group.bench_function("encode/socketioxide", |b| {
        b.iter(|| {
            let Value::Str(text, Some(binaries)) = CommonParser.encode(black_box(&theirs).clone())
            else {
                unreachable!()
            };
            (String::from(EioxPacket::Message(text)), binaries)
        });
    });
    group.finish();
}

const POLLING_PACKETS: usize = 100;

fn polling_payload(c: &mut Criterion) {
    let messages: Vec<String> = (0..POLLING_PACKETS)
        .map(|i| format!(r#"42["message",{{"id":{i},"user":"user-{i}","text":"hello from the polling transport"}}]"#))
        .collect();
    let body = messages.join("\x1e");
    let max_payload = 1_000_000;
    let mut group = c.benchmark_group("polling_payload");
    group.throughput(Throughput::Bytes(body.len() as u64));

    let ours = sockeye_text(&body);
    let limits = engineio::Limits::default();
    group.bench_function("split/sockeye", |b| {
        b.iter(|| {
            let mut count = 0;
            for packet in engineio::split_payload(black_box(ours.clone()), &limits) {
                black_box(packet.unwrap());
                count += 1;
            }
            assert_eq!(count, POLLING_PACKETS);
        });
    });
    let theirs = Bytes::from(body.clone());
    group.bench_function("split/socketioxide", |b| {
        b.iter(|| {
            let body = http_body_util::Full::new(black_box(theirs.clone()));
            let stream =
                engineioxide_core::payload::decoder(body, None, ProtocolVersion::V4, max_payload);
            let count = block_on(stream.fold(0, |count, packet| {
                black_box(packet.unwrap());
                async move { count + 1 }
            }));
            assert_eq!(count, POLLING_PACKETS);
        });
    });

    let outgoing: Vec<Outgoing> = messages
        .iter()
        .map(|text| Outgoing::message_text(text.strip_prefix('4').unwrap()))
        .collect();
    group.bench_function("build/sockeye", |b| {
        b.iter(|| {
            let mut builder = PayloadBuilder::new(max_payload as usize);
            for message in black_box(&outgoing) {
                assert!(builder.try_push_outgoing(message));
            }
            builder.finish()
        });
    });
    let packets: Vec<Str> = messages
        .iter()
        .map(|text| siox_str(text.strip_prefix('4').unwrap()))
        .collect();
    group.bench_function("build/socketioxide", |b| {
        b.iter(|| {
            let stream = futures_util::stream::iter(black_box(&packets).iter().map(|text| {
                std::iter::once(EioxPacket::Message(text.clone())).collect::<PacketBuf>()
            }));
            let payload = block_on(engineioxide_core::payload::encoder(
                stream,
                ProtocolVersion::V4,
                false,
                max_payload,
            ));
            assert_eq!(payload.data.len(), body.len());
            payload
        });
    });
    group.finish();
}

fn broadcast(c: &mut Criterion) {
    let text = event_text(1024);
    let mut group = c.benchmark_group("broadcast");
    group.throughput(Throughput::Elements(RECIPIENTS as u64));
    group.sample_size(20);
    let ours = socketio::Packet::decode(sockeye_text(&text), &socketio::Limits::default()).unwrap();
    let mut outboxes: Vec<Outgoing> = Vec::with_capacity(RECIPIENTS);
    group.bench_function("sockeye/encode-once", |b| {
        b.iter(|| {
            outboxes.clear();
            let message = Outgoing::socketio(black_box(&ours), Vec::new());
            for _ in 0..RECIPIENTS {
                outboxes.push(message.clone());
            }
        });
    });
    group.bench_function("sockeye/encode-per-recipient", |b| {
        b.iter(|| {
            outboxes.clear();
            for _ in 0..RECIPIENTS {
                outboxes.push(Outgoing::socketio(black_box(&ours), Vec::new()));
            }
        });
    });
    let theirs = siox_event(&text);
    let mut frames: Vec<String> = Vec::with_capacity(RECIPIENTS);
    group.bench_function("socketioxide/frame-per-recipient", |b| {
        b.iter(|| {
            frames.clear();
            let Value::Str(text, _) = CommonParser.encode(black_box(&theirs).clone()) else {
                unreachable!()
            };
            for _ in 0..RECIPIENTS {
                frames.push(String::from(EioxPacket::Message(text.clone())));
            }
        });
    });
    group.finish();
}

/// Criterion measurement: CPU time of the benchmarking thread (or wall time, see the crate doc).
struct CpuTime {
    /// Measure wall time since this instant instead.
    wall: Option<std::time::Instant>,
}

impl CpuTime {
    fn now(&self) -> Duration {
        if let Some(epoch) = self.wall {
            epoch.elapsed()
        } else {
            cpu_time::ThreadTime::now().as_duration()
        }
    }
}

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        self.now()
    }

    fn end(&self, start: Duration) -> Duration {
        self.now().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        WallTime.formatter()
    }
}

type Criterion = criterion::Criterion<CpuTime>;

fn config() -> Criterion {
    let wall = std::env::var_os("SOCKEYE_BENCH_WALL").is_some_and(|value| value != "0");
    criterion::Criterion::default().with_measurement(CpuTime {
        wall: wall.then(std::time::Instant::now),
    })
}

criterion_group!(
    name = benches;
    config = config();
    targets =
    socketio_decode,
    socketio_dispatch,
    socketio_encode,
    ws_text_frame,
    engineio_decode,
    engineio_encode,
    binary_event,
    polling_payload,
    broadcast
);
criterion_main!(benches);
