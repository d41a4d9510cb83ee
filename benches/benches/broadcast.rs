//! Broadcast fan-out: recipient selection and delivery to 1, 100 and 10,000 in-process sockets,
//! encode-once (the broker's broadcast) against encode-per-recipient (one `emit` per socket).
//!
//! The transport is an in-memory outbox that keeps the last message per socket (as a bounded
//! queue would hold it), so the cost measured is the broker's: selection, refcount clones, sends.
//! Before the timed runs, each case prints its allocations per broadcast and per recipient,
//! counted by a wrapping global allocator.
#![allow(missing_docs, clippy::unwrap_used, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use sockeye_broker::{
    Broker, CloseReason, EngineInfo, Namespace, SendError, SendFlags, SocketRef, Transport,
};
use sockeye_codec::{Outgoing, Utf8Bytes};

/// Counts allocations, delegating the work to the system allocator.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counter
// has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Keeps the last message, as an outbox slot would.
#[derive(Default)]
struct Outbox(Mutex<Option<Outgoing>>);

impl Transport for Outbox {
    fn send(&self, message: Outgoing, _flags: SendFlags) -> Result<(), SendError> {
        *self.0.lock().unwrap() = Some(message);
        Ok(())
    }

    fn close(&self, _reason: CloseReason) {}
}

struct Setup {
    _conns: Vec<sockeye_broker::Connection>,
    ns: Namespace,
    sockets: Vec<SocketRef>,
}

fn setup(rt: &tokio::runtime::Runtime, n: usize) -> Setup {
    let _guard = rt.enter();
    let broker = Broker::builder().namespace("/", |ns| ns).build();
    let ns = broker.namespace("/").unwrap();
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let transport = Arc::new(Outbox::default());
        let mut conn = broker.on_engine_open(transport, EngineInfo::new("s"), Instant::now());
        conn.on_engine_text(Utf8Bytes::from_static("0"), Instant::now())
            .unwrap();
        conns.push(conn);
    }
    let sockets = conns.iter().flat_map(|c| c.sockets()).collect();
    for s in &sockets {
        let s: &SocketRef = s;
        s.join("room");
    }
    Setup {
        _conns: conns,
        ns,
        sockets,
    }
}

#[derive(serde::Serialize)]
struct Message<'a> {
    id: u64,
    content: &'a str,
    room: &'a str,
    ts: u64,
}

const MESSAGE: Message<'static> = Message {
    id: 42,
    content: "hello, this is a typical chat message of moderate length",
    room: "room",
    ts: 1_764_460_800_000,
};

fn encode_once(setup: &Setup) {
    setup
        .ns
        .to("room")
        .emit("message", &MESSAGE)
        .now_or_never()
        .unwrap()
        .unwrap();
}

fn encode_per_recipient(setup: &Setup) {
    for socket in &setup.sockets {
        socket.emit("message", &MESSAGE).unwrap();
    }
}

fn allocations(f: impl Fn()) -> usize {
    f(); // warm the reused buffers
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    f();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

fn broadcast(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("broadcast");
    for n in [1usize, 100, 10_000] {
        let setup = setup(&rt, n);
        let once = allocations(|| encode_once(&setup));
        let per = allocations(|| encode_per_recipient(&setup));
        eprintln!(
            "broadcast/{n}: encode-once {once} allocations ({:.3}/recipient), \
             encode-per-recipient {per} ({:.3}/recipient)",
            once as f64 / n as f64,
            per as f64 / n as f64,
        );
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("encode_once", n), &setup, |b, s| {
            b.iter(|| encode_once(black_box(s)));
        });
        group.bench_with_input(
            BenchmarkId::new("encode_per_recipient", n),
            &setup,
            |b, s| {
                b.iter(|| encode_per_recipient(black_box(s)));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, broadcast);
criterion_main!(benches);
