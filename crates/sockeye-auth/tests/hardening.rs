//! Hostile keys and tokens (issue 14, category O): weak RSA keys refused at load, `kid`
//! injection, a `kid` naming no key refused without trying the others, time-claim edges.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm as Jwa, EncodingKey};
use serde_json::json;
use sockeye_auth::{ConfigError, MIN_RSA_BITS, Rejection, Verifier};

fn write_set(name: &str, keys: Vec<Jwk>) -> std::path::PathBuf {
    let path = temp_path(name);
    std::fs::write(&path, serde_json::to_vec(&JwkSet { keys }).unwrap()).unwrap();
    path
}

fn jwk(key: &EncodingKey, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, Jwa::RS256).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

#[allow(clippy::needless_pass_by_value)] // call sites build the header in place
fn rs256(key: &EncodingKey, header: serde_json::Value) -> String {
    token_json(
        &header,
        &json!({ "sub": "ada", "exp": NOW + 60 }),
        key,
        Jwa::RS256,
    )
}

#[test]
fn rsa_public_keys_under_2048_bits_are_refused_at_load() {
    assert_eq!(MIN_RSA_BITS, 2048);
    for pem in ["rsa1024_public.pem", "rsa1024_public_pkcs1.pem"] {
        let error = Verifier::builder()
            .public_key_pem(fixture("rsa_public.pem"))
            .public_key_pem(fixture(pem))
            .build()
            .unwrap_err();
        assert!(
            matches!(
                error,
                ConfigError::WeakRsaKey {
                    index: 1,
                    bits: 1024
                }
            ),
            "{pem}: {error:?}"
        );
        assert!(error.to_string().contains("1024-bit"), "{error}");
    }
    // 2048 bits, SPKI and the tests' second key: fine.
    let verifier = Verifier::builder()
        .public_key_pem(fixture("rsa_public.pem"))
        .public_key_pem(fixture("rsa2_public.pem"))
        .build()
        .unwrap();
    let token = rs256(&rsa("rsa_private.pem"), json!({ "alg": "RS256" }));
    assert_eq!(check(&verifier, &token), Ok("ada".to_owned()));
}

#[test]
fn weak_rsa_keys_in_a_jwks_are_skipped_and_a_set_of_only_weak_keys_is_refused() {
    let weak = rsa("rsa1024_private.pem");
    let strong = rsa("rsa_private.pem");
    let path = write_set(
        "weak-and-strong.json",
        vec![jwk(&weak, "weak"), jwk(&strong, "strong")],
    );
    let verifier = Verifier::builder().jwks_file(&path).build().unwrap();
    assert_eq!(
        verifier.jwks_key_counts(),
        Some((1, 1)),
        "the weak key skipped"
    );
    let by_weak = rs256(&weak, json!({ "alg": "RS256", "kid": "weak" }));
    assert!(matches!(
        check(&verifier, &by_weak),
        Err(Rejection::BadSignature { .. })
    ));
    let by_strong = rs256(&strong, json!({ "alg": "RS256", "kid": "strong" }));
    assert_eq!(check(&verifier, &by_strong), Ok("ada".to_owned()));

    let only_weak = write_set("only-weak.json", vec![jwk(&weak, "weak")]);
    let error = Verifier::builder()
        .jwks_file(&only_weak)
        .build()
        .unwrap_err();
    assert!(matches!(error, ConfigError::Jwks { .. }), "{error:?}");
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(only_weak);
}

#[test]
fn a_kid_naming_no_key_is_refused_without_trying_the_keys() {
    // Twenty live keys, none named by the token: refused before any signature check (the
    // detail says no key was chosen), so a client cannot make the server try every key.
    let strong = rsa("rsa_private.pem");
    let keys = (0..20).map(|i| jwk(&strong, &format!("k{i}"))).collect();
    let path = write_set("many.json", keys);
    let verifier = Verifier::builder().jwks_file(&path).build().unwrap();
    for kid in [
        "nope",
        "../../../../etc/passwd",
        "' OR '1'='1",
        "k1\u{0}",
        "K1",
        " k1",
        "",
        "\u{202e}1k",
    ] {
        let token = rs256(&strong, json!({ "alg": "RS256", "kid": kid }));
        assert_eq!(
            check(&verifier, &token),
            Err(Rejection::BadSignature {
                detail: "no key for this kid and algorithm"
            }),
            "{kid:?}"
        );
    }
    let long_kid = "k".repeat(4000);
    let token = rs256(&strong, json!({ "alg": "RS256", "kid": long_kid }));
    assert!(matches!(
        check(&verifier, &token),
        Err(Rejection::BadSignature { .. } | Rejection::Malformed { .. })
    ));
    // A kid that is not a string is malformed, before any key is looked at.
    for kid in [json!(1), json!(["k1"]), json!({"k": "k1"}), json!(true)] {
        let token = rs256(&strong, json!({ "alg": "RS256", "kid": kid }));
        assert!(
            matches!(check(&verifier, &token), Err(Rejection::Malformed { .. })),
            "{kid}"
        );
    }
    // The named key still verifies.
    let token = rs256(&strong, json!({ "alg": "RS256", "kid": "k7" }));
    assert_eq!(check(&verifier, &token), Ok("ada".to_owned()));
    let _ = std::fs::remove_file(path);
}

