//! [`Handshake`]: what a socket knows about how it connected, and [`HandshakeData`], the same as
//! plain data in the Node server's shape (what a socket on another node is described by).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sockeye_codec::Utf8Bytes;
use sockeye_codec::socketio::lossy_json;

use crate::transport::EngineInfo;

/// The handshake of one socket: the Engine.IO request (shared by every socket of the session)
/// and the auth payload of this namespace's CONNECT.
///
/// It serializes exactly as the Node server's `socket.handshake` (without `sessionStore`), so a
/// cluster adapter can answer a Node node's `fetchSockets` with it; [`Handshake::to_data`] gives
/// the same fields as plain data.
#[derive(Clone, Debug)]
pub struct Handshake {
    engine: Arc<EngineInfo>,
    auth: Option<Utf8Bytes>,
    time: SystemTime,
}

impl Handshake {
    /// A handshake for a CONNECT carrying `auth` (raw JSON object) on the session `engine`.
    pub fn new(engine: Arc<EngineInfo>, auth: Option<Utf8Bytes>, time: SystemTime) -> Self {
        Self { engine, auth, time }
    }

    /// The request headers (lowercase names).
    pub fn headers(&self) -> &HashMap<String, String> {
        &self.engine.headers
    }

    /// One header, by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.engine.headers.get(name).map(String::as_str)
    }

    /// The query parameters of the Engine.IO handshake request.
    pub fn query(&self) -> &HashMap<String, String> {
        &self.engine.query
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.engine.remote_addr
    }

    /// Whether the session came over TLS.
    pub fn secure(&self) -> bool {
        self.engine.secure
    }

    /// Whether the request was cross-origin, as the reference decides it: an `Origin` header was
    /// sent.
    pub fn xdomain(&self) -> bool {
        self.engine.headers.contains_key("origin")
    }

    /// The URL of the handshake request.
    pub fn url(&self) -> &str {
        &self.engine.url
    }

    /// The Engine.IO session id (not the socket id).
    pub fn engine_sid(&self) -> &str {
        &self.engine.sid
    }

    /// The Engine.IO request info.
    pub fn engine(&self) -> &Arc<EngineInfo> {
        &self.engine
    }

    /// The auth payload as raw JSON, `{}` when the client sent none.
    pub fn auth_raw(&self) -> &str {
        self.auth.as_ref().map_or("{}", Utf8Bytes::as_str)
    }

    /// The auth payload deserialized (`{}` when the client sent none).
    ///
    /// # Errors
    /// The JSON error when the payload does not have `T`'s shape.
    ///
    /// Values `serde_json` cannot hold but `JSON.parse` reads do not fail the whole object: a
    /// number beyond `f64` (`1e400`) reads as `null` and a lone surrogate escape (`"\ud800"`)
    /// as U+FFFD, so one odd field does not hide the others (the `token`, say).
    pub fn auth<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        auth_value(self.auth_raw())
    }

    /// When the CONNECT arrived.
    pub fn time(&self) -> SystemTime {
        self.time
    }

    /// When the CONNECT arrived, in milliseconds since the Unix epoch (the reference's `issued`).
    pub fn issued_ms(&self) -> u64 {
        unix_ms(self.time)
    }

    /// The same fields as plain data, in the Node server's shape: what
    /// [`SocketInfo::handshake`](crate::SocketInfo::handshake) holds for every socket.
    pub fn to_data(&self) -> HandshakeData {
        let strings = |map: &HashMap<String, String>| -> Map<String, Value> {
            map.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        };
        HandshakeData {
            headers: strings(&self.engine.headers),
            time: js_date_string(self.time),
            address: self
                .engine
                .remote_addr
                .map(|a| a.ip().to_string())
                .unwrap_or_default(),
            xdomain: self.xdomain(),
            secure: self.engine.secure,
            issued: self.issued_ms(),
            url: self.engine.url.clone(),
            query: strings(&self.engine.query),
            // The auth payload was checked to be a JSON object when the CONNECT was decoded.
            auth: self.auth().unwrap_or_else(|_| Value::Object(Map::new())),
        }
    }
}

impl serde::Serialize for Handshake {
    /// The reference's shape: `headers`, `time` (`new Date().toString()` form, in UTC),
    /// `address`, `xdomain`, `secure`, `issued` (ms), `url`, `query`, `auth`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_data().serialize(serializer)
    }
}

/// A socket's handshake as plain data, in the shape the Node server gives `socket.handshake`
/// and sends to other nodes in `fetchSockets` answers:
///
/// ```json
/// {"headers":{"host":"..."},"time":"Thu Nov 26 2026 22:45:00 GMT+0000 (Coordinated Universal Time)",
///  "address":"127.0.0.1","xdomain":false,"secure":false,"issued":1795733100014,
///  "url":"/socket.io/?EIO=4&transport=websocket","query":{"EIO":"4"},"auth":{}}
/// ```
///
/// Local sockets get it from [`Handshake::to_data`]; a cluster adapter deserializes it from
/// another node's answer (missing fields take their defaults, unknown fields are ignored).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct HandshakeData {
    /// Request headers, lowercase names; values are strings (Node sends `set-cookie` as an
    /// array).
    pub headers: Map<String, Value>,
    /// When the socket connected, as JavaScript's `Date.prototype.toString` writes it.
    pub time: String,
    /// The peer's address (an IP address without port).
    pub address: String,
    /// Whether the request carried an `Origin` header.
    pub xdomain: bool,
    /// Whether the connection is encrypted.
    pub secure: bool,
    /// When the socket connected, in milliseconds since the Unix epoch.
    #[serde(deserialize_with = "lenient_ms")]
    pub issued: u64,
    /// The URL of the handshake request (path and query).
    pub url: String,
    /// The query parameters (values are strings, or arrays for repeated keys in Node).
    pub query: Map<String, Value>,
    /// The auth payload of the CONNECT (`{}` when none).
    pub auth: Value,
}

