//! One load-generator run: connect N receivers to a room, broadcast M messages into it through a
//! sender, measure what arrives, and report.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt as _, StreamExt as _};
use memchr::memmem;
use serde::Serialize;
use sockeye_codec::{Utf8Bytes, socketio};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::client::{self, Connection, Incoming, RawConnection, Ws};
use super::hist::Histogram;
use super::procfs;
use super::rawws::{Frame, FrameReader};
use super::target::Target;

/// The marker that starts every generated `content`: `@`, the message's sequence number and its
/// send time (nanoseconds since the run's start), both as 16 hex digits.
const MARKER: &[u8] = br#""content":"@"#;
const STAMP_LEN: usize = 1 + 16 + 16;
/// The receivers' fast path: a frame starting with this is a `message` event on the default
/// namespace without an ack id (Engine.IO `4`, Socket.IO `2`), and only the content marker is
/// looked up in it. Every other frame goes through the codec ([`client::classify`]). Fully
/// decoding each delivery (the codec validates the JSON) made the generator cost as much CPU
/// per delivery as the servers under test.
const MESSAGE_PREFIX: &[u8] = br#"42["message","#;
/// The Engine.IO pong, as the receivers' lean reader sends it.
const PONG: &[u8] = b"3";

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server.
    pub target: Target,
    /// A name for the run, copied into the report (`sockeye`, `node`, ...).
    pub label: String,
    /// The scenario's name, copied into the report.
    pub scenario: String,
    /// The repetition number, copied into the report.
    pub rep: u32,
    /// Receivers to connect (the sender comes on top and is a room member too).
    pub receivers: usize,
    /// Receivers connecting at once.
    pub concurrency: usize,
    /// Messages to send; 0 measures connections and memory only.
    pub messages: u64,
    /// Length of each message's `content`, in bytes (at least 33).
    pub bytes: usize,
    /// Messages per second; 0 sends as fast as the window allows.
    pub rate: f64,
    /// Messages that may be sent and not yet delivered to every member.
    pub window: u64,
    /// Stop sending after this long even when fewer than `messages` were sent.
    pub send_seconds: f64,
    /// After the last send, wait at most this long for deliveries.
    pub drain_seconds: f64,
    /// Pause between the last join and the memory reading.
    pub settle: Duration,
    /// Timeout of each connection's setup (connect + join).
    pub setup_timeout: Duration,
    /// The auth token sent in every CONNECT.
    pub token: Option<String>,
    /// The server's process id, for CPU and memory readings.
    pub server_pid: Option<u32>,
    /// The room everyone joins.
    pub room: String,
    /// The runtimes the receivers are spread over, round-robin (one single-threaded runtime per
    /// generator thread: no work stealing, no cross-thread wake-ups). Empty: the current one.
    pub runtimes: Vec<tokio::runtime::Handle>,
}

/// Latency quantiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

