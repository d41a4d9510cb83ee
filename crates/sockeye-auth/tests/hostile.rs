//! The hostile-token table from issue 5: each case with the reason a client must see.

mod common;

use std::time::Duration;

use common::*;
use jsonwebtoken::Algorithm as Jwa;
use serde_json::json;
use sockeye_auth::{Algorithm, MAX_TOKEN_LEN, Rejection, Token, Verifier, extract_token};

/// Runs each `(name, token, expected)` through `verifier`; `expected` is `Ok(sub)` or
/// `Err(reason)`. Every rejection is also checked for leaking the token.
fn run_table(verifier: &Verifier, cases: &[(&str, String, Result<&str, &str>)]) {
    for (name, token, expected) in cases {
        let got = check(verifier, token);
        match (&got, expected) {
            (Ok(sub), Ok(want)) => assert_eq!(sub, want, "{name}"),
            (Err(rejection), Err(reason)) => {
                assert_eq!(rejection.reason(), *reason, "{name}: {rejection}");
                assert_no_token_text(rejection, token);
            }
            _ => panic!("{name}: got {got:?}, expected {expected:?}"),
        }
    }
}

fn claims() -> serde_json::Value {
    json!({ "sub": "ada", "exp": NOW + 60 })
}

#[test]
fn hs256_table() {
    let verifier = hs256_verifier();
    let key = hs(SECRET);
    let hs256 = json!({ "alg": "HS256", "typ": "JWT" });
    let sign = |h: &serde_json::Value, c: &serde_json::Value| token_json(h, c, &key, Jwa::HS256);
    let unsigned = |h: &str, c: &str| format!("{}.{}.", b64(h.as_bytes()), b64(c.as_bytes()));
    let good = sign(&hs256, &claims());
    let (good_head, good_rest) = good.split_once('.').unwrap();
    let (good_claims, good_sig) = good_rest.split_once('.').unwrap();
    let claims_text = claims().to_string();

    let cases: Vec<(&str, String, Result<&str, &str>)> = vec![
        ("valid", good.clone(), Ok("ada")),
        // Algorithms.
        (
            "alg none",
            unsigned(r#"{"alg":"none","typ":"JWT"}"#, &claims_text),
            Err("bad_algorithm"),
        ),
        (
            "alg None",
            unsigned(r#"{"alg":"None"}"#, &claims_text),
            Err("bad_algorithm"),
        ),
        (
            "alg NONE signed",
            format!("{}.{good_claims}.{good_sig}", b64(br#"{"alg":"NONE"}"#)),
            Err("bad_algorithm"),
        ),
        (
            "alg lowercase hs256",
            format!("{}.{good_claims}.{good_sig}", b64(br#"{"alg":"hs256"}"#)),
            Err("bad_algorithm"),
        ),
        (
            "alg HS512 not configured",
            token_json(&json!({"alg":"HS512"}), &claims(), &key, Jwa::HS512),
            Err("bad_algorithm"),
        ),
        (
            "alg RS256 not configured",
            format!("{}.{good_claims}.{good_sig}", b64(br#"{"alg":"RS256"}"#)),
            Err("bad_algorithm"),
        ),
        (
            "alg unknown",
            format!("{}.{good_claims}.{good_sig}", b64(br#"{"alg":"XX999"}"#)),
            Err("bad_algorithm"),
        ),
        (
            "alg number",
            sign(&json!({"alg": 256}), &claims()),
            Err("malformed"),
        ),
        (
            "alg missing",
            sign(&json!({"typ": "JWT"}), &claims()),
            Err("malformed"),
        ),
        // Header extensions.
        (
            "crit unknown",
            sign(&json!({"alg":"HS256","crit":["exp"],"exp":1}), &claims()),
            Err("malformed"),
        ),
        (
            "crit b64",
            sign(&json!({"alg":"HS256","crit":["b64"],"b64":true}), &claims()),
            Err("malformed"),
        ),
        (
            "kid number",
            sign(&json!({"alg":"HS256","kid":7}), &claims()),
            Err("malformed"),
        ),
        (
            "kid ignored without jwks",
            sign(&json!({"alg":"HS256","kid":"whatever"}), &claims()),
            Ok("ada"),
        ),
        // Shape and encoding.
        (
            "two parts",
            format!("{good_head}.{good_claims}"),
            Err("malformed"),
        ),
        ("four parts", format!("{good}.{good_sig}"), Err("malformed")),
        ("only dots", "..".to_owned(), Err("malformed")),
        (
            "bad base64 header",
            format!("a.{good_claims}.{good_sig}"),
            Err("malformed"),
        ),
        (
            "bad base64 claims",
            format!("{good_head}.a.{good_sig}"),
            Err("malformed"),
        ),
        (
            "bad base64 signature",
            format!("{good_head}.{good_claims}.a"),
            Err("malformed"),
        ),
        (
            "padded base64",
            format!("{good_head}=.{good_claims}.{good_sig}"),
            Err("malformed"),
        ),
        (
            "standard base64 chars",
            format!("{good_head}.{good_claims}+/.{good_sig}"),
            Err("malformed"),
        ),
        (
            "invalid JSON header",
            raw_token(r#"{"alg":"HS256""#, &claims_text, &key, Jwa::HS256),
            Err("malformed"),
        ),
        (
            "header not an object",
            raw_token(r#"["HS256"]"#, &claims_text, &key, Jwa::HS256),
            Err("malformed"),
        ),
        (
            "invalid JSON claims",
            raw_token(
                r#"{"alg":"HS256"}"#,
                r#"{"sub":"ada","exp":"#,
                &key,
                Jwa::HS256,
            ),
            Err("malformed"),
        ),
        (
            "duplicate exp",
            raw_token(
                r#"{"alg":"HS256"}"#,
                format!(r#"{{"sub":"ada","exp":1,"exp":{}}}"#, NOW + 60),
                &key,
                Jwa::HS256,
            ),
            Err("malformed"),
        ),
        (
            "claims not an object",
            raw_token(r#"{"alg":"HS256"}"#, "[1,2]", &key, Jwa::HS256),
            Err("malformed"),
        ),
        (
            "claims not UTF-8",
            raw_token(
                r#"{"alg":"HS256"}"#,
                b"{\"sub\":\"\xff\",\"exp\":1800000000}",
                &key,
                Jwa::HS256,
            ),
            Err("malformed"),
        ),
        // Claim types.
        (
            "exp missing",
            sign(&hs256, &json!({"sub":"ada"})),
            Err("malformed"),
        ),
        (
            "exp string",
            sign(&hs256, &json!({"sub":"ada","exp": (NOW + 60).to_string()})),
            Err("malformed"),
        ),
        (
            "exp negative",
            sign(&hs256, &json!({"sub":"ada","exp": -5})),
            Err("malformed"),
        ),
        (
            "exp bool",
            sign(&hs256, &json!({"sub":"ada","exp": true})),
            Err("malformed"),
        ),
        (
            "exp fractional",
            sign(&hs256, &json!({"sub":"ada","exp": (NOW + 60) as f64 + 0.5})),
            Ok("ada"),
        ),
        (
            "nbf string",
            sign(&hs256, &json!({"sub":"ada","exp": NOW + 60, "nbf": "0"})),
            Err("malformed"),
        ),
        (
            "iat object",
            sign(&hs256, &json!({"sub":"ada","exp": NOW + 60, "iat": {}})),
            Err("malformed"),
        ),
        (
            "iss number",
            sign(&hs256, &json!({"sub":"ada","exp": NOW + 60, "iss": 1})),
            Err("malformed"),
        ),
        (
            "aud number",
            sign(&hs256, &json!({"sub":"ada","exp": NOW + 60, "aud": 1})),
            Err("malformed"),
        ),
        (
            "aud mixed array",
            sign(
                &hs256,
                &json!({"sub":"ada","exp": NOW + 60, "aud": ["x", 1]}),
            ),
            Err("malformed"),
        ),
        (
            "aud unchecked when not configured",
            sign(&hs256, &json!({"sub":"ada","exp": NOW + 60, "aud": "x"})),
            Ok("ada"),
        ),
        (
            "sub number",
            sign(&hs256, &json!({"sub": 42, "exp": NOW + 60})),
            Err("malformed"),
        ),
        // Signatures.
        (
            "another secret",
            token_json(&hs256, &claims(), &hs(OTHER_SECRET), Jwa::HS256),
            Err("bad_signature"),
        ),
        (
            "signature of another token",
            format!(
                "{good_head}.{}.{good_sig}",
                b64(br#"{"sub":"eve","exp":1800000000}"#)
            ),
            Err("bad_signature"),
        ),
        (
            "empty signature",
            format!("{good_head}.{good_claims}."),
            Err("bad_signature"),
        ),
        (
            "truncated signature",
            format!(
                "{good_head}.{good_claims}.{}",
                &good_sig[..good_sig.len() - 4]
            ),
            Err("bad_signature"),
        ),
        // Time.
        (
            "expired",
            sign(&hs256, &json!({"sub":"ada","exp": NOW - 1})),
            Err("expired"),
        ),
        (
            "exp equals now",
            sign(&hs256, &json!({"sub":"ada","exp": NOW})),
            Err("expired"),
        ),
        (
            "exp one second ahead",
            sign(&hs256, &json!({"sub":"ada","exp": NOW + 1})),
            Ok("ada"),
        ),
        (
            "exp zero",
            sign(&hs256, &json!({"sub":"ada","exp": 0})),
            Err("expired"),
        ),
        (
            "exp far future",
            sign(&hs256, &json!({"sub":"ada","exp": u64::MAX})),
            Ok("ada"),
        ),
        (
            "nbf future",
            sign(
                &hs256,
                &json!({"sub":"ada","exp": NOW + 60, "nbf": NOW + 1}),
            ),
            Err("not_yet_valid"),
        ),
        (
            "nbf now",
            sign(&hs256, &json!({"sub":"ada","exp": NOW + 60, "nbf": NOW})),
            Ok("ada"),
        ),
        (
            "expired and forged",
            token_json(
                &hs256,
                &json!({"sub":"ada","exp": 1}),
                &hs(OTHER_SECRET),
                Jwa::HS256,
            ),
            Err("bad_signature"),
        ),
    ];
    run_table(&verifier, &cases);
}

#[test]
fn leeway_edges() {
    let verifier = Verifier::builder()
        .hmac_secret(SECRET)
        .leeway(Duration::from_secs(30))
        .build()
        .unwrap();
    let hs256 = json!({ "alg": "HS256" });
    let sign = |c: serde_json::Value| token_json(&hs256, &c, &hs(SECRET), Jwa::HS256);
    let cases: Vec<(&str, String, Result<&str, &str>)> = vec![
        (
            "exp just inside leeway",
            sign(json!({"sub":"a","exp": NOW - 29})),
            Ok("a"),
        ),
        (
            "exp just outside leeway",
            sign(json!({"sub":"a","exp": NOW - 30})),
            Err("expired"),
        ),
        (
            "nbf just inside leeway",
            sign(json!({"sub":"a","exp": NOW + 60, "nbf": NOW + 30})),
            Ok("a"),
        ),
        (
            "nbf just outside leeway",
            sign(json!({"sub":"a","exp": NOW + 60, "nbf": NOW + 31})),
            Err("not_yet_valid"),
        ),
    ];
    run_table(&verifier, &cases);

    let token = Token::new(&sign(json!({"sub":"a","exp": NOW + 10}))).unwrap();
    let claims = verifier.verify(&token, now()).unwrap();
    assert_eq!(verifier.expires_at(&claims), NOW + 40);
    assert!(verifier.verify(&token, at(NOW + 39)).is_ok());
    assert_eq!(
        verifier.verify(&token, at(NOW + 40)),
        Err(Rejection::Expired)
    );
}

#[test]
fn issuer_and_audience() {
    let verifier = Verifier::builder()
        .hmac_secret(SECRET)
        .issuer("https://id.example")
        .audience("sockeye")
        .audience("chat")
        .build()
        .unwrap();
    let hs256 = json!({ "alg": "HS256" });
    let sign = |c: serde_json::Value| token_json(&hs256, &c, &hs(SECRET), Jwa::HS256);
    let iss = "https://id.example";
    let exp = NOW + 60;
    let cases: Vec<(&str, String, Result<&str, &str>)> = vec![
        (
            "right iss and aud",
            sign(json!({"sub":"a","exp":exp,"iss":iss,"aud":"chat"})),
            Ok("a"),
        ),
        (
            "aud array with one right",
            sign(json!({"sub":"a","exp":exp,"iss":iss,"aud":["x","sockeye"]})),
            Ok("a"),
        ),
        (
            "wrong iss",
            sign(json!({"sub":"a","exp":exp,"iss":"https://evil.example","aud":"chat"})),
            Err("bad_issuer"),
        ),
        (
            "wrong aud",
            sign(json!({"sub":"a","exp":exp,"iss":iss,"aud":"other"})),
            Err("bad_audience"),
        ),
        (
            "empty aud array",
            sign(json!({"sub":"a","exp":exp,"iss":iss,"aud":[]})),
            Err("bad_audience"),
        ),
        (
            "iss missing",
            sign(json!({"sub":"a","exp":exp,"aud":"chat"})),
            Err("malformed"),
        ),
        (
            "aud missing",
            sign(json!({"sub":"a","exp":exp,"iss":iss})),
            Err("malformed"),
        ),
        (
            "iss array",
            sign(json!({"sub":"a","exp":exp,"iss":[iss],"aud":"chat"})),
            Err("malformed"),
        ),
        (
            "aud object",
            sign(json!({"sub":"a","exp":exp,"iss":iss,"aud":{"a":1}})),
            Err("malformed"),
        ),
        (
            "iss wrong and forged",
            token_json(
                &hs256,
                &json!({"sub":"a","exp":exp,"iss":"x","aud":"chat"}),
                &hs(OTHER_SECRET),
                Jwa::HS256,
            ),
            Err("bad_signature"),
        ),
    ];
    run_table(&verifier, &cases);
}

#[test]
fn algorithm_confusion_hs256_with_rsa_public_key() {
    let public_pem = fixture("rsa_public.pem");
    let forged = token_json(
        &json!({"alg":"HS256"}),
        &claims(),
        &hs(&public_pem),
        Jwa::HS256,
    );
    let rs_only = Verifier::builder()
        .public_key_pem(&public_pem)
        .build()
        .unwrap();
    assert!(!rs_only.algorithms().contains(&Algorithm::HS256));
    assert_eq!(
        check(&rs_only, &forged).unwrap_err().reason(),
        "bad_algorithm"
    );

    // Even with HS256 also configured, an HMAC token is checked against the secret only,
    // never against the RSA key's bytes.
    let both = Verifier::builder()
        .hmac_secret(SECRET)
        .public_key_pem(&public_pem)
        .algorithms([Algorithm::HS256, Algorithm::RS256])
        .build()
        .unwrap();
    assert_eq!(check(&both, &forged).unwrap_err().reason(), "bad_signature");
    let rs256 = token_json(
        &json!({"alg":"RS256"}),
        &claims(),
        &rsa("rsa_private.pem"),
        Jwa::RS256,
    );
    assert_eq!(check(&both, &rs256), Ok("ada".to_owned()));
    assert_eq!(check(&both, &good_hs256("bo")), Ok("bo".to_owned()));
}

#[test]
fn another_rsa_key_is_bad_signature() {
    let verifier = Verifier::builder()
        .public_key_pem(fixture("rsa_public.pem"))
        .build()
        .unwrap();
    let other = token_json(
        &json!({"alg":"RS256"}),
        &claims(),
        &rsa("rsa2_private.pem"),
        Jwa::RS256,
    );
    assert_eq!(
        check(&verifier, &other).unwrap_err().reason(),
        "bad_signature"
    );
}

#[test]
fn oversized_and_empty_tokens() {
    let huge = "a".repeat(10 * 1024 * 1024);
    let auth = json!({ "token": huge });
    let err = extract_token(Some(&auth), None, None).unwrap_err();
    assert_eq!(err.reason(), "malformed");
    assert_no_token_text(&err, &huge[..64]);
    let header = format!("Bearer {huge}");
    assert_eq!(
        extract_token(None, Some(header.as_bytes()), None)
            .unwrap_err()
            .reason(),
        "malformed"
    );
    assert_eq!(
        extract_token(None, None, Some(&huge)).unwrap_err().reason(),
        "malformed"
    );

    // Just over the cap, even when it is otherwise a valid JWT shape.
    let padded = format!("{}.{}.{}", "a".repeat(MAX_TOKEN_LEN), "b", "c");
    assert_eq!(Token::new(&padded).unwrap_err().reason(), "malformed");

    assert_eq!(
        extract_token(Some(&json!({"token": ""})), None, None)
            .unwrap_err()
            .reason(),
        "malformed"
    );
    assert_eq!(Token::new("").unwrap_err().reason(), "malformed");
}

#[test]
fn sources_end_to_end() {
    let verifier = hs256_verifier();
    let a = good_hs256("from-auth");
    let b = good_hs256("from-header");
    let c = good_hs256("from-query");
    let sub = |auth: Option<serde_json::Value>, header: Option<String>, query: Option<&str>| {
        extract_token(auth.as_ref(), header.as_deref().map(str::as_bytes), query)
            .and_then(|t| verifier.verify(&t, now()))
            .map(|claims| claims.sub().unwrap().to_owned())
    };
    // Three different tokens in the three places: the auth object wins.
    assert_eq!(
        sub(
            Some(json!({"token": a})),
            Some(format!("Bearer {b}")),
            Some(&c)
        )
        .unwrap(),
        "from-auth"
    );
    // Lowercase `bearer` is the Bearer scheme.
    assert_eq!(
        sub(None, Some(format!("bearer {b}")), Some(&c)).unwrap(),
        "from-header"
    );
    assert_eq!(
        sub(Some(json!({"token": null})), None, Some(&c)).unwrap(),
        "from-query"
    );
    // An invalid token in the first present source is never replaced by a later one.
    let forged = token_json(
        &json!({"alg":"HS256"}),
        &claims(),
        &hs(OTHER_SECRET),
        Jwa::HS256,
    );
    assert_eq!(
        sub(
            Some(json!({"token": forged})),
            Some(format!("Bearer {b}")),
            Some(&c)
        )
        .unwrap_err()
        .reason(),
        "bad_signature"
    );
    assert_eq!(
        sub(
            Some(json!({"token": 12})),
            Some(format!("Bearer {b}")),
            Some(&c)
        )
        .unwrap_err()
        .reason(),
        "malformed"
    );
    assert_eq!(
        sub(None, Some("Bearer ".to_owned()), Some(&c))
            .unwrap_err()
            .reason(),
        "malformed"
    );
    assert_eq!(
        sub(None, Some(format!("Basic {b}")), None)
            .unwrap_err()
            .reason(),
        "missing"
    );
}

#[test]
fn refresh_requires_same_sub() {
    let verifier = hs256_verifier();
    let token = Token::new(&good_hs256("ada")).unwrap();
    assert!(verifier.verify_refresh(&token, now(), Some("ada")).is_ok());
    let err = verifier
        .verify_refresh(&token, now(), Some("bob"))
        .unwrap_err();
    assert_eq!(err.reason(), "sub_mismatch");
    let expired = Token::new(&good_hs256("ada")).unwrap();
    assert_eq!(
        verifier.verify_refresh(&expired, at(NOW + 3600), Some("ada")),
        Err(Rejection::Expired)
    );
}
