//! The claims of a verified token.

use serde_json::{Map, Value};

use crate::Rejection;

/// The claims of a token that passed [`Verifier::verify`](crate::Verifier::verify).
///
/// Keeps the whole claim map (for handlers that want custom claims) next to the typed
/// registered claims the server needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    map: Map<String, Value>,
    sub: Option<String>,
    exp: u64,
    nbf: Option<u64>,
}

/// Which claims the verifier requires besides `exp`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Required {
    pub(crate) iss: bool,
    pub(crate) aud: bool,
}

impl Claims {
    /// Type-checks the registered claims and reads the typed ones. Required-but-absent
    /// claims and claims of the wrong type are [`Rejection::Malformed`].
    pub(crate) fn from_map(map: Map<String, Value>, required: Required) -> Result<Self, Rejection> {
        let exp = match map.get("exp") {
            None => return Err(Rejection::malformed("exp claim missing")),
            Some(v) => numeric_date(v, false)
                .ok_or(Rejection::malformed("exp is not a non-negative number"))?,
        };
        let nbf = match map.get("nbf") {
            None => None,
            Some(v) => Some(
                numeric_date(v, true)
                    .ok_or(Rejection::malformed("nbf is not a non-negative number"))?,
            ),
        };
        if let Some(iat) = map.get("iat") {
            numeric_date(iat, false)
                .ok_or(Rejection::malformed("iat is not a non-negative number"))?;
        }
        let sub = match map.get("sub") {
            None => None,
            Some(Value::String(sub)) => Some(sub.clone()),
            Some(_) => return Err(Rejection::malformed("sub is not a string")),
        };
        match map.get("iss") {
            None if required.iss => return Err(Rejection::malformed("iss claim missing")),
            None | Some(Value::String(_)) => {}
            Some(_) => return Err(Rejection::malformed("iss is not a string")),
        }
        match map.get("aud") {
            None if required.aud => return Err(Rejection::malformed("aud claim missing")),
            None | Some(Value::String(_)) => {}
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
            Some(_) => {
                return Err(Rejection::malformed(
                    "aud is not a string or an array of strings",
                ));
            }
        }
        Ok(Self { map, sub, exp, nbf })
    }

    /// The `sub` claim: the user id other clients see.
    pub fn sub(&self) -> Option<&str> {
        self.sub.as_deref()
    }

    /// The `exp` claim, in seconds since the Unix epoch (a fractional value rounded down).
    pub fn exp(&self) -> u64 {
        self.exp
    }

    /// The `nbf` claim, in seconds since the Unix epoch (a fractional value rounded up).
    pub fn nbf(&self) -> Option<u64> {
        self.nbf
    }

    /// One claim by name, registered or custom.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    /// All claims, as the token carried them.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.map
    }

    /// All claims, by value.
    pub fn into_map(self) -> Map<String, Value> {
        self.map
    }
}

/// A NumericDate (RFC 7519 section 2): a non-negative JSON number of seconds. Fractions are
/// rounded towards the stricter side: down for `exp`/`iat`, up for `nbf`.
fn numeric_date(value: &Value, round_up: bool) -> Option<u64> {
    if let Some(secs) = value.as_u64() {
        return Some(secs);
    }
    let secs = value.as_f64()?;
    // Up to 2^63: comfortably inside u64 and far beyond any real date.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(0.0..LIMIT).contains(&secs) {
        return None;
    }
    let rounded = if round_up { secs.ceil() } else { secs.floor() };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(rounded as u64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NONE: Required = Required {
        iss: false,
        aud: false,
    };

    fn parse(v: Value, required: Required) -> Result<Claims, Rejection> {
        let Value::Object(map) = v else {
            panic!("not an object")
        };
        Claims::from_map(map, required)
    }

    #[test]
    fn typed_claims() {
        let c = parse(
            json!({ "sub": "ada", "exp": 10, "nbf": 1.5, "x": [1] }),
            NONE,
        )
        .unwrap();
        assert_eq!((c.sub(), c.exp(), c.nbf()), (Some("ada"), 10, Some(2)));
        assert_eq!(c.get("x"), Some(&json!([1])));
        assert_eq!(parse(json!({ "exp": 10.9 }), NONE).unwrap().exp(), 10);
    }

    #[test]
    fn wrong_types_are_malformed() {
        for bad in [
            json!({}),
            json!({ "exp": "10" }),
            json!({ "exp": -1 }),
            json!({ "exp": null }),
            json!({ "exp": 1e300 }),
            json!({ "exp": 10, "nbf": "1" }),
            json!({ "exp": 10, "iat": {} }),
            json!({ "exp": 10, "sub": 7 }),
            json!({ "exp": 10, "iss": ["a"] }),
            json!({ "exp": 10, "aud": 3 }),
            json!({ "exp": 10, "aud": ["a", 3] }),
        ] {
            assert_eq!(
                parse(bad.clone(), NONE).unwrap_err().reason(),
                "malformed",
                "{bad}"
            );
        }
        let both = Required {
            iss: true,
            aud: true,
        };
        assert!(parse(json!({ "exp": 1, "aud": "a" }), both).is_err());
        assert!(parse(json!({ "exp": 1, "iss": "i" }), both).is_err());
        assert!(parse(json!({ "exp": 1, "iss": "i", "aud": ["a"] }), both).is_ok());
    }
}
