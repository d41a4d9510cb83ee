//! The `auth_token` target: arbitrary bytes through every way a handshake token reaches
//! `sockeye-auth` (the auth object, the `Authorization` header, the query string) and through
//! two verifiers.

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use sockeye_auth::{MAX_TOKEN_LEN, Rejection, Token, Verifier, extract_token, token_from_query};

/// The HS256 secret of the fuzz verifiers (the seeds are signed with it).
pub const AUTH_SECRET: &[u8] = b"sockeye-fuzz-hs256-secret-0123456789abcdef";

/// The issuer and audience the second verifier requires.
pub const AUTH_ISSUER: &str = "sockeye-fuzz";
/// See [`AUTH_ISSUER`].
pub const AUTH_AUDIENCE: &str = "fuzz";

/// The committed Ed25519 test key (`crates/sockeye-auth/tests/fixtures/`).
const ED25519_PUBLIC: &[u8] =
    include_bytes!("../../crates/sockeye-auth/tests/fixtures/ed25519_public.pem");

/// The crate's sources: a long input that is a piece of one of the crate's own fixed texts
/// may show up in an error message without anything having leaked.
const AUTH_SOURCES: [&str; 5] = [
    include_str!("../../crates/sockeye-auth/src/rejection.rs"),
    include_str!("../../crates/sockeye-auth/src/token.rs"),
    include_str!("../../crates/sockeye-auth/src/verifier.rs"),
    include_str!("../../crates/sockeye-auth/src/claims.rs"),
    include_str!("../../crates/sockeye-auth/src/algorithm.rs"),
];

/// The contract's reason words.
const REASONS: [&str; 9] = [
    "missing",
    "malformed",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "bad_issuer",
    "bad_audience",
    "bad_algorithm",
    "sub_mismatch",
];

fn verifiers() -> &'static [Verifier; 2] {
    static VERIFIERS: OnceLock<[Verifier; 2]> = OnceLock::new();
    VERIFIERS.get_or_init(|| {
        let hs256 = Verifier::builder()
            .hmac_secret(AUTH_SECRET)
            .algorithms([sockeye_auth::Algorithm::HS256])
            .build()
            .unwrap();
        let strict = Verifier::builder()
            .hmac_secret(AUTH_SECRET)
            .public_key_pem(ED25519_PUBLIC)
            .issuer(AUTH_ISSUER)
            .audience(AUTH_AUDIENCE)
            .leeway(Duration::from_secs(30))
            .build()
            .unwrap();
        [hs256, strict]
    })
}

/// The instants every token is verified at: the epoch, late 2027, and 2096.
const NOWS: [u64; 3] = [0, 1_800_000_000, 4_000_000_000];

/// The input as a token, a bearer header, a raw header, an auth object (the input as JSON, and
/// the input as the `token` string), and a query string.
pub fn auth_token(data: &[u8]) {
    let text = std::str::from_utf8(data).ok();

    // Token::new's documented shape checks.
    if let Some(text) = text {
        let result = Token::new(text);
        let shaped = !text.is_empty()
            && text.len() <= MAX_TOKEN_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        assert_eq!(result.is_ok(), shaped, "{text:?}");
        check(data, extracted(&result));
        if let Ok(token) = &result {
            assert_eq!(token.as_str(), text);
            assert_eq!(format!("{token:?}"), "Token(<redacted>)");
            verify(data, token);
        }

        // auth = { token: text } decides alone, whatever the other sources say.
        let auth = json!({ "token": text });
        let from_auth = extract_token(Some(&auth), Some(b"Bearer other"), Some("other"));
        assert_eq!(from_auth, result);
    }

    // The input as the auth object's JSON.
    if let Ok(auth) = serde_json::from_slice::<Value>(data) {
        let result = extract_token(Some(&auth), None, None);
        check(data, extracted(&result));
        if let Ok(token) = &result {
            verify(data, token);
        }
    }

    // The input as the whole Authorization header, and as a Bearer credential.
    let raw = extract_token(None, Some(data), None);
    check(data, extracted(&raw));
    let mut bearer = b"Bearer ".to_vec();
    bearer.extend_from_slice(data);
    let result = extract_token(None, Some(&bearer), Some("fallback"));
    check(data, extracted(&result));
    if let Ok(token) = &result {
        assert_eq!(token.as_str().as_bytes(), data.trim_ascii());
        verify(data, token);
    }

    // The input as the query string.
    if let Some(query) = text {
        let value = token_from_query(query);
        let result = extract_token(None, None, value.as_deref());
        if value.as_deref().is_none_or(str::is_empty) {
            assert_eq!(result, Err(Rejection::Missing));
        }
        check(data, extracted(&result));
        if let Ok(token) = &result {
            verify(data, token);
        }
    }
}

