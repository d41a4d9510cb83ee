//! Origin checks and CORS headers.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, HOST,
    ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue};

use super::config::{AllowedOrigins, Cors};

/// The outcome of the origin check of one request.
#[derive(Debug, Clone)]
pub(crate) enum OriginCheck {
    /// No `Origin` header, or the page's own origin: nothing to add.
    Plain,
    /// An allowed cross-origin request: add CORS headers with this `Access-Control-Allow-Origin`.
    Allowed(HeaderValue),
    /// A foreign origin: 403.
    Refused,
}

/// An origin (`scheme://host[:port]`) split for comparison: scheme and host lowercased, the
/// port explicit (80 for `http`/`ws`, 443 for `https`/`wss` when absent), so
/// `https://App.example` and `https://app.example:443` are the same origin and
/// `https://app.example.` (a trailing dot) or `https://app.example:8443` are not.
#[derive(Debug, PartialEq, Eq)]
struct OriginParts {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl OriginParts {
    /// Parses a serialized origin; `None` for `null`, a path, userinfo, a query, a bad port or
    /// anything else a browser would not send.
    fn parse(origin: &str) -> Option<Self> {
        let (scheme, authority) = origin.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return None;
        }
        let scheme = scheme.to_ascii_lowercase();
        let (host, port) = split_host_port(authority)?;
        let port = port.or_else(|| default_port(&scheme));
        Some(Self { scheme, host, port })
    }

