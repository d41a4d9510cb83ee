//! Turns the JSON lines of many runs into the Markdown side-by-side table `run.sh` publishes:
//! per scenario and server the median of the clean runs, and sockeye's ratios to the peers.

use std::fmt::Write as _;

use serde_json::Value;

/// The servers in table order; others follow in order of appearance.
const ORDER: [&str; 3] = ["sockeye", "socketioxide", "node"];

/// One row of the table: a name, how to read it from a report, how to show it, and which way is
/// better.
struct Metric {
    name: &'static str,
    get: fn(&Value) -> Option<f64>,
    fmt: fn(f64) -> String,
    higher_is_better: bool,
}

const METRICS: &[Metric] = &[
    Metric {
        name: "deliveries/s",
        get: |r| num(r, "deliveries_per_sec").filter(|_| sent(r)),
        fmt: |v| format!("{v:.0}"),
        higher_is_better: true,
    },
    Metric {
        name: "latency p50 (ms)",
        get: |r| {
            r.pointer("/latency_us/p50")
                .and_then(Value::as_f64)
                .filter(|_| sent(r))
        },
        fmt: |v| format!("{:.2}", v / 1e3),
        higher_is_better: false,
    },
    Metric {
        name: "latency p99 (ms)",
        get: |r| {
            r.pointer("/latency_us/p99")
                .and_then(Value::as_f64)
                .filter(|_| sent(r))
        },
        fmt: |v| format!("{:.2}", v / 1e3),
        higher_is_better: false,
    },
    Metric {
        name: "latency max (ms)",
        get: |r| {
            r.pointer("/latency_us/max")
                .and_then(Value::as_f64)
                .filter(|_| sent(r))
        },
        fmt: |v| format!("{:.2}", v / 1e3),
        higher_is_better: false,
    },
    Metric {
        name: "server CPU per delivery (µs)",
        get: |r| num(r, "server_cpu_ns_per_delivery"),
        fmt: |v| format!("{:.3}", v / 1e3),
        higher_is_better: false,
    },
    Metric {
        name: "server CPU (cores)",
        get: |r| num(r, "server_cpu_cores"),
        fmt: |v| format!("{v:.2}"),
        higher_is_better: false,
    },
    Metric {
        name: "server memory per connection (KiB)",
        get: |r| num(r, "server_bytes_per_conn"),
        fmt: |v| format!("{:.1}", v / 1024.0),
        higher_is_better: false,
    },
    Metric {
        name: "server memory at the end (MiB)",
        get: |r| num(r, "server_rss_end"),
        fmt: |v| format!("{:.1}", v / 1_048_576.0),
        higher_is_better: false,
    },
    Metric {
        name: "connects/s",
        get: |r| num(r, "connects_per_sec"),
        fmt: |v| format!("{v:.0}"),
        higher_is_better: true,
    },
    Metric {
        name: "generator CPU (cores)",
        get: |r| num(r, "generator_cpu_cores"),
        fmt: |v| format!("{v:.2}"),
        higher_is_better: false,
    },
    Metric {
        name: "other processes' CPU (cores)",
        get: |r| num(r, "other_cpu_cores"),
        fmt: |v| format!("{v:.2}"),
        higher_is_better: false,
    },
    Metric {
        name: "niced background CPU (cores)",
        get: |r| num(r, "niced_cpu_cores"),
        fmt: |v| format!("{v:.2}"),
        higher_is_better: false,
    },
];

fn num(r: &Value, key: &str) -> Option<f64> {
    r.get(key).and_then(Value::as_f64)
}

fn sent(r: &Value) -> bool {
    r.get("messages_sent").and_then(Value::as_u64).unwrap_or(0) > 0
}

fn text<'a>(r: &'a Value, key: &str) -> &'a str {
    r.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Whether a run counts: it finished, every receiver connected, and other processes took at most
/// `noise_max` cores while it sent.
pub fn is_clean(r: &Value, noise_max: f64) -> bool {
    let finished = !r.get("timed_out").and_then(Value::as_bool).unwrap_or(true);
    let all_connected = r.get("connected") == r.get("receivers");
    let quiet = num(r, "other_cpu_cores").is_none_or(|c| c <= noise_max);
    finished && all_connected && quiet
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        f64::midpoint(values[mid - 1], values[mid])
    })
}

