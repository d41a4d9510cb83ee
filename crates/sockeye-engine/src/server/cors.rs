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

impl Cors {
    pub(crate) fn check(&self, headers: &HeaderMap) -> OriginCheck {
        let Some(origin) = headers.get(ORIGIN) else {
            return OriginCheck::Plain;
        };
        let Ok(origin_str) = origin.to_str() else {
            return OriginCheck::Refused;
        };
        let same_origin = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .zip(origin_str.split_once("://").map(|(_, authority)| authority))
            .is_some_and(|(host, authority)| host.eq_ignore_ascii_case(authority));
        let allowed = match &self.origins {
            AllowedOrigins::None => false,
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin_str)),
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
}