#[test]
fn alg_confusion_with_the_jwks_public_key_as_an_hmac_secret() {
    // The attacker signs HS256 with the PEM text of the server's public key as the secret.
    let public_pem = fixture("rsa_public.pem");
    let path = write_set("confusion.json", vec![jwk(&rsa("rsa_private.pem"), "k")]);
    let verifier = Verifier::builder().jwks_file(&path).build().unwrap();
    for header in [
        json!({ "alg": "HS256", "kid": "k" }),
        json!({ "alg": "HS256" }),
        json!({ "alg": "none", "kid": "k" }),
        json!({ "alg": "None" }),
        json!({ "alg": "" }),
    ] {
        let token = token_json(
            &header,
            &json!({ "sub": "ada", "exp": NOW + 60 }),
            &hs(&public_pem),
            Jwa::HS256,
        );
        assert_eq!(
            check(&verifier, &token),
            Err(Rejection::BadAlgorithm),
            "{header}"
        );
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn time_claims_at_their_edges() {
    let verifier = hs256_verifier();
    let sign = |claims: serde_json::Value| {
        token_json(&json!({ "alg": "HS256" }), &claims, &hs(SECRET), Jwa::HS256)
    };
    let cases: Vec<(&str, serde_json::Value, Result<&str, Rejection>)> = vec![
        (
            "exp now",
            json!({ "sub": "a", "exp": NOW }),
            Err(Rejection::Expired),
        ),
        (
            "exp next second",
            json!({ "sub": "a", "exp": NOW + 1 }),
            Ok("a"),
        ),
        // A fraction of a second left rounds down: expired (never a second too long).
        (
            "exp fractional",
            json!({ "sub": "a", "exp": NOW as f64 + 0.9 }),
            Err(Rejection::Expired),
        ),
        (
            "exp 0",
            json!({ "sub": "a", "exp": 0 }),
            Err(Rejection::Expired),
        ),
        (
            "exp far future",
            json!({ "sub": "a", "exp": 1e18 }),
            Ok("a"),
        ),
        (
            "exp string",
            json!({ "sub": "a", "exp": "x" }),
            Err(Rejection::Malformed { detail: "" }),
        ),
        (
            "exp negative",
            json!({ "sub": "a", "exp": -1 }),
            Err(Rejection::Malformed { detail: "" }),
        ),
        (
            "exp past 2^63",
            json!({ "sub": "a", "exp": 1e19 }),
            Err(Rejection::Malformed { detail: "" }),
        ),
        (
            "nbf next second",
            json!({ "sub": "a", "exp": NOW + 60, "nbf": NOW + 1 }),
            Err(Rejection::NotYetValid),
        ),
        (
            "nbf fractional rounds up",
            json!({ "sub": "a", "exp": NOW + 60, "nbf": NOW as f64 + 0.1 }),
            Err(Rejection::NotYetValid),
        ),
        (
            "nbf now",
            json!({ "sub": "a", "exp": NOW + 60, "nbf": NOW }),
            Ok("a"),
        ),
        // iat is type-checked only, as node-jsonwebtoken does (no maxAge): a future iat is
        // accepted, since a token minted on a clock a little ahead must not be refused.
        (
            "iat future",
            json!({ "sub": "a", "exp": NOW + 60, "iat": NOW + 30 }),
            Ok("a"),
        ),
        (
            "iat negative",
            json!({ "sub": "a", "exp": NOW + 60, "iat": -5 }),
            Err(Rejection::Malformed { detail: "" }),
        ),
        (
            "iat string",
            json!({ "sub": "a", "exp": NOW + 60, "iat": "0" }),
            Err(Rejection::Malformed { detail: "" }),
        ),
    ];
    for (name, claims, want) in cases {
        let got = check(&verifier, &sign(claims));
        match (&got, &want) {
            (Err(Rejection::Malformed { .. }), Err(Rejection::Malformed { .. })) => {}
            _ => assert_eq!(got, want.map(str::to_owned), "{name}"),
        }
    }
}

#[test]
fn duplicate_claims_are_malformed_whichever_comes_last() {
    // `JSON.parse` (node-jsonwebtoken) keeps the last duplicate; two parsers disagreeing on
    // which `exp` counts is how a token smuggles a claim past one of them, so a duplicate claim
    // is refused outright (the JWT decoder's rule, RFC 7519 section 4 allows it).
    let verifier = hs256_verifier();
    for (first, last) in [(NOW + 60, NOW - 1), (NOW - 1, NOW + 60)] {
        let token = raw_token(
            r#"{"alg":"HS256"}"#,
            format!(r#"{{"sub":"a","exp":{first},"exp":{last}}}"#),
            &hs(SECRET),
            Jwa::HS256,
        );
        assert!(
            matches!(check(&verifier, &token), Err(Rejection::Malformed { .. })),
            "{first} {last}"
        );
    }
}
