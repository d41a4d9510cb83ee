//! Property tests: extraction precedence against a model, and no panics on any input.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use sockeye_auth::{Rejection, Token, extract_token};

#[derive(Clone, Debug)]
enum Auth {
    Absent,
    NotObject,
    NoTokenKey,
    Null,
    Valid,
    Empty,
    NonString(Value),
}

#[derive(Clone, Debug)]
enum Header {
    Absent,
    OtherScheme,
    BearerEmpty(String),
    Bearer(String),
}

#[derive(Clone, Debug)]
enum Query {
    Absent,
    Empty,
    Valid,
}

/// What the model says the outcome is: the token text, or the reason.
fn model(auth: &Auth, header: &Header, query: &Query) -> Result<&'static str, &'static str> {
    match auth {
        Auth::Valid => return Ok("auth.auth.auth"),
        Auth::Empty | Auth::NonString(_) => return Err("malformed"),
        Auth::Absent | Auth::NotObject | Auth::NoTokenKey | Auth::Null => {}
    }
    match header {
        Header::Bearer(_) => return Ok("header.header.header"),
        Header::BearerEmpty(_) => return Err("malformed"),
        Header::Absent | Header::OtherScheme => {}
    }
    match query {
        Query::Valid => Ok("query.query.query"),
        Query::Absent | Query::Empty => Err("missing"),
    }
}

/// "bearer" with each letter's case chosen by `mask`.
fn scheme(mask: u8) -> String {
    "bearer"
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> i & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn auth_strategy() -> impl Strategy<Value = Auth> {
    prop_oneof![
        Just(Auth::Absent),
        Just(Auth::NotObject),
        Just(Auth::NoTokenKey),
        Just(Auth::Null),
        Just(Auth::Valid),
        Just(Auth::Empty),
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(json!(["auth.auth.auth"])),
            Just(json!({ "token": "auth.auth.auth" })),
        ]
        .prop_map(Auth::NonString),
    ]
}

fn header_strategy() -> impl Strategy<Value = Header> {
    let space = prop_oneof![Just(" "), Just("\t"), Just("  ")];
    prop_oneof![
        Just(Header::Absent),
        Just(Header::OtherScheme),
        (any::<u8>(), space.clone())
            .prop_map(|(m, s)| Header::BearerEmpty(format!("{}{s}", scheme(m)))),
        (any::<u8>(), space)
            .prop_map(|(m, s)| Header::Bearer(format!("{}{s}header.header.header", scheme(m)))),
    ]
}

fn query_strategy() -> impl Strategy<Value = Query> {
    prop_oneof![Just(Query::Absent), Just(Query::Empty), Just(Query::Valid)]
}

proptest! {
    #[test]
    fn first_present_source_decides(
        auth in auth_strategy(),
        header in header_strategy(),
        query in query_strategy(),
    ) {
        let auth_value = match &auth {
            Auth::Absent => None,
            Auth::NotObject => Some(json!("auth.auth.auth")),
            Auth::NoTokenKey => Some(json!({ "room": "lobby" })),
            Auth::Null => Some(json!({ "token": null })),
            Auth::Valid => Some(json!({ "token": "auth.auth.auth" })),
            Auth::Empty => Some(json!({ "token": "" })),
            Auth::NonString(v) => Some(json!({ "token": v })),
        };
        let header_value = match &header {
            Header::Absent => None,
            Header::OtherScheme => Some("Basic header.header.header".to_owned()),
            Header::BearerEmpty(h) | Header::Bearer(h) => Some(h.clone()),
        };
        let query_value = match query {
            Query::Absent => None,
            Query::Empty => Some(""),
            Query::Valid => Some("query.query.query"),
        };
        let got = extract_token(
            auth_value.as_ref(),
            header_value.as_deref().map(str::as_bytes),
            query_value,
        );
        let got = got.as_ref().map(Token::as_str).map_err(Rejection::reason);
        prop_assert_eq!(got, model(&auth, &header, &query));
    }

    #[test]
    fn extraction_never_panics(
        token in any::<String>(),
        header in proptest::collection::vec(any::<u8>(), 0..64),
        query in any::<String>(),
    ) {
        let auth = json!({ "token": token });
        if let Err(e) = extract_token(Some(&auth), Some(&header), Some(&query)) {
            assert_no_token_text(&e, &token);
        }
        let _ = extract_token(None, Some(&header), Some(&query));
        let _ = extract_token(None, None, Some(&query));
        let _ = sockeye_auth::token_from_query(&query);
    }

    #[test]
    fn verification_never_panics_and_never_echoes(text in "[A-Za-z0-9_.-]{1,200}") {
        let verifier = hs256_verifier();
        if let Ok(token) = Token::new(&text)
            && let Err(e) = verifier.verify(&token, now())
        {
            assert_no_token_text(&e, &text);
        }
    }

    /// Structured near-misses: real JSON headers and claims with random values.
    #[test]
    fn random_claims_verify_or_reject_cleanly(
        exp in prop_oneof![any::<i64>().prop_map(Value::from), any::<f64>().prop_map(Value::from), ".*".prop_map(Value::from)],
        nbf in proptest::option::of(any::<u64>()),
        sub in proptest::option::of(".{0,8}"),
    ) {
        let verifier = hs256_verifier();
        let mut claims = json!({ "exp": exp });
        if let Some(nbf) = nbf { claims["nbf"] = json!(nbf); }
        if let Some(sub) = &sub { claims["sub"] = json!(sub); }
        let text = token_json(&json!({"alg":"HS256"}), &claims, &hs(SECRET), jsonwebtoken::Algorithm::HS256);
        match check(&verifier, &text) {
            Ok(got) => prop_assert_eq!(got, sub.unwrap_or_default()),
            Err(e) => {
                prop_assert!(["malformed", "expired", "not_yet_valid"].contains(&e.reason()), "{}", e);
                assert_no_token_text(&e, &text);
            }
        }
    }
}