/// Everything a run measured; one JSON line on stdout.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The run's label (the server's name in `run.sh`).
    pub label: String,
    /// The scenario's name.
    pub scenario: String,
    /// The repetition number.
    pub rep: u32,
    /// Receivers connecting at once.
    pub concurrency: usize,
    /// The send window, in messages.
    pub window: u64,
    /// Unix time of the report, in seconds.
    pub unix_time: u64,
    /// The server's URL authority.
    pub target: String,
    /// Receivers asked for.
    pub receivers: usize,
    /// Receivers connected and joined.
    pub connected: usize,
    /// Receivers that failed to connect or join.
    pub connect_failures: usize,
    /// The first failure's text.
    pub first_connect_error: Option<String>,
    /// Time to connect and join every receiver.
    pub connect_secs: f64,
    /// Receivers connected and joined per second.
    pub connects_per_sec: f64,
    /// The room size the sender's join ack reported (receivers + sender).
    pub room_size: u64,
    /// Content length in bytes.
    pub bytes: usize,
    /// Messages per second asked for (0: as fast as possible).
    pub rate_requested: f64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Time spent sending.
    pub send_secs: f64,
    /// Messages per second achieved.
    pub send_rate: f64,
    /// Messages sent times room members (the sender receives its own broadcasts).
    pub deliveries_expected: u64,
    /// Deliveries that arrived.
    pub deliveries_received: u64,
    /// Expected minus received (never negative: extra arrivals are counted in `out_of_order`).
    pub deliveries_lost: u64,
    /// Loss in percent of expected.
    pub loss_pct: f64,
    /// Members that missed at least one delivery.
    pub members_with_loss: u64,
    /// Deliveries that arrived with a sequence number not above the previous one at that member.
    pub out_of_order: u64,
    /// Connections the server closed during the run.
    pub closed_by_server: u64,
    /// Deliveries per second, from the first send to the last arrival.
    pub deliveries_per_sec: f64,
    /// Send-to-arrival latency.
    pub latency_us: Latency,
    /// Messages acknowledged with `ok: true`.
    pub acks_ok: u64,
    /// Messages acknowledged otherwise.
    pub acks_err: u64,
    /// The first bad ack.
    pub first_ack_error: Option<String>,
    /// `error` events received.
    pub error_events: u64,
    /// Times the sender gave up waiting for the window (deliveries missing for 2 s).
    pub window_stalls: u64,
    /// Server CPU time during the send phase (from the first send to the end of draining).
    pub server_cpu_secs: Option<f64>,
    /// Server CPU time per delivery, in nanoseconds.
    pub server_cpu_ns_per_delivery: Option<f64>,
    /// Server CPU use during the send phase, in cores.
    pub server_cpu_cores: Option<f64>,
    /// Server resident memory before the receivers connected.
    pub server_rss_before: Option<u64>,
    /// Server resident memory after they connected and joined.
    pub server_rss_after: Option<u64>,
    /// Server resident memory at the end of the run.
    pub server_rss_end: Option<u64>,
    /// `(after - before) / (connected + 1)`.
    pub server_bytes_per_conn: Option<f64>,
    /// The generator's own CPU use during the send phase, in cores.
    pub generator_cpu_cores: Option<f64>,
    /// CPU use of every other normal-priority process (and of the kernel outside them) during the
    /// send phase, in cores: the noise.
    pub other_cpu_cores: Option<f64>,
    /// CPU use of niced background processes during the send phase, in cores (they yield to the
    /// benchmark, so they are reported but not counted as noise).
    pub niced_cpu_cores: Option<f64>,
    /// Online cores.
    pub machine_cores: usize,
    /// The run hit `--max-seconds` and was cut short.
    pub timed_out: bool,
    /// Wall time of the whole run.
    pub total_secs: f64,
}

/// A run in progress. [`Runner::run`] drives it; [`Runner::report`] can be called at any time
/// (for example after a timeout) and reports what was measured so far.
#[derive(Debug)]
pub struct Runner {
    config: Config,
    shared: Arc<Shared>,
    progress: Mutex<Progress>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Progress {
    connected: usize,
    failures: usize,
    first_error: Option<String>,
    connect_secs: f64,
    room_size: u64,
    rss_before: Option<u64>,
    rss_after: Option<u64>,
    send_start: Option<Snapshot>,
    send_end: Option<Instant>,
    drain_end: Option<Snapshot>,
    sent: u64,
    stalls: u64,
}

#[derive(Debug, Clone, Copy)]
struct Snapshot {
    at: Instant,
    server: Option<u64>,
    generator: Option<u64>,
    system: Option<procfs::SystemTicks>,
}

impl Snapshot {
    fn take(server_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            server: server_pid.and_then(procfs::cpu_ticks),
            generator: procfs::self_cpu_ticks(),
            system: procfs::system_ticks(),
        }
    }
}