impl HandshakeData {
    /// One header as a string, by lowercase name (the first value when Node sent an array).
    pub fn header(&self, name: &str) -> Option<&str> {
        first_str(self.headers.get(name)?)
    }

    /// One query parameter as a string (the first value of a repeated key).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        first_str(self.query.get(name)?)
    }

    /// The auth payload deserialized.
    ///
    /// # Errors
    /// The JSON error when the payload does not have `T`'s shape.
    pub fn auth_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.auth)
    }
}

fn first_str(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Array(items) => items.first().and_then(Value::as_str),
        _ => None,
    }
}

/// `issued` is an integer in Node, but a JSON number may arrive as a float after a round trip
/// through another encoding; take its integer part rather than refuse the whole descriptor.
fn lenient_ms<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    use serde::Deserialize as _;
    let value = Value::deserialize(deserializer)?;
    Ok(match value {
        Value::Number(n) => n.as_u64().unwrap_or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map_or(0, |f| f as u64)
        }),
        _ => 0,
    })
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `time` as JavaScript's `new Date(time).toString()` writes it in the UTC time zone:
/// `Thu Nov 26 2026 22:45:00 GMT+0000 (Coordinated Universal Time)`.
pub(crate) fn js_date_string(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    let month_name = MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday} {month_name} {day:02} {year:04} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian (Howard
/// Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Reads an auth object as [`Handshake::auth`] does.
pub(crate) fn auth_value<T: DeserializeOwned>(raw: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(raw).or_else(|error| match lossy_json(raw) {
        Cow::Owned(rewritten) => serde_json::from_str(&rewritten),
        Cow::Borrowed(_) => Err(error),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn dates_are_written_as_javascript_does_in_utc() {
        // The capture's time: issued 1795733100014 ms.
        let t = UNIX_EPOCH + Duration::from_millis(1_795_733_100_014);
        assert_eq!(
            js_date_string(t),
            "Thu Nov 26 2026 22:45:00 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(
            js_date_string(UNIX_EPOCH),
            "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
        // A leap day, and the end of a century year that is a leap year.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400 + 86_399);
        assert_eq!(
            js_date_string(leap),
            "Tue Feb 29 2000 23:59:59 GMT+0000 (Coordinated Universal Time)"
        );
        let y2038 = UNIX_EPOCH + Duration::from_secs(2_147_483_647);
        assert_eq!(
            js_date_string(y2038),
            "Tue Jan 19 2038 03:14:07 GMT+0000 (Coordinated Universal Time)"
        );
    }

    #[test]
    fn serializes_in_node_shape_and_reads_back() {
        let engine = EngineInfo::new("sid")
            .header("Origin", "http://a.example")
            .header("host", "h")
            .url("/socket.io/?EIO=4&transport=websocket")
            .remote_addr("127.0.0.1:5000".parse().unwrap())
            .query(HashMap::from([(String::from("EIO"), String::from("4"))]));
        let t = UNIX_EPOCH + Duration::from_millis(1_795_733_100_014);
        let hs = Handshake::new(
            Arc::new(engine),
            Some(Utf8Bytes::from(r#"{"name":"x"}"#)),
            t,
        );
        let json = serde_json::to_value(&hs).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = vec![
            "address", "auth", "headers", "issued", "query", "secure", "time", "url", "xdomain",
        ];
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(
            json["time"],
            "Thu Nov 26 2026 22:45:00 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(json["issued"], 1_795_733_100_014_u64);
        assert_eq!(json["address"], "127.0.0.1");
        assert_eq!(json["xdomain"], true);
        assert_eq!(json["secure"], false);
        assert_eq!(json["url"], "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(json["query"]["EIO"], "4");
        assert_eq!(json["auth"]["name"], "x");
        assert_eq!(json["headers"]["origin"], "http://a.example");
        // Serialized fields in Node's order.
        let text = serde_json::to_string(&hs).unwrap();
        let order: Vec<usize> = [
            "\"headers\"",
            "\"time\"",
            "\"address\"",
            "\"xdomain\"",
            "\"secure\"",
            "\"issued\"",
            "\"url\"",
            "\"query\"",
            "\"auth\"",
        ]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");

        let back: HandshakeData = serde_json::from_value(json).unwrap();
        assert_eq!(back, hs.to_data());
        assert_eq!(back.header("host"), Some("h"));
        assert_eq!(back.query_param("EIO"), Some("4"));
        assert_eq!(back.auth_as::<Value>().unwrap()["name"], "x");
    }

    #[test]
    fn a_node_descriptor_parses_with_defaults_and_arrays() {
        let data: HandshakeData = serde_json::from_str(
            r#"{"headers":{"set-cookie":["a=1","b=2"]},"issued":1.5e12,"query":{"k":["1","2"]},
                "auth":{},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(data.header("set-cookie"), Some("a=1"));
        assert_eq!(data.query_param("k"), Some("1"));
        assert_eq!(data.issued, 1_500_000_000_000);
        assert_eq!(data.url, "");
        assert!(!data.secure);
    }
}