/// The Markdown tables for every scenario in `jsonl` (one report per line; other lines are
/// skipped). Runs with other processes above `noise_max` cores are left out of the medians
/// (a cell with no clean run shows the median of all runs, marked `*`); loss counts every run.
pub fn summarize(jsonl: &str, noise_max: f64) -> String {
    let runs: Vec<Value> = jsonl
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect();
    let mut scenarios: Vec<&str> = Vec::new();
    let mut servers: Vec<&str> = ORDER.to_vec();
    for r in &runs {
        let s = text(r, "scenario");
        if !scenarios.contains(&s) {
            scenarios.push(s);
        }
        let l = text(r, "label");
        if !servers.contains(&l) {
            servers.push(l);
        }
    }
    let mut out = String::new();
    for scenario in scenarios {
        let in_scenario: Vec<&Value> = runs
            .iter()
            .filter(|r| text(r, "scenario") == scenario)
            .collect();
        let present: Vec<&str> = servers
            .iter()
            .copied()
            .filter(|s| in_scenario.iter().any(|r| text(r, "label") == *s))
            .collect();
        let Some(first) = in_scenario.first() else {
            continue;
        };
        let rate = num(first, "rate_requested").unwrap_or(0.0);
        let _ = writeln!(
            out,
            "### {scenario}: {} receivers, {} B messages, {}\n",
            first.get("receivers").and_then(Value::as_u64).unwrap_or(0),
            first.get("bytes").and_then(Value::as_u64).unwrap_or(0),
            if !sent(first) {
                "no messages (idle connections)".to_owned()
            } else if rate > 0.0 {
                format!("{rate} messages/s")
            } else {
                format!(
                    "as fast as possible (window {} messages)",
                    first.get("window").and_then(Value::as_u64).unwrap_or(0)
                )
            }
        );
        let ratio_cols: Vec<&str> = ["socketioxide", "node"]
            .into_iter()
            .filter(|p| present.contains(p))
            .collect();
        let with_ratios = present.contains(&"sockeye");
        let _ = write!(out, "| metric |");
        for s in &present {
            let _ = write!(out, " {s} |");
        }
        if with_ratios {
            for p in &ratio_cols {
                let _ = write!(out, " sockeye/{p} |");
            }
        }
        let _ = write!(out, "\n|---|");
        for _ in &present {
            let _ = write!(out, "---:|");
        }
        if with_ratios {
            for _ in &ratio_cols {
                let _ = write!(out, "---:|");
            }
        }
        out.push('\n');

        let runs_of = |server: &str| -> Vec<&Value> {
            in_scenario
                .iter()
                .copied()
                .filter(|r| text(r, "label") == server)
                .collect()
        };
        // Loss over every run, clean or not.
        let _ = write!(out, "| lost / expected deliveries (all runs) |");
        for s in &present {
            let rs = runs_of(s);
            let lost: u64 = rs
                .iter()
                .filter_map(|r| r["deliveries_lost"].as_u64())
                .sum();
            let expected: u64 = rs
                .iter()
                .filter_map(|r| r["deliveries_expected"].as_u64())
                .sum();
            let _ = write!(out, " {lost} / {expected} |");
        }
        if with_ratios {
            for _ in &ratio_cols {
                let _ = write!(out, " |");
            }
        }
        out.push('\n');
        for metric in METRICS {
            let mut cells: Vec<Option<(f64, bool)>> = Vec::new();
            for s in &present {
                let rs = runs_of(s);
                let clean: Vec<f64> = rs
                    .iter()
                    .filter(|r| is_clean(r, noise_max))
                    .filter_map(|r| (metric.get)(r))
                    .collect();
                cells.push(match median(clean) {
                    Some(v) => Some((v, true)),
                    None => median(rs.iter().filter_map(|r| (metric.get)(r)).collect())
                        .map(|v| (v, false)),
                });
            }
            if cells.iter().all(Option::is_none) {
                continue;
            }
            let arrow = if metric.higher_is_better {
                "↑"
            } else {
                "↓"
            };
            let _ = write!(out, "| {} {arrow} |", metric.name);
            for cell in &cells {
                match cell {
                    Some((v, true)) => {
                        let _ = write!(out, " {} |", (metric.fmt)(*v));
                    }
                    Some((v, false)) => {
                        let _ = write!(out, " {}* |", (metric.fmt)(*v));
                    }
                    None => out.push_str(" - |"),
                }
            }
            if with_ratios {
                let ours = cells[0].map(|(v, _)| v);
                for p in &ratio_cols {
                    let i = present.iter().position(|s| s == p).unwrap_or(0);
                    match (ours, cells[i].map(|(v, _)| v)) {
                        (Some(a), Some(b)) if b != 0.0 => {
                            let _ = write!(out, " {:.2}× |", a / b);
                        }
                        _ => out.push_str(" - |"),
                    }
                }
            }
            out.push('\n');
        }
        let _ = write!(out, "| clean runs / runs |");
        for s in &present {
            let rs = runs_of(s);
            let clean = rs.iter().filter(|r| is_clean(r, noise_max)).count();
            let _ = write!(out, " {clean} / {} |", rs.len());
        }
        if with_ratios {
            for _ in &ratio_cols {
                let _ = write!(out, " |");
            }
        }
        out.push_str("\n\n");
    }
    out.push_str(&targets(&runs, noise_max));
    out
}