impl Runner {
    /// A runner for `config`.
    pub fn new(config: Config) -> Self {
        let members = config.receivers + 1;
        Self {
            shared: Arc::new(Shared::new(members)),
            config,
            progress: Mutex::new(Progress::default()),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Runs every phase. Errors only when nothing can be measured (no receiver connected, or
    /// the sender could not join).
    ///
    /// # Errors
    /// A description of what failed.
    pub async fn run(&self) -> Result<(), String> {
        let cfg = &self.config;
        let pid = cfg.server_pid;
        self.progress().rss_before = pid.and_then(procfs::rss_bytes);

        // Phase 1: receivers connect and join, `concurrency` at a time.
        let start = Instant::now();
        let semaphore = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
        let (ready_tx, mut ready_rx) = mpsc::channel::<Result<u64, String>>(cfg.receivers.max(1));
        for idx in 0..cfg.receivers {
            let semaphore = semaphore.clone();
            let ready_tx = ready_tx.clone();
            let shared = self.shared.clone();
            let target = cfg.target.clone();
            let token = cfg.token.clone();
            let room = cfg.room.clone();
            let timeout = cfg.setup_timeout;
            let runtime = match cfg.runtimes.len() {
                0 => tokio::runtime::Handle::current(),
                n => cfg.runtimes[idx % n].clone(),
            };
            let task = runtime.spawn(async move {
                let permit = semaphore.acquire_owned().await;
                let setup =
                    RawConnection::open_and_join(&target, token.as_deref(), &room, timeout).await;
                drop(permit);
                match setup {
                    Ok(conn) => {
                        shared.per_member[idx].joined.store(true, Ordering::Relaxed);
                        let _ = ready_tx.send(Ok(0)).await;
                        drop(ready_tx);
                        receive_loop(conn.0.reader, &shared, idx).await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string())).await;
                    }
                }
            });
            self.tasks().push(task);
        }
        drop(ready_tx);
        for _ in 0..cfg.receivers {
            match ready_rx.recv().await {
                Some(Ok(_)) => self.progress().connected += 1,
                Some(Err(e)) => {
                    let mut p = self.progress();
                    p.failures += 1;
                    p.first_error.get_or_insert(e);
                }
                None => break,
            }
        }
        self.progress().connect_secs = start.elapsed().as_secs_f64();
        if self.progress().connected == 0 && cfg.receivers > 0 {
            return Err(format!(
                "no receiver connected: {}",
                self.progress().first_error.clone().unwrap_or_default()
            ));
        }

        // Phase 2: the sender connects and joins last, so its ack reports the full room.
        let mut sender = Connection::open(&cfg.target, cfg.token.as_deref(), cfg.setup_timeout)
            .await
            .map_err(|e| format!("sender: {e}"))?;
        let size = sender
            .join(&cfg.room, cfg.setup_timeout)
            .await
            .map_err(|e| format!("sender join: {e}"))?;
        self.progress().room_size = size;
        self.shared.per_member[cfg.receivers]
            .joined
            .store(true, Ordering::Relaxed);
        let first_ack = sender.next_ack_id();
        // The sender's reader runs from now on: it answers the server's pings (socketioxide
        // pings right after the handshake) and counts the sender's own deliveries and acks.
        let (sink, stream) = sender.ws.split();
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let reader = {
            let shared = self.shared.clone();
            let sink = sink.clone();
            let idx = cfg.receivers;
            tokio::spawn(async move { sender_reader(stream, sink, &shared, idx).await })
        };
        self.tasks().push(reader);

        tokio::time::sleep(cfg.settle).await;
        self.progress().rss_after = pid.and_then(procfs::rss_bytes);
        if cfg.messages == 0 {
            return Ok(());
        }

        // Phase 3: send, then drain.
        let members = (self.progress().connected + 1) as u64;
        let start_snapshot = Snapshot::take(pid);
        self.progress().send_start = Some(start_snapshot);
        self.send(&sink, first_ack, members).await;
        self.progress().send_end = Some(Instant::now());

        let expected = self.progress().sent * members;
        let drain_deadline = Instant::now() + Duration::from_secs_f64(cfg.drain_seconds);
        self.shared.wait_for(expected, drain_deadline).await;
        self.progress().drain_end = Some(Snapshot::take(pid));
        Ok(())
    }

    async fn send(
        &self,
        sink: &Arc<tokio::sync::Mutex<SplitSink<Ws, Message>>>,
        first_ack: u64,
        members: u64,
    ) {
        let cfg = &self.config;
        let start = Instant::now();
        let send_deadline = start + Duration::from_secs_f64(cfg.send_seconds);
        let padding = cfg.bytes.saturating_sub(STAMP_LEN);
        let mut data = String::with_capacity(cfg.bytes + cfg.room.len() + 64);
        let mut stalls = 0;
        let mut seq = 0;
        while seq < cfg.messages {
            if cfg.rate > 0.0 {
                let due = start + Duration::from_secs_f64(seq as f64 / cfg.rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let now = Instant::now();
            if now >= send_deadline {
                break;
            }
            // The window: messages up to `seq - window` must have reached every member.
            let need = (seq + 1).saturating_sub(cfg.window.max(1)) * members;
            if !self
                .shared
                .wait_for(need, (now + Duration::from_secs(2)).min(send_deadline))
                .await
            {
                stalls += 1;
                if Instant::now() >= send_deadline {
                    break;
                }
            }
            data.clear();
            let sent_ns = self.shared.now_ns();
            let _ = write!(data, r#"["message",{{"content":"@{seq:016x}{sent_ns:016x}"#);
            data.extend(std::iter::repeat_n('x', padding));
            let _ = write!(data, r#"","room":"{}"}}]"#, cfg.room);
            let frame = client::event_frame(data.clone(), Some(first_ack + seq));
            if sink.lock().await.send(frame).await.is_err() {
                break;
            }
            seq += 1;
            self.progress().sent = seq;
        }
        self.progress().stalls = stalls;
    }

    /// The report of what was measured so far; `timed_out` marks a run cut short.
    pub fn report(&self, timed_out: bool, total: Duration) -> Report {
        for task in self.tasks().iter() {
            task.abort();
        }
        let cfg = &self.config;
        let p = self.progress();
        let shared = &self.shared;
        let members = (p.connected + 1) as u64;
        let received = shared.received.load(Ordering::Relaxed);
        let expected = p.sent * members;
        let hist = shared.merged_histogram();
        let mut r = Report {
            label: cfg.label.clone(),
            scenario: cfg.scenario.clone(),
            rep: cfg.rep,
            concurrency: cfg.concurrency,
            window: cfg.window,
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            target: cfg.target.authority.clone(),
            receivers: cfg.receivers,
            connected: p.connected,
            connect_failures: p.failures,
            first_connect_error: p.first_error.clone(),
            connect_secs: p.connect_secs,
            connects_per_sec: rate(p.connected as f64, p.connect_secs),
            room_size: p.room_size,
            bytes: cfg.bytes,
            rate_requested: cfg.rate,
            messages_sent: p.sent,
            deliveries_expected: expected,
            deliveries_received: received,
            deliveries_lost: expected.saturating_sub(received),
            loss_pct: if expected > 0 {
                100.0 * expected.saturating_sub(received) as f64 / expected as f64
            } else {
                0.0
            },
            out_of_order: shared.out_of_order.load(Ordering::Relaxed),
            closed_by_server: shared.closed.load(Ordering::Relaxed),
            latency_us: Latency {
                p50: hist.quantile(0.50),
                p90: hist.quantile(0.90),
                p99: hist.quantile(0.99),
                p999: hist.quantile(0.999),
                max: hist.max(),
            },
            acks_ok: shared.acks_ok.load(Ordering::Relaxed),
            acks_err: shared.acks_err.load(Ordering::Relaxed),
            first_ack_error: shared.first_ack_error.lock().ok().and_then(|e| e.clone()),
            error_events: shared.error_events.load(Ordering::Relaxed),
            window_stalls: p.stalls,
            server_rss_before: p.rss_before,
            server_rss_after: p.rss_after,
            server_rss_end: cfg.server_pid.and_then(procfs::rss_bytes),
            machine_cores: procfs::cores(),
            timed_out,
            total_secs: total.as_secs_f64(),
            ..Report::default()
        };
        if let (Some(before), Some(after)) = (p.rss_before, p.rss_after) {
            r.server_bytes_per_conn = Some((after as f64 - before as f64) / members as f64);
        }
        r.members_with_loss = if p.sent > 0 {
            shared
                .per_member
                .iter()
                .filter(|m| {
                    m.joined.load(Ordering::Relaxed) && m.received.load(Ordering::Relaxed) < p.sent
                })
                .count() as u64
        } else {
            0
        };
        if let Some(start) = p.send_start {
            let end = p
                .drain_end
                .unwrap_or_else(|| Snapshot::take(cfg.server_pid));
            let send_end = p.send_end.unwrap_or(end.at);
            r.send_secs = send_end.duration_since(start.at).as_secs_f64();
            r.send_rate = rate(p.sent as f64, r.send_secs);
            let start_ns = start.at.duration_since(shared.t0).as_nanos() as u64;
            let last_ns = shared
                .per_member
                .iter()
                .map(|m| m.last_ns.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0);
            r.deliveries_per_sec = rate(
                received as f64,
                last_ns.saturating_sub(start_ns) as f64 / 1e9,
            );
            let window = end.at.duration_since(start.at).as_secs_f64();
            let ticks = procfs::TICKS_PER_SECOND as f64;
            let server = start
                .server
                .zip(end.server)
                .map(|(a, b)| b.saturating_sub(a));
            let generator = start
                .generator
                .zip(end.generator)
                .map(|(a, b)| b.saturating_sub(a));
            if let Some(s) = server {
                r.server_cpu_secs = Some(s as f64 / ticks);
                r.server_cpu_cores = Some(rate(s as f64 / ticks, window));
                if received > 0 {
                    r.server_cpu_ns_per_delivery = Some(s as f64 / ticks * 1e9 / received as f64);
                }
            }
            if let Some(g) = generator {
                r.generator_cpu_cores = Some(rate(g as f64 / ticks, window));
            }
            if let (Some(s0), Some(s1)) = (start.system, end.system) {
                let busy = s1.busy.saturating_sub(s0.busy);
                let niced = s1.niced.saturating_sub(s0.niced);
                let other =
                    busy.saturating_sub(niced + server.unwrap_or(0) + generator.unwrap_or(0));
                r.other_cpu_cores = Some(rate(other as f64 / ticks, window));
                r.niced_cpu_cores = Some(rate(niced as f64 / ticks, window));
            }
        }
        r
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn rate(count: f64, secs: f64) -> f64 {
    if secs > 0.0 { count / secs } else { 0.0 }
}

/// State every connection task updates.
#[derive(Debug)]
struct Shared {
    t0: Instant,
    id: usize,
    received: AtomicU64,
    /// The sender waits until `received` reaches this; `u64::MAX` when nobody waits.
    wake_at: AtomicU64,
    notify: Notify,
    per_member: Box<[Member]>,
    hists: Mutex<Vec<Arc<Histogram>>>,
    out_of_order: AtomicU64,
    closed: AtomicU64,
    acks_ok: AtomicU64,
    acks_err: AtomicU64,
    first_ack_error: Mutex<Option<String>>,
    error_events: AtomicU64,
    finder: memmem::Finder<'static>,
}

#[derive(Debug, Default)]
struct Member {
    joined: AtomicBool,
    received: AtomicU64,
    last_ns: AtomicU64,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static LOCAL_HIST: RefCell<Option<(usize, Arc<Histogram>)>> = const { RefCell::new(None) };
}

impl Shared {
    fn new(members: usize) -> Self {
        Self {
            t0: Instant::now(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            received: AtomicU64::new(0),
            wake_at: AtomicU64::new(u64::MAX),
            notify: Notify::new(),
            per_member: (0..members).map(|_| Member::default()).collect(),
            hists: Mutex::new(Vec::new()),
            out_of_order: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            acks_ok: AtomicU64::new(0),
            acks_err: AtomicU64::new(0),
            first_ack_error: Mutex::new(None),
            error_events: AtomicU64::new(0),
            finder: memmem::Finder::new(MARKER),
        }
    }

    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// Waits until `received >= target` or `deadline`; true when reached.
    async fn wait_for(&self, target: u64, deadline: Instant) -> bool {
        loop {
            if self.received.load(Ordering::Acquire) >= target {
                return true;
            }
            self.wake_at.store(target, Ordering::Release);
            // A delivery between the first check and the store would not notify: check again.
            if self.received.load(Ordering::Acquire) >= target {
                self.wake_at.store(u64::MAX, Ordering::Release);
                return true;
            }
            if tokio::time::timeout_at(deadline.into(), self.notify.notified())
                .await
                .is_err()
            {
                self.wake_at.store(u64::MAX, Ordering::Release);
                return self.received.load(Ordering::Acquire) >= target;
            }
        }
    }

    /// Records one event at member `idx`; `last_seq` is that member's previous sequence number.
    fn on_event(&self, idx: usize, packet: &socketio::Packet, last_seq: &mut Option<u64>) {
        match packet.event_name() {
            Ok(name) if name == "message" => {
                if let Some(data) = &packet.data {
                    self.on_message(idx, data.as_bytes(), last_seq);
                }
            }
            Ok(name) if name == "error" => {
                self.error_events.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Records one `message` event (its packet data or the whole frame) at member `idx`.
    fn on_message(&self, idx: usize, bytes: &[u8], last_seq: &mut Option<u64>) {
        let now = self.now_ns();
        let Some(stamp) = self
            .finder
            .find(bytes)
            .and_then(|at| bytes.get(at + MARKER.len()..at + MARKER.len() + 32))
        else {
            return;
        };
        let (Some(seq), Some(sent)) = (hex(&stamp[..16]), hex(&stamp[16..])) else {
            return;
        };
        self.record_latency(now.saturating_sub(sent) / 1_000);
        if last_seq.is_some_and(|last| seq <= last) {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        *last_seq = Some(seq);
        // Only this member's task writes its entry.
        let member = &self.per_member[idx];
        member.received.store(
            member.received.load(Ordering::Relaxed) + 1,
            Ordering::Relaxed,
        );
        member.last_ns.store(now, Ordering::Relaxed);
        let total = self.received.fetch_add(1, Ordering::AcqRel) + 1;
        if total >= self.wake_at.load(Ordering::Acquire)
            && self.wake_at.swap(u64::MAX, Ordering::AcqRel) != u64::MAX
        {
            self.notify.notify_one();
        }
    }

    fn on_ack(&self, packet: &socketio::Packet) {
        let ok = packet
            .data
            .as_ref()
            .is_some_and(|d| memmem::find(d.as_bytes(), br#""ok":true"#).is_some());
        if ok {
            self.acks_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.acks_err.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.first_ack_error.lock() {
                first.get_or_insert_with(|| {
                    packet
                        .data
                        .as_ref()
                        .map(|d| d.as_str().to_owned())
                        .unwrap_or_default()
                });
            }
        }
    }

    /// Records into this thread's histogram (one writer per histogram, no atomic RMW).
    fn record_latency(&self, micros: u64) {
        LOCAL_HIST.with(|cell| {
            let mut cell = cell.borrow_mut();
            match &*cell {
                Some((id, hist)) if *id == self.id => hist.record_single_writer(micros),
                _ => {
                    let hist = Arc::new(Histogram::default());
                    hist.record_single_writer(micros);
                    if let Ok(mut all) = self.hists.lock() {
                        all.push(hist.clone());
                    }
                    *cell = Some((self.id, hist));
                }
            }
        });
    }

    fn merged_histogram(&self) -> Histogram {
        let merged = Histogram::default();
        if let Ok(all) = self.hists.lock() {
            for h in all.iter() {
                merged.merge(h);
            }
        }
        merged
    }
}

fn hex(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(v))
    })
}

async fn receive_loop(mut reader: FrameReader, shared: &Shared, idx: usize) {
    let mut last_seq = None;
    loop {
        let text = match reader.next_frame().await {
            Frame::Text(text) => text,
            Frame::Ping(payload) => {
                let payload = payload.to_vec();
                if reader.pong(&payload).await.is_err() {
                    break;
                }
                continue;
            }
            Frame::Closed => break,
            _ => continue,
        };
        if text.starts_with(MESSAGE_PREFIX) {
            shared.on_message(idx, text, &mut last_seq);
            continue;
        }
        let Ok(text) = Utf8Bytes::try_from_bytes(bytes::Bytes::copy_from_slice(text)) else {
            continue;
        };
        match client::classify_text(text) {
            Incoming::Event(p) => shared.on_event(idx, &p, &mut last_seq),
            Incoming::Ping if reader.send_text(PONG).await.is_err() => break,
            Incoming::Closed => break,
            _ => {}
        }
    }
    shared.closed.fetch_add(1, Ordering::Relaxed);
}

async fn sender_reader(
    mut stream: futures_util::stream::SplitStream<Ws>,
    sink: Arc<tokio::sync::Mutex<SplitSink<Ws, Message>>>,
    shared: &Shared,
    idx: usize,
) {
    let mut last_seq = None;
    while let Some(frame) = stream.next().await {
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        if text.as_bytes().starts_with(MESSAGE_PREFIX) {
            shared.on_message(idx, text.as_bytes(), &mut last_seq);
            continue;
        }
        match client::classify(text) {
            Incoming::Event(p) => shared.on_event(idx, &p, &mut last_seq),
            Incoming::Ack(p) => shared.on_ack(&p),
            Incoming::Ping if sink.lock().await.send(client::pong_frame()).await.is_err() => break,
            Incoming::Closed => break,
            _ => {}
        }
    }
    shared.closed.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_stamps() {
        assert_eq!(hex(b"00000000000000ff"), Some(255));
        assert_eq!(hex(b"zz"), None);
    }
}
