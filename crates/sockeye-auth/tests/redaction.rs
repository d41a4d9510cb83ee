//! No `Debug` or `Display` of a token or of any error shows the token text.

mod common;

use common::*;
use jsonwebtoken::Algorithm as Jwa;
use serde_json::json;
use sockeye_auth::{MintClaims, Rejection, Token, extract_token, mint};

#[test]
fn token_debug_is_redacted_everywhere() {
    let text = good_hs256("ada");
    let token = Token::new(&text).unwrap();
    for shown in [
        format!("{token:?}"),
        format!("{token:#?}"),
        format!("{:?}", Some(&token)),
        format!("{:?}", Ok::<_, Rejection>(token.clone())),
        format!("{:?}", vec![token]),
    ] {
        assert!(shown.contains("Token(<redacted>)"), "{shown}");
        assert_no_token_text(&shown, &text);
    }
    let minted = mint(SECRET, &MintClaims::new("dev", NOW + 60)).unwrap();
    assert_eq!(format!("{minted:?}"), "Token(<redacted>)");
}

#[test]
fn every_rejection_of_a_real_token_is_clean() {
    let verifier = hs256_verifier();
    let good = good_hs256("ada");
    let forged = token_json(
        &json!({"alg":"HS256"}),
        &json!({"sub":"ada","exp":NOW + 60}),
        &hs(OTHER_SECRET),
        Jwa::HS256,
    );
    let expired = token_json(
        &json!({"alg":"HS256"}),
        &json!({"sub":"ada","exp":NOW - 60}),
        &hs(SECRET),
        Jwa::HS256,
    );
    let bad_json = raw_token(
        r#"{"alg":"HS256"}"#,
        r#"{"exp": oops}"#,
        &hs(SECRET),
        Jwa::HS256,
    );
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(br#"{"sub":"ada","exp":1800000000}"#)
    );
    let mut seen = Vec::new();
    for text in [
        forged,
        expired,
        bad_json,
        none,
        format!("{good}x!"),
        format!("{good}.{good}"),
    ] {
        let err = check(&verifier, &text).unwrap_err();
        assert_no_token_text(&err, &text);
        seen.push(err.reason());
        // Through the extraction path too, from every source.
        let header = format!("Bearer {text}");
        for result in [
            extract_token(Some(&json!({ "token": text })), None, None),
            extract_token(None, Some(header.as_bytes()), None),
            extract_token(None, None, Some(&text)),
        ] {
            match result.and_then(|t| verifier.verify(&t, now())) {
                Ok(_) => panic!("accepted"),
                Err(e) => assert_no_token_text(&e, &text),
            }
        }
    }
    assert_eq!(
        seen,
        [
            "bad_signature",
            "expired",
            "malformed",
            "bad_algorithm",
            "malformed",
            "malformed"
        ]
    );
}
