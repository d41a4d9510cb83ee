//! `/metrics`: the contract's series in the Prometheus text format, on `prometheus-client`.
//!
//! Counters and gauges are atomics updated where things happen (a session opens, a message is
//! queued). Values that the broker already knows (sockets per namespace, rooms) are read when
//! the endpoint is scraped, so the hot paths do no bookkeeping for them.

use std::fmt;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::app::ErrorCode;
use crate::cluster::{ClusterSlot, ClusterStatus};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabel {
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// The server's metrics. Cheap to clone; every handle updates the same values.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    polling: Gauge,
    websocket: Gauge,
    sockets: Family<NamespaceLabel, Gauge>,
    rooms: Gauge,
    events_received: Counter,
    events_sent: Counter,
    errors: Family<CodeLabel, Counter>,
    bytes_received: Counter,
    bytes_sent: Counter,
    slow_consumer_closes: Counter,
    fanout: Histogram,
    auth_refusals: Family<ReasonLabel, Counter>,
    connections_refused: Counter,
    cluster: ClusterSlot,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Which transport a session uses, for `sockeye_connections{transport}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl Metrics {
    /// A registry with every series at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let connections = Family::<TransportLabel, Gauge>::default();
        let polling = connections
            .get_or_create(&TransportLabel {
                transport: "polling",
            })
            .clone();
        let websocket = connections
            .get_or_create(&TransportLabel {
                transport: "websocket",
            })
            .clone();
        registry.register(
            "sockeye_connections",
            "Open Engine.IO sessions by transport",
            connections,
        );
        let sockets = Family::<NamespaceLabel, Gauge>::default();
        registry.register(
            "sockeye_sockets",
            "Connected Socket.IO sockets by namespace",
            sockets.clone(),
        );
        let rooms = Gauge::default();
        registry.register(
            "sockeye_rooms",
            "Rooms with members over all namespaces, not counting the rooms named by socket ids",
            rooms.clone(),
        );
        let events_received = Counter::default();
        registry.register(
            "sockeye_events_received",
            "Socket.IO events received from clients",
            events_received.clone(),
        );
        let events_sent = Counter::default();
        registry.register(
            "sockeye_events_sent",
            "Socket.IO events queued to clients (one per recipient)",
            events_sent.clone(),
        );
        let errors = Family::<CodeLabel, Counter>::default();
        for code in ErrorCode::ALL {
            let _ = errors.get_or_create(&CodeLabel {
                code: code.as_str(),
            });
        }
        registry.register(
            "sockeye_errors",
            "Application errors sent to clients, by code",
            errors.clone(),
        );
        let bytes_received = Counter::default();
        registry.register(
            "sockeye_bytes_received",
            "Engine.IO message bytes received",
            bytes_received.clone(),
        );
        let bytes_sent = Counter::default();
        registry.register(
            "sockeye_bytes_sent",
            "Engine.IO message bytes queued to clients",
            bytes_sent.clone(),
        );
        let slow_consumer_closes = Counter::default();
        registry.register(
            "sockeye_slow_consumer_closes",
            "Sessions closed because their outbound queue was full",
            slow_consumer_closes.clone(),
        );
        let fanout = Histogram::new(exponential_buckets(1.0, 4.0, 9));
        registry.register(
            "sockeye_broadcast_fanout",
            "Recipients per room broadcast",
            fanout.clone(),
        );
        let auth_refusals = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "sockeye_auth_refusals",
            "Refused handshake and refresh tokens, by reason",
            auth_refusals.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "sockeye_connections_refused",
            "Sessions refused by the per-address connection cap",
            connections_refused.clone(),
        );
        // The cluster adapter's counters, read at each scrape (nothing while there is none).
        let cluster = ClusterSlot::default();
        registry.register_collector(Box::new(cluster.clone()));
        Self {
            inner: Arc::new(Inner {
                registry,
                polling,
                websocket,
                sockets,
                rooms,
                events_received,
                events_sent,
                errors,
                bytes_received,
                bytes_sent,
                slow_consumer_closes,
                fanout,
                auth_refusals,
                connections_refused,
                cluster,
            }),
        }
    }

    fn transport(&self, kind: TransportKind) -> &Gauge {
        match kind {
            TransportKind::Polling => &self.inner.polling,
            TransportKind::WebSocket => &self.inner.websocket,
        }
    }

    /// A session opened.
    pub fn session_opened(&self, kind: TransportKind) {
        self.transport(kind).inc();
    }

    /// A session moved from polling to WebSocket.
    pub fn session_upgraded(&self) {
        self.inner.polling.dec();
        self.inner.websocket.inc();
    }

    /// A session closed.
    pub fn session_closed(&self, kind: TransportKind) {
        self.transport(kind).dec();
    }

    /// Bytes and events of one message from a client.
    pub fn received(&self, bytes: usize, is_event: bool) {
        self.inner.bytes_received.inc_by(bytes as u64);
        if is_event {
            self.inner.events_received.inc();
        }
    }

    /// Bytes and events of one message queued to a client.
    pub fn sent(&self, bytes: usize, is_event: bool) {
        self.inner.bytes_sent.inc_by(bytes as u64);
        if is_event {
            self.inner.events_sent.inc();
        }
    }

    /// An application error went to a client.
    pub fn error(&self, code: ErrorCode) {
        self.inner
            .errors
            .get_or_create(&CodeLabel {
                code: code.as_str(),
            })
            .inc();
    }

    /// A session was closed by the slow-consumer policy.
    pub fn slow_consumer_close(&self) {
        self.inner.slow_consumer_closes.inc();
    }

    /// A room broadcast reached `recipients` sockets.
    pub fn fanout(&self, recipients: usize) {
        #[allow(clippy::cast_precision_loss)]
        self.inner.fanout.observe(recipients as f64);
    }

    /// A token was refused.
    pub fn auth_refused(&self, reason: &'static str) {
        self.inner
            .auth_refusals
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// A session was refused by the connection cap.
    pub fn connection_refused(&self) {
        self.inner.connections_refused.inc();
    }

    /// Sets the gauges read at scrape time: sockets per namespace and the number of rooms.
    pub fn set_broker_gauges<'a>(
        &self,
        namespaces: impl IntoIterator<Item = (&'a str, usize, usize)>,
    ) {
        let mut rooms = 0;
        for (name, sockets, room_count) in namespaces {
            rooms += room_count;
            self.inner
                .sockets
                .get_or_create(&NamespaceLabel {
                    namespace: name.to_owned(),
                })
                .set(i64::try_from(sockets).unwrap_or(i64::MAX));
        }
        self.inner
            .rooms
            .set(i64::try_from(rooms).unwrap_or(i64::MAX));
    }

    /// Exports this cluster adapter's counters (`sockeye_cluster_*`) from now on.
    pub fn set_cluster(&self, status: Arc<dyn ClusterStatus>) {
        self.inner.cluster.set(status);
    }

    /// The Prometheus text exposition (OpenMetrics 1.0, which Prometheus also reads as text).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{series} not in\n{text}"))
    }

    #[test]
    fn the_contract_names() {
        let m = Metrics::new();
        m.session_opened(TransportKind::Polling);
        m.session_opened(TransportKind::Polling);
        m.session_upgraded();
        m.received(10, true);
        m.sent(7, true);
        m.sent(3, false);
        m.error(ErrorCode::Validation);
        m.fanout(3);
        m.slow_consumer_close();
        m.auth_refused("expired");
        m.set_broker_gauges([("/", 2, 3), ("/custom", 1, 1)]);
        let text = m.encode();
        assert_eq!(
            value(&text, r#"sockeye_connections{transport="polling"}"#),
            1.0
        );
        assert_eq!(
            value(&text, r#"sockeye_connections{transport="websocket"}"#),
            1.0
        );
        assert_eq!(value(&text, r#"sockeye_sockets{namespace="/"}"#), 2.0);
        assert_eq!(value(&text, "sockeye_rooms"), 4.0);
        assert_eq!(value(&text, "sockeye_events_received_total"), 1.0);
        assert_eq!(value(&text, "sockeye_events_sent_total"), 1.0);
        assert_eq!(value(&text, "sockeye_bytes_received_total"), 10.0);
        assert_eq!(value(&text, "sockeye_bytes_sent_total"), 10.0);
        assert_eq!(
            value(&text, r#"sockeye_errors_total{code="VALIDATION"}"#),
            1.0
        );
        assert_eq!(
            value(&text, r#"sockeye_errors_total{code="NOT_IN_ROOM"}"#),
            0.0
        );
        assert_eq!(value(&text, "sockeye_slow_consumer_closes_total"), 1.0);
        assert_eq!(value(&text, "sockeye_broadcast_fanout_count"), 1.0);
        assert_eq!(
            value(&text, r#"sockeye_auth_refusals_total{reason="expired"}"#),
            1.0
        );
    }

    struct Snapshot(crate::cluster::ClusterMetrics);

    impl ClusterStatus for Snapshot {
        fn is_ready(&self) -> bool {
            false
        }
        fn metrics(&self) -> crate::cluster::ClusterMetrics {
            self.0.clone()
        }
    }

    #[test]
    fn cluster_series_appear_once_a_cluster_is_set() {
        let m = Metrics::new();
        assert!(!m.encode().contains("sockeye_cluster_"));
        let snapshot = crate::cluster::ClusterMetrics {
            published_messages: 7,
            received_bytes: 1234,
            dropped_messages: 2,
            request_timeouts: 1,
            requests: 3,
            reconnects: 4,
            queued_bytes: 99,
            request_latency: crate::cluster::LatencyHistogram::new(
                vec![(0.001, 1), (0.01, 1)],
                2.5,
                3,
            ),
            ..Default::default()
        };
        m.set_cluster(Arc::new(Snapshot(snapshot)));
        let text = m.encode();
        assert_eq!(
            value(&text, "sockeye_cluster_published_messages_total"),
            7.0
        );
        assert_eq!(value(&text, "sockeye_cluster_received_bytes_total"), 1234.0);
        assert_eq!(value(&text, "sockeye_cluster_dropped_messages_total"), 2.0);
        assert_eq!(value(&text, "sockeye_cluster_requests_total"), 3.0);
        assert_eq!(value(&text, "sockeye_cluster_request_timeouts_total"), 1.0);
        assert_eq!(value(&text, "sockeye_cluster_reconnects_total"), 4.0);
        assert_eq!(value(&text, "sockeye_cluster_queued_bytes"), 99.0);
        assert_eq!(value(&text, "sockeye_cluster_ready"), 0.0);
        assert_eq!(
            value(&text, "sockeye_cluster_request_duration_seconds_count"),
            3.0
        );
        assert_eq!(
            value(
                &text,
                r#"sockeye_cluster_request_duration_seconds_bucket{le="0.01"}"#
            ),
            2.0
        );
        assert_eq!(
            value(
                &text,
                r#"sockeye_cluster_request_duration_seconds_bucket{le="+Inf"}"#
            ),
            3.0
        );
    }
}