/// The median of `get` over the clean runs of `label` in `scenario` (or over all its runs when
/// none is clean, flagged `false`).
fn cell(
    runs: &[Value],
    scenario: &str,
    label: &str,
    get: fn(&Value) -> Option<f64>,
    noise_max: f64,
) -> Option<(f64, bool)> {
    let rs: Vec<&Value> = runs
        .iter()
        .filter(|r| text(r, "scenario") == scenario && text(r, "label") == label)
        .collect();
    let clean = rs
        .iter()
        .filter(|r| is_clean(r, noise_max))
        .filter_map(|r| get(r))
        .collect();
    match median(clean) {
        Some(v) => Some((v, true)),
        None => median(rs.iter().filter_map(|r| get(r)).collect()).map(|v| (v, false)),
    }
}

/// One speed target of issue 7: sockeye's value divided by socketioxide's, in a scenario.
struct Target {
    what: &'static str,
    scenarios: &'static [&'static str],
    get: fn(&Value) -> Option<f64>,
    /// The ratio must be at least this (when `at_least`) or at most this.
    bound: f64,
    at_least: bool,
}

const TARGETS: &[Target] = &[
    Target {
        what: "deliveries/s at saturation without loss",
        scenarios: &["saturate-1k", "saturate-500"],
        get: |r| num(r, "deliveries_per_sec").filter(|_| r["deliveries_lost"].as_u64() == Some(0)),
        bound: 2.0,
        at_least: true,
    },
    Target {
        what: "server CPU per delivery at saturation",
        scenarios: &["saturate-1k", "saturate-500"],
        get: |r| num(r, "server_cpu_ns_per_delivery"),
        bound: 0.5,
        at_least: false,
    },
    Target {
        what: "server CPU per delivery, 5,000 receivers at 10 msg/s",
        scenarios: &["fanout-5k-10hz", "fanout-500-10hz"],
        get: |r| num(r, "server_cpu_ns_per_delivery"),
        bound: 0.5,
        at_least: false,
    },
    Target {
        what: "p99 latency, 5,000 receivers at 10 msg/s",
        scenarios: &["fanout-5k-10hz", "fanout-500-10hz"],
        get: |r| r.pointer("/latency_us/p99").and_then(Value::as_f64),
        bound: 0.5,
        at_least: false,
    },
    Target {
        what: "memory per idle WebSocket connection",
        scenarios: &["idle-5k", "idle-500"],
        get: |r| num(r, "server_bytes_per_conn"),
        bound: 0.25,
        at_least: false,
    },
];

