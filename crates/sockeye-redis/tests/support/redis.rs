//! Real Redis servers for the tests: one `redis-server`, or a Redis Cluster of several
//! `--cluster-enabled` masters created with `redis-cli --cluster create`. Each listens on a
//! free port of 127.0.0.1, is stopped by its PID when dropped, and a server that cannot start
//! fails the test loudly (never a silent skip). `redis-server` and `redis-cli` come from
//! Debian's `redis-server` package (`.ci/run` and `tests/cluster/setup.sh` install it).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a server gets to start, and a cluster to reach `cluster_state:ok`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A fresh working directory for one server (removed when the server is dropped).
fn scratch_dir(tag: &str) -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sockeye-redis-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    dir
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A free port of 127.0.0.1 (the OS picks it).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// A free port whose cluster bus port (`port + 10000`) is free too.
fn free_cluster_port(taken: &[u16]) -> u16 {
    for _ in 0..1000 {
        let port = free_port();
        if port <= 55_535
            && !taken.contains(&port)
            && !taken
                .iter()
                .any(|t| *t == port + 10_000 || t + 10_000 == port)
            && port_is_free(port + 10_000)
        {
            return port;
        }
    }
    panic!("no free port pair (port, port + 10000) on 127.0.0.1");
}

/// Sends one inline command and reads the first reply line (enough for PING).
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// Runs `redis-cli -h 127.0.0.1 -p PORT ARGS...` and returns its standard output.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("redis-cli cannot run ({e}); install the redis-server package"));
    assert!(
        output.status.success(),
        "redis-cli {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `redis-cli -h 127.0.0.1 -p PORT -x ARGS...`: the last argument is `stdin`, byte for
/// byte (how a test publishes binary payloads).
pub fn redis_cli_with_last_arg(port: u16, args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-x"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("redis-cli cannot run ({e}); install the redis-server package"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "redis-cli -x {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a test asks Redis directly (with `redis-cli`, independent of the crate's client).
pub trait RedisView {
    /// `PUBSUB SHARDNUMSUB channel` (summed over the masters of a cluster).
    fn shard_numsub(&self, channel: &str) -> usize;
    /// `PUBSUB SHARDCHANNELS pattern` (over every master), sorted.
    fn shard_channels(&self, pattern: &str) -> Vec<String>;
    /// `SPUBLISH channel payload` (on the slot owner of a cluster).
    fn spublish(&self, channel: &str, payload: &[u8]);
}

/// The count of a `PUBSUB SHARDNUMSUB ch` reply (`ch` then the number, one per line).
fn numsub_count(reply: &str) -> usize {
    reply
        .lines()
        .nth(1)
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("not a SHARDNUMSUB reply: {reply:?}"))
}

/// The lines of a `redis-cli` reply, empty ones dropped, sorted.
pub fn reply_lines(reply: &str) -> Vec<String> {
    let mut lines: Vec<String> = reply
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// One `redis-server` process.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a plain `redis-server` on a free port and waits until it answers PING.
    ///
    /// # Panics
    /// When `redis-server` is missing or does not start in time (with its log).
    pub fn start() -> Self {
        let dir = scratch_dir("server");
        for _ in 0..5 {
            let port = free_port();
            if let Some(server) = Self::spawn(port, &dir, &[]) {
                return server;
            }
        }
        panic!("redis-server did not start: {}", log_tail(&dir));
    }

    /// Starts one server with extra arguments on `port`; `None` if it exited (port taken).
    fn spawn(port: u16, dir: &Path, extra: &[&str]) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server cannot run ({e}); install the redis-server package")
            });
        let mut server = Self {
            child,
            port,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if ping(port) {
                return Some(server);
            }
            if let Ok(Some(_)) = server.child.try_wait() {
                return None; // exited: most likely the port was taken meanwhile
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {port} did not answer PING within {START_TIMEOUT:?}: {}",
            log_tail(dir)
        );
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `redis-cli` against this server.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(self.port, args)
    }

    /// `PUBSUB SHARDCHANNELS [pattern]`, sorted.
    pub fn shard_channels(&self, pattern: &str) -> Vec<String> {
        reply_lines(&self.cli(&["PUBSUB", "SHARDCHANNELS", pattern]))
    }

    /// `PUBSUB SHARDNUMSUB channel` on this server.
    pub fn shard_numsub(&self, channel: &str) -> usize {
        numsub_count(&self.cli(&["PUBSUB", "SHARDNUMSUB", channel]))
    }

    /// Stops the process (by its PID) and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisView for RedisServer {
    fn shard_numsub(&self, channel: &str) -> usize {
        Self::shard_numsub(self, channel)
    }

    fn shard_channels(&self, pattern: &str) -> Vec<String> {
        Self::shard_channels(self, pattern)
    }

    fn spublish(&self, channel: &str, payload: &[u8]) {
        redis_cli_with_last_arg(self.port, &["SPUBLISH", channel], payload);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// A Redis Cluster of `masters` masters and no replicas, every hash slot assigned.
#[derive(Debug)]
pub struct RedisClusterNodes {
    masters: Vec<RedisServer>,
}

impl RedisClusterNodes {
    /// Starts `masters` (at least 3, Redis' minimum) `--cluster-enabled yes` servers on free
    /// ports, creates the cluster with `redis-cli --cluster create ... --cluster-yes` and waits
    /// for `cluster_state:ok` on every master.
    ///
    /// # Panics
    /// When a server does not start, the creation fails or the cluster never gets ready.
    pub fn start(masters: usize) -> Self {
        assert!(masters >= 3, "a Redis Cluster needs at least 3 masters");
        let mut nodes: Vec<RedisServer> = Vec::with_capacity(masters);
        while nodes.len() < masters {
            let taken: Vec<u16> = nodes.iter().map(RedisServer::port).collect();
            let port = free_cluster_port(&taken);
            let dir = scratch_dir("cluster");
            let conf = dir.join("nodes.conf");
            let conf = conf.to_str().expect("a UTF-8 temp path");
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                conf,
                "--cluster-node-timeout",
                "5000",
            ];
            match RedisServer::spawn(port, &dir, &extra) {
                Some(server) => nodes.push(server),
                None => {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("redis-cli cannot run: {e}"));
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self { masters: nodes };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = cluster
                .masters
                .iter()
                .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster did not reach cluster_state:ok within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// The masters.
    pub fn masters(&self) -> &[RedisServer] {
        &self.masters
    }

    /// `redis://127.0.0.1:PORT` of every master.
    pub fn urls(&self) -> Vec<String> {
        self.masters.iter().map(RedisServer::url).collect()
    }

    /// `PUBSUB SHARDCHANNELS [pattern]` over every master, sorted (each shard channel lives on
    /// the master owning its slot).
    pub fn shard_channels(&self, pattern: &str) -> Vec<String> {
        let mut all: Vec<String> = self
            .masters
            .iter()
            .flat_map(|m| m.shard_channels(pattern))
            .collect();
        all.sort();
        all
    }

    /// The port of the master owning `channel`'s hash slot (`CLUSTER KEYSLOT` + `CLUSTER
    /// SLOTS`, as a cluster client routes it).
    pub fn owner_of(&self, channel: &str) -> u16 {
        let first = &self.masters[0];
        let slot: u16 = first
            .cli(&["CLUSTER", "KEYSLOT", channel])
            .trim()
            .parse()
            .unwrap();
        for master in &self.masters {
            let text = master.cli(&["CLUSTER", "MYID"]);
            let id = text.trim();
            let nodes = master.cli(&["CLUSTER", "NODES"]);
            for line in nodes.lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.first() != Some(&id) {
                    continue;
                }
                for range in fields.iter().skip(8) {
                    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                    let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) else {
                        continue;
                    };
                    if (lo..=hi).contains(&slot) {
                        return master.port();
                    }
                }
            }
        }
        panic!("no master owns slot {slot} of {channel}");
    }
}

impl RedisView for RedisClusterNodes {
    fn shard_numsub(&self, channel: &str) -> usize {
        self.masters.iter().map(|m| m.shard_numsub(channel)).sum()
    }

    fn shard_channels(&self, pattern: &str) -> Vec<String> {
        Self::shard_channels(self, pattern)
    }

    fn spublish(&self, channel: &str, payload: &[u8]) {
        redis_cli_with_last_arg(self.owner_of(channel), &["SPUBLISH", channel], payload);
    }
}

/// A `redis-cli SSUBSCRIBE channel` process: what a bystander sees on a shard channel.
#[derive(Debug)]
pub struct ShardSubscriber {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl ShardSubscriber {
    /// Subscribes `channel` on the server at `port` and waits for the confirmation.
    pub fn start(port: u16, channel: &str) -> Self {
        let mut child = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "SSUBSCRIBE",
                channel,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-cli cannot run: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut subscriber = Self { child, lines };
        // redis-cli prints the confirmation as three lines: ssubscribe, channel, count.
        assert_eq!(subscriber.next_line(), "ssubscribe");
        assert_eq!(subscriber.next_line(), channel);
        subscriber.next_line();
        subscriber
    }

    fn next_line(&mut self) -> String {
        self.lines
            .recv_timeout(START_TIMEOUT)
            .unwrap_or_else(|_| panic!("redis-cli SSUBSCRIBE printed nothing in time"))
    }

    /// The next message's payload (as text), waiting for it.
    pub fn next_message(&mut self) -> String {
        assert_eq!(self.next_line(), "smessage");
        self.next_line(); // the channel
        self.next_line()
    }
}

impl Drop for ShardSubscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