/// The error of an extraction: only `missing` or `malformed`.
fn extracted(result: &Result<Token, Rejection>) -> Option<Rejection> {
    let error = *result.as_ref().err()?;
    assert!(
        matches!(error, Rejection::Missing | Rejection::Malformed { .. }),
        "{error:?}"
    );
    Some(error)
}

fn verify(data: &[u8], token: &Token) {
    for (index, verifier) in verifiers().iter().enumerate() {
        for secs in NOWS {
            let now = UNIX_EPOCH + Duration::from_secs(secs);
            match verifier.verify(token, now) {
                Ok(claims) => {
                    assert!(
                        secs < verifier.expires_at(&claims),
                        "valid means not expired"
                    );
                    if index == 1 {
                        assert_eq!(claims.get("iss"), Some(&json!(AUTH_ISSUER)));
                    }
                    let sub = claims.sub().map(str::to_owned);
                    assert_eq!(
                        verifier.verify_refresh(token, now, sub.as_deref()),
                        Ok(claims.clone())
                    );
                    let other = format!("{}-other", sub.unwrap_or_default());
                    let refresh = verifier.verify_refresh(token, now, Some(&other));
                    assert_eq!(refresh, Err(Rejection::SubMismatch));
                    check(data, refresh.err());
                }
                Err(error) => {
                    assert!(
                        !matches!(error, Rejection::Missing | Rejection::SubMismatch),
                        "{error:?}"
                    );
                    check(data, Some(error));
                }
            }
        }
    }
}

/// Every error has a contract reason, its texts are built from the crate's own fixed texts, and
/// they carry no token-shaped run of the input longer than 8 bytes.
fn check(data: &[u8], error: Option<Rejection>) {
    let Some(error) = error else {
        return;
    };
    assert!(REASONS.contains(&error.reason()), "{error:?}");
    let display = error.to_string();
    let debug = format!("{error:?}");
    match error {
        Rejection::Malformed { detail } | Rejection::BadSignature { detail } => {
            // A string literal of the crate, not something built from the input.
            let literal = format!("\"{detail}\"");
            assert!(
                AUTH_SOURCES.iter().any(|source| source.contains(&literal)),
                "{detail:?} is not a literal of sockeye-auth"
            );
            let prefix = if matches!(error, Rejection::Malformed { .. }) {
                "malformed token"
            } else {
                "bad signature"
            };
            assert_eq!(display, format!("{prefix}: {detail}"));
        }
        _ => assert!(
            AUTH_SOURCES
                .iter()
                .any(|source| source.contains(&format!("#[error(\"{display}\")]"))),
            "{display:?}"
        ),
    }
    // Token-shaped runs of the input (what `Token::new` accepts), unless the run is text of the
    // crate's own source (a fixed message may contain a long word).
    let token_byte = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    for piece in data.split(|b| !token_byte(b)) {
        if piece.len() <= 8 {
            continue;
        }
        let piece = std::str::from_utf8(piece).unwrap();
        if AUTH_SOURCES.iter().any(|source| source.contains(piece)) {
            continue;
        }
        assert!(!display.contains(piece), "{display:?} holds {piece:?}");
        assert!(!debug.contains(piece), "{debug:?} holds {piece:?}");
    }
}