/// The targets against socketioxide, and sockeye's loss over every run.
fn targets(runs: &[Value], noise_max: f64) -> String {
    let has = |label: &str| runs.iter().any(|r| text(r, "label") == label);
    if !has("sockeye") || !has("socketioxide") {
        return String::new();
    }
    let mut out = String::from(
        "### Targets (issue 7): sockeye ÷ socketioxide\n\n| target | scenario | ratio | bound | met |\n|---|---|---:|---:|---|\n",
    );
    for t in TARGETS {
        let Some(scenario) = t.scenarios.iter().copied().find(|s| {
            runs.iter()
                .any(|r| text(r, "scenario") == *s && text(r, "label") == "sockeye")
        }) else {
            continue;
        };
        let ours = cell(runs, scenario, "sockeye", t.get, noise_max);
        let theirs = cell(runs, scenario, "socketioxide", t.get, noise_max);
        let (ratio, met) = match (ours, theirs) {
            (Some((a, _)), Some((b, _))) if b != 0.0 => {
                let ratio = a / b;
                let met = if t.at_least {
                    ratio >= t.bound
                } else {
                    ratio <= t.bound
                };
                (format!("{ratio:.2}×"), if met { "yes" } else { "**no**" })
            }
            _ => ("-".to_owned(), "-"),
        };
        let bound = format!("{} {:.2}×", if t.at_least { "≥" } else { "≤" }, t.bound);
        let _ = writeln!(
            out,
            "| {} | {scenario} | {ratio} | {bound} | {met} |",
            t.what
        );
    }
    let ours: Vec<&Value> = runs
        .iter()
        .filter(|r| text(r, "label") == "sockeye")
        .collect();
    let lost: u64 = ours
        .iter()
        .filter_map(|r| r["deliveries_lost"].as_u64())
        .sum();
    let expected: u64 = ours
        .iter()
        .filter_map(|r| r["deliveries_expected"].as_u64())
        .sum();
    let _ = writeln!(
        out,
        "| zero loss at every rate (sockeye, all runs) | all | {lost} lost of {expected} | 0 | {} |",
        if lost == 0 { "yes" } else { "**no**" }
    );
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(label: &str, dps: f64, other: f64) -> String {
        serde_json::json!({
            "label": label, "scenario": "s", "receivers": 10, "connected": 10, "bytes": 64,
            "rate_requested": 0.0, "window": 16, "messages_sent": 5, "timed_out": false,
            "deliveries_per_sec": dps, "deliveries_lost": 0, "deliveries_expected": 55,
            "latency_us": {"p50": 1000, "p99": 2000, "max": 3000},
            "other_cpu_cores": other,
        })
        .to_string()
    }

    #[test]
    fn medians_clean_runs_and_computes_ratios() {
        let jsonl = [
            line("sockeye", 300.0, 0.0),
            line("sockeye", 900.0, 1.5), // noisy: left out
            line("sockeye", 500.0, 0.1),
            line("socketioxide", 200.0, 0.0),
            line("node", 100.0, 0.0),
        ]
        .join("\n");
        let table = summarize(&jsonl, 0.25);
        assert!(
            table.contains("| deliveries/s ↑ | 400 | 200 | 100 | 2.00× | 4.00× |"),
            "{table}"
        );
        assert!(
            table.contains("| clean runs / runs | 2 / 3 | 1 / 1 | 1 / 1 |"),
            "{table}"
        );
        assert!(
            table.contains("| lost / expected deliveries (all runs) | 0 / 165 |"),
            "{table}"
        );
    }

    #[test]
    fn checks_targets_against_socketioxide() {
        let jsonl = [
            line("sockeye", 500.0, 0.0),
            line("socketioxide", 200.0, 0.0),
        ]
        .join("\n")
        .replace("\"scenario\":\"s\"", "\"scenario\":\"saturate-1k\"");
        let table = summarize(&jsonl, 0.25);
        assert!(
            table.contains(
                "| deliveries/s at saturation without loss | saturate-1k | 2.50× | ≥ 2.00× | yes |"
            ),
            "{table}"
        );
        assert!(table.contains("| 0 lost of 55 | 0 | yes |"), "{table}");
    }

    #[test]
    fn marks_cells_without_clean_runs() {
        let table = summarize(&line("node", 100.0, 1.0), 0.25);
        assert!(table.contains("| deliveries/s ↑ | 100* |"), "{table}");
    }
}