    /// Whether a `Host` header names this origin's host and port.
    fn is_host(&self, host_header: &str) -> bool {
        split_host_port(host_header).is_some_and(|(host, port)| {
            host == self.host && port.or_else(|| default_port(&self.scheme)) == self.port
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// `host[:port]` (IPv6 in brackets), the host lowercased; `None` when anything else is there.
fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    if authority.is_empty()
        || authority
            .bytes()
            .any(|b| matches!(b, b'/' | b'?' | b'#' | b'@' | b'\\') || b <= b' ' || b == 0x7f)
    {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, rest) = authority.split_at(close + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || (!host.starts_with('[') && host.contains(':')) {
        return None;
    }
    let port = match port {
        None => None,
        // Digits only (no sign, no spaces), 1..=65535.
        Some(port)
            if !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(port.parse::<u16>().ok().filter(|&p| p != 0)?)
        }
        Some(_) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

impl Cors {
    /// The origin decision for one request (polling or WebSocket upgrade, before routing):
    ///
    /// - no `Origin` header: [`OriginCheck::Plain`] (non-browser clients);
    /// - more than one `Origin` header, or one that is not text: refused (a browser sends one);
    /// - the page's own origin (the `Host` header, default ports understood): plain;
    /// - `AllowedOrigins::Any` without credentials: allowed with `*`, `null` included;
    /// - `AllowedOrigins::Any` with credentials: the origin is echoed (never `*` with
    ///   credentials, which browsers reject), except `null`, which sandboxed frames and
    ///   `file:` pages share and which is refused;
    /// - a list: allowed when an entry is the same origin (scheme and host case-insensitive,
    ///   default ports understood; no trailing-dot, subdomain or prefix matching), echoed.
    pub(crate) fn check(&self, headers: &HeaderMap) -> OriginCheck {
        let mut values = headers.get_all(ORIGIN).iter();
        let Some(origin) = values.next() else {
            return OriginCheck::Plain;
        };
        if values.next().is_some() {
            return OriginCheck::Refused;
        }
        let Ok(origin_str) = origin.to_str() else {
            return OriginCheck::Refused;
        };
        let parts = OriginParts::parse(origin_str);
        let same_origin = parts.as_ref().is_some_and(|parts| {
            headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|host| parts.is_host(host))
        });
        let allowed = match &self.origins {
            AllowedOrigins::None => false,
            AllowedOrigins::Any => !self.credentials || parts.is_some(),
            AllowedOrigins::List(list) => parts.as_ref().is_some_and(|parts| {
                list.iter()
                    .any(|entry| OriginParts::parse(entry).as_ref() == Some(parts))
            }),
        };
        if allowed {
            if matches!(self.origins, AllowedOrigins::Any) && !self.credentials {
                OriginCheck::Allowed(HeaderValue::from_static("*"))
            } else {
                OriginCheck::Allowed(origin.clone())
            }
        } else if same_origin {
            OriginCheck::Plain
        } else {
            OriginCheck::Refused
        }
    }

    pub(crate) fn apply(&self, check: &OriginCheck, headers: &mut HeaderMap) {
        // Whenever the answer depends on the Origin (an echoed origin, a list), say so to
        // caches, on every response: a cached same-origin answer must not serve another origin.
        let varies = self.credentials || matches!(self.origins, AllowedOrigins::List(_));
        if varies && !matches!(check, OriginCheck::Allowed(_)) {
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
        if let OriginCheck::Allowed(value) = check {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value.clone());
            headers.append(VARY, HeaderValue::from_static("Origin"));
            if self.credentials {
                headers.insert(
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
        }
    }

    pub(crate) fn apply_preflight(&self, request: &HeaderMap, headers: &mut HeaderMap) {
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        if let Some(requested) = request.get(ACCESS_CONTROL_REQUEST_HEADERS) {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        }
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static(host));
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    #[test]
    fn origin_rules() {
        let off = Cors::disabled();
        assert!(matches!(
            off.check(&headers(None, "a:1")),
            OriginCheck::Plain
        ));
        assert!(matches!(
            off.check(&headers(Some("http://a:1"), "a:1")),
            OriginCheck::Plain
        ));
        assert!(matches!(
            off.check(&headers(Some("http://b"), "a:1")),
            OriginCheck::Refused
        ));
        let list = Cors::origins(["https://app.example"]);
        assert!(
            matches!(list.check(&headers(Some("https://app.example"), "x")), OriginCheck::Allowed(v) if v == "https://app.example")
        );
        assert!(matches!(
            list.check(&headers(Some("https://evil.example"), "x")),
            OriginCheck::Refused
        ));
        assert!(
            matches!(Cors::any().check(&headers(Some("http://b"), "a")), OriginCheck::Allowed(v) if v == "*")
        );
        assert!(
            matches!(Cors::any().credentials(true).check(&headers(Some("http://b"), "a")), OriginCheck::Allowed(v) if v == "http://b")
        );
    }

    fn allowed(check: &OriginCheck) -> Option<String> {
        match check {
            OriginCheck::Allowed(v) => Some(v.to_str().unwrap().to_owned()),
            _ => None,
        }
    }

    #[test]
    fn same_origin_understands_default_ports_and_case_only() {
        let off = Cors::disabled();
        let plain = |origin: &'static str, host: &'static str| {
            matches!(off.check(&headers(Some(origin), host)), OriginCheck::Plain)
        };
        assert!(plain("http://a.example", "a.example"));
        assert!(plain("http://a.example:80", "a.example"));
        assert!(plain("http://a.example", "a.example:80"));
        assert!(plain("https://a.example", "a.example:443"));
        assert!(plain("HTTP://A.Example:8080", "a.example:8080"));
        assert!(plain("http://[::1]:3000", "[::1]:3000"));
        // Not the same: another port, a trailing dot, a subdomain, userinfo, a path, null.
        for (origin, host) in [
            ("http://a.example:8080", "a.example"),
            ("https://a.example", "a.example:80"),
            ("http://a.example.", "a.example"),
            ("http://a.example", "a.example."),
            ("http://x.a.example", "a.example"),
            ("http://a.example@evil.example", "a.example"),
            ("http://evil.example#@a.example", "a.example"),
            ("http://a.example/", "a.example"),
            ("http://a.example:080x", "a.example"),
            ("http://a.example:+80", "a.example"),
            ("http://a.example:0", "a.example:0"),
            ("null", "a.example"),
            ("a.example", "a.example"),
            ("", "a.example"),
        ] {
            assert!(
                matches!(
                    off.check(&headers(Some(origin), host)),
                    OriginCheck::Refused
                ),
                "{origin} on {host}"
            );
        }
    }

    #[test]
    fn lists_match_whole_origins_and_echo_them() {
        let list = Cors::origins(["https://app.example", "http://localhost:3000"]);
        let check = |origin: &'static str| allowed(&list.check(&headers(Some(origin), "api")));
        assert_eq!(
            check("https://app.example").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            check("https://APP.example").as_deref(),
            Some("https://APP.example")
        );
        assert_eq!(
            check("https://app.example:443").as_deref(),
            Some("https://app.example:443")
        );
        assert_eq!(
            check("http://localhost:3000").as_deref(),
            Some("http://localhost:3000")
        );
        for origin in [
            "http://app.example",
            "https://app.example:8443",
            "https://app.example.",
            "https://app.example.evil.example",
            "https://evilapp.example",
            "https://sub.app.example",
            "http://localhost",
            "http://localhost:30000",
            "null",
            "*",
        ] {
            assert_eq!(check(origin), None, "{origin}");
        }
    }

    #[test]
    fn two_origin_headers_are_refused() {
        let list = Cors::origins(["https://app.example"]);
        let mut h = headers(Some("https://app.example"), "api");
        h.append(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(matches!(list.check(&h), OriginCheck::Refused));
        assert!(matches!(Cors::any().check(&h), OriginCheck::Refused));
    }

    #[test]
    fn wildcards_never_send_star_with_credentials_nor_echo_null() {
        let any = Cors::any();
        assert_eq!(
            allowed(&any.check(&headers(Some("null"), "a"))).as_deref(),
            Some("*")
        );
        let mut response = HeaderMap::new();
        any.apply(&any.check(&headers(Some("http://b"), "a")), &mut response);
        assert_eq!(response[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(response.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());

        let with_credentials = Cors::any().credentials(true);
        assert!(matches!(
            with_credentials.check(&headers(Some("null"), "a")),
            OriginCheck::Refused
        ));
        let check = with_credentials.check(&headers(Some("http://b"), "a"));
        let mut response = HeaderMap::new();
        with_credentials.apply(&check, &mut response);
        assert_eq!(response[ACCESS_CONTROL_ALLOW_ORIGIN], "http://b");
        assert_eq!(response[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(response[VARY], "Origin");
        // A list never matches null either, even when configured as an entry.
        let list = Cors::origins(["null"]).credentials(true);
        assert!(matches!(
            list.check(&headers(Some("null"), "a")),
            OriginCheck::Refused
        ));
    }

    #[test]
    fn list_answers_vary_on_origin_even_when_plain() {
        let list = Cors::origins(["https://app.example"]);
        let mut response = HeaderMap::new();
        list.apply(&list.check(&headers(None, "api")), &mut response);
        assert_eq!(response[VARY], "Origin");
        assert!(response.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }
}
