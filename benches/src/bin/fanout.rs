//! The fan-out load generator: N Socket.IO receivers in one room, a sender broadcasting M
//! messages of B bytes into it, and a report of what arrived (one JSON line on stdout, a table on
//! stderr). Loopback servers only; the run ends by itself within `--max-seconds`.
//!
//! ```text
//! fanout --url http://127.0.0.1:3000 --receivers 1000 --messages 100 --rate 10 \
//!        --server-pid $PID --jwt-secret "$SECRET" --label sockeye
//! ```
#![allow(clippy::print_stdout)] // the JSON report goes to stdout

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use sockeye_benches::fanout::run::{Config, Report, Runner};
use sockeye_benches::fanout::target::Target;
use sockeye_benches::fanout::{jwt, summary};

/// Fan-out load generator for Socket.IO servers (Engine.IO v4 / Socket.IO v5 over WebSocket).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The server: http://127.0.0.1:PORT (loopback addresses only).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// A name for this run in the report.
    #[arg(long, default_value = "run")]
    label: String,
    /// A scenario name for the report.
    #[arg(long, default_value = "")]
    scenario: String,
    /// A repetition number for the report.
    #[arg(long, default_value_t = 0)]
    rep: u32,
    /// Receivers to connect (the sender is one more room member).
    #[arg(long, short = 'n', default_value_t = 1000)]
    receivers: usize,
    /// Receivers connecting at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Messages to send (0: only connect, to measure memory per connection).
    #[arg(long, short = 'm', default_value_t = 100)]
    messages: u64,
    /// Content length of each message, in bytes (at least 33).
    #[arg(long, short = 'b', default_value_t = 64)]
    bytes: usize,
    /// Messages per second; 0 sends as fast as the window allows.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Messages sent but not yet delivered to every member, at most.
    #[arg(long, default_value_t = 16)]
    window: u64,
    /// Stop sending after this many seconds.
    #[arg(long, default_value_t = 30.0)]
    send_seconds: f64,
    /// After the last send, wait this long at most for deliveries.
    #[arg(long, default_value_t = 10.0)]
    drain_seconds: f64,
    /// Milliseconds between the last join and the memory reading.
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    /// Seconds each connection's setup may take.
    #[arg(long, default_value_t = 20)]
    setup_timeout: u64,
    /// Hard bound on the whole run, in seconds: the report is printed then, complete or not.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
    /// Room name.
    #[arg(long, default_value = "bench")]
    room: String,
    /// Mint an HS256 JWT with this secret and send it in the CONNECT auth payload.
    #[arg(long, env = "FANOUT_JWT_SECRET")]
    jwt_secret: Option<String>,
    /// Send this token in the CONNECT auth payload (instead of minting one).
    #[arg(long, conflicts_with = "jwt_secret")]
    token: Option<String>,
    /// The server's PID: report its CPU per delivery and memory per connection.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Generator threads (each runs its own single-threaded runtime and a share of the receivers).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Instead of running: print the Markdown side-by-side table of the reports in this JSON-lines
    /// file (as `run.sh` does).
    #[arg(long, value_name = "JSONL")]
    summarize: Option<std::path::PathBuf>,
    /// With --summarize: leave out runs during which other processes took more than this many
    /// cores.
    #[arg(long, default_value_t = 0.25)]
    noise_max: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.summarize {
        return match std::fs::read_to_string(path) {
            Ok(jsonl) => {
                print!("{}", summary::summarize(&jsonl, args.noise_max));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("fanout: {}: {e}", path.display());
                ExitCode::from(2)
            }
        };
    }
    let target = match Target::parse(&args.url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fanout: {}: {e}", args.url);
            return ExitCode::from(2);
        }
    };
    if args.bytes < 33 {
        eprintln!("fanout: --bytes must be at least 33 (the sequence number and timestamp)");
        return ExitCode::from(2);
    }
    let token = match (&args.jwt_secret, &args.token) {
        (Some(secret), _) => match jwt::mint_hs256(secret.as_bytes(), "bench", 3600) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("fanout: cannot mint a token: {e}");
                return ExitCode::from(2);
            }
        },
        (None, token) => token.clone(),
    };
    let config = Config {
        target,
        label: args.label.clone(),
        scenario: args.scenario.clone(),
        rep: args.rep,
        receivers: args.receivers,
        concurrency: args.concurrency,
        messages: args.messages,
        bytes: args.bytes,
        rate: args.rate,
        window: args.window,
        send_seconds: args.send_seconds,
        drain_seconds: args.drain_seconds,
        settle: Duration::from_millis(args.settle_ms),
        setup_timeout: Duration::from_secs(args.setup_timeout),
        token,
        server_pid: args.server_pid,
        room: args.room.clone(),
        runtimes: Vec::new(),
    };
    // One single-threaded runtime per generator thread; this thread drives the first one (the
    // sender and the bookkeeping), the others only run receivers.
    let build = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fanout: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = config;
    config.runtimes.push(runtime.handle().clone());
    for i in 1..args.threads.max(1) {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("fanout-{i}"))
            .spawn(move || match build() {
                Ok(rt) => {
                    let _ = handle_tx.send(Some(rt.handle().clone()));
                    // Runs this runtime's tasks until the process exits.
                    rt.block_on(std::future::pending::<()>());
                }
                Err(_) => {
                    let _ = handle_tx.send(None);
                }
            });
        match (spawned, handle_rx.recv()) {
            (Ok(_), Ok(Some(handle))) => config.runtimes.push(handle),
            _ => {
                eprintln!("fanout: cannot start generator thread {i}");
                return ExitCode::from(2);
            }
        }
    }
    let started = Instant::now();
    let runner = Runner::new(config);
    let outcome = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(args.max_seconds), runner.run()).await
    });
    let (timed_out, error) = match outcome {
        Ok(Ok(())) => (false, None),
        Ok(Err(e)) => (false, Some(e)),
        Err(_) => (true, None),
    };
    let report = runner.report(timed_out, started.elapsed());
    print_table(&report, error.as_deref());
    match serde_json::to_string(&report) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("fanout: cannot serialize the report: {e}"),
    }
    // Thousands of sockets: leave without waiting for each task to wind down.
    runtime.shutdown_background();
    if error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_table(r: &Report, error: Option<&str>) {
    let opt = |v: Option<f64>, scale: f64, unit: &str| {
        v.map_or_else(|| "-".to_owned(), |v| format!("{:.2}{unit}", v * scale))
    };
    eprintln!("── fanout {} → {} ──", r.label, r.target);
    if let Some(e) = error {
        eprintln!("  ERROR               {e}");
    }
    if r.timed_out {
        eprintln!("  TIMED OUT           the run hit --max-seconds; figures are partial");
    }
    eprintln!(
        "  connected           {}/{} in {:.2}s ({:.0}/s){}",
        r.connected,
        r.receivers,
        r.connect_secs,
        r.connects_per_sec,
        r.first_connect_error
            .as_deref()
            .map(|e| format!("; first error: {e}"))
            .unwrap_or_default()
    );
    eprintln!("  room size (ack)     {}", r.room_size);
    eprintln!(
        "  sent                {} msgs of {} B in {:.2}s ({:.1}/s, asked {})",
        r.messages_sent, r.bytes, r.send_secs, r.send_rate, r.rate_requested
    );
    eprintln!(
        "  deliveries          {} / {} expected, lost {} ({:.3}%), {} members with loss, {} out of order",
        r.deliveries_received,
        r.deliveries_expected,
        r.deliveries_lost,
        r.loss_pct,
        r.members_with_loss,
        r.out_of_order
    );
    eprintln!("  deliveries/s        {:.0}", r.deliveries_per_sec);
    let l = r.latency_us;
    eprintln!(
        "  latency ms          p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        l.p50 as f64 / 1e3,
        l.p90 as f64 / 1e3,
        l.p99 as f64 / 1e3,
        l.p999 as f64 / 1e3,
        l.max as f64 / 1e3
    );
    eprintln!(
        "  acks                ok {}  err {}{}  error events {}  window stalls {}  closed by server {}",
        r.acks_ok,
        r.acks_err,
        r.first_ack_error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default(),
        r.error_events,
        r.window_stalls,
        r.closed_by_server
    );
    eprintln!(
        "  server CPU          {} per delivery, {} busy",
        opt(r.server_cpu_ns_per_delivery, 1.0, " ns"),
        opt(r.server_cpu_cores, 1.0, " cores")
    );
    eprintln!(
        "  server RSS          {} before, {} after connect, {} at end; {} per connection",
        opt(
            r.server_rss_before.map(|v| v as f64),
            1.0 / 1_048_576.0,
            " MiB"
        ),
        opt(
            r.server_rss_after.map(|v| v as f64),
            1.0 / 1_048_576.0,
            " MiB"
        ),
        opt(
            r.server_rss_end.map(|v| v as f64),
            1.0 / 1_048_576.0,
            " MiB"
        ),
        opt(r.server_bytes_per_conn, 1.0 / 1024.0, " KiB")
    );
    eprintln!(
        "  CPU (cores)         generator {}, other processes {}, niced background {} (of {})",
        opt(r.generator_cpu_cores, 1.0, ""),
        opt(r.other_cpu_cores, 1.0, ""),
        opt(r.niced_cpu_cores, 1.0, ""),
        r.machine_cores
    );
}
