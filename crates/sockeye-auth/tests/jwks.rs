//! JWKS: `kid` selection, several live keys, reload on change, unusable keys.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::path::Path;

use common::*;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm as Jwa, EncodingKey};
use serde_json::{Value, json};
use sockeye_auth::{Algorithm, ConfigError, Verifier};

fn jwk(key: &EncodingKey, alg: Jwa, kid: &str, with_alg: bool) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    if !with_alg {
        jwk.common.key_algorithm = None;
    }
    jwk
}

fn write_set(path: &Path, keys: Vec<Jwk>) {
    std::fs::write(path, serde_json::to_vec(&JwkSet { keys }).unwrap()).unwrap();
}

fn rs256(key: &EncodingKey, kid: Option<&str>, sub: &str) -> String {
    let mut header = json!({ "alg": "RS256", "typ": "JWT" });
    if let Some(kid) = kid {
        header["kid"] = Value::from(kid);
    }
    token_json(
        &header,
        &json!({ "sub": sub, "exp": NOW + 60 }),
        key,
        Jwa::RS256,
    )
}

#[test]
fn kid_selection_rotation_and_reload() {
    let path = temp_path("rotation.json");
    let (k1, k2) = (rsa("rsa_private.pem"), rsa("rsa2_private.pem"));
    write_set(&path, vec![jwk(&k1, Jwa::RS256, "k1", true)]);
    let verifier = Verifier::builder().jwks_file(&path).build().unwrap();
    assert_eq!(verifier.jwks_key_counts(), Some((1, 0)));

    assert_eq!(
        check(&verifier, &rs256(&k1, Some("k1"), "a")),
        Ok("a".to_owned())
    );
    assert_eq!(check(&verifier, &rs256(&k1, None, "a")), Ok("a".to_owned()));
    // Unknown kid: no key to check the signature with.
    assert_eq!(
        check(&verifier, &rs256(&k2, Some("k2"), "b"))
            .unwrap_err()
            .reason(),
        "bad_signature"
    );
    // A kid naming a key that did not sign it.
    assert_eq!(
        check(&verifier, &rs256(&k2, Some("k1"), "b"))
            .unwrap_err()
            .reason(),
        "bad_signature"
    );

    // Unchanged file: nothing to do.
    assert!(!verifier.reload_if_changed().unwrap());
    // Rotation: both keys live at once.
    write_set(
        &path,
        vec![
            jwk(&k1, Jwa::RS256, "k1", true),
            jwk(&k2, Jwa::RS256, "k2", false),
        ],
    );
    assert!(verifier.reload_if_changed().unwrap());
    assert!(!verifier.reload_if_changed().unwrap());
    assert_eq!(verifier.jwks_key_counts(), Some((2, 0)));
    assert_eq!(
        check(&verifier, &rs256(&k1, Some("k1"), "a")),
        Ok("a".to_owned())
    );
    assert_eq!(
        check(&verifier, &rs256(&k2, Some("k2"), "b")),
        Ok("b".to_owned())
    );
    assert_eq!(check(&verifier, &rs256(&k2, None, "b")), Ok("b".to_owned()));

    // A broken file keeps the old keys live.
    std::fs::write(&path, b"{\"keys\": [").unwrap();
    let err = verifier.reload_if_changed().unwrap_err();
    assert!(matches!(err, ConfigError::Jwks { .. }), "{err}");
    assert_eq!(
        check(&verifier, &rs256(&k2, Some("k2"), "b")),
        Ok("b".to_owned())
    );
    // So does a vanished file.
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        verifier.reload_if_changed(),
        Err(ConfigError::JwksIo { .. })
    ));
    assert_eq!(
        check(&verifier, &rs256(&k1, Some("k1"), "a")),
        Ok("a".to_owned())
    );

    // The old key retired.
    write_set(&path, vec![jwk(&k2, Jwa::RS256, "k2", true)]);
    assert!(verifier.reload_if_changed().unwrap());
    assert_eq!(
        check(&verifier, &rs256(&k1, Some("k1"), "a"))
            .unwrap_err()
            .reason(),
        "bad_signature"
    );
    assert_eq!(
        check(&verifier, &rs256(&k2, Some("k2"), "b")),
        Ok("b".to_owned())
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn symmetric_key_in_jwks_with_asymmetric_algorithms() {
    let path = temp_path("symmetric.json");
    let secret_b64 = b64(SECRET);
    let set = json!({ "keys": [
        { "kty": "oct", "kid": "sym", "k": secret_b64, "alg": "HS256" },
        { "kty": "oct", "kid": "sym2", "k": secret_b64 },
        serde_json::to_value(jwk(&rsa("rsa_private.pem"), Jwa::RS256, "rsa", true)).unwrap(),
    ]});
    std::fs::write(&path, set.to_string()).unwrap();
    // Default for a JWKS: asymmetric algorithms only, so both oct keys are skipped.
    let verifier = Verifier::builder().jwks_file(&path).build().unwrap();
    assert!(verifier.algorithms().iter().all(|alg| !alg.is_hmac()));
    assert_eq!(verifier.jwks_key_counts(), Some((1, 2)));

    let hs = |kid: &str| {
        token_json(
            &json!({"alg":"HS256","kid":kid}),
            &json!({"sub":"eve","exp":NOW + 60}),
            &hs(SECRET),
            Jwa::HS256,
        )
    };
    assert_eq!(
        check(&verifier, &hs("sym")).unwrap_err().reason(),
        "bad_algorithm"
    );
    assert_eq!(
        check(&verifier, &hs("rsa")).unwrap_err().reason(),
        "bad_algorithm"
    );
    // An RS256 token pointing at the symmetric key's kid finds no key.
    let rsa_signed = rs256(&rsa("rsa_private.pem"), Some("sym"), "eve");
    assert_eq!(
        check(&verifier, &rsa_signed).unwrap_err().reason(),
        "bad_signature"
    );

    // With HS256 configured explicitly, the oct key is a verification key like any other.
    let with_hs = Verifier::builder()
        .jwks_file(&path)
        .algorithms([Algorithm::HS256, Algorithm::RS256])
        .build()
        .unwrap();
    assert_eq!(with_hs.jwks_key_counts(), Some((3, 0)));
    assert_eq!(check(&with_hs, &hs("sym")), Ok("eve".to_owned()));

    // A JWKS of symmetric keys only, with asymmetric algorithms: refused at start.
    let only_sym = temp_path("only-symmetric.json");
    std::fs::write(
        &only_sym,
        json!({"keys": [{ "kty": "oct", "kid": "s", "k": secret_b64 }]}).to_string(),
    )
    .unwrap();
    let err = Verifier::builder()
        .jwks_file(&only_sym)
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::Jwks { .. }), "{err}");
    assert!(!err.to_string().contains(&secret_b64));
    std::fs::remove_file(&only_sym).unwrap();
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn jwks_key_restrictions() {
    let path = temp_path("restrictions.json");
    let key = rsa("rsa_private.pem");
    let mut enc = jwk(&key, Jwa::RS256, "enc", false);
    enc.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Encryption);
    let short_secret = json!({ "kty": "oct", "kid": "short", "k": b64(b"too short") });
    let set = json!({ "keys": [
        serde_json::to_value(enc).unwrap(),
        serde_json::to_value(jwk(&key, Jwa::PS256, "ps-only", true)).unwrap(),
        short_secret,
        { "kty": "weird", "kid": "w" },
    ]});
    std::fs::write(&path, set.to_string()).unwrap();
    let verifier = Verifier::builder()
        .jwks_file(&path)
        .algorithms([Algorithm::RS256, Algorithm::PS256, Algorithm::HS256])
        .build()
        .unwrap();
    assert_eq!(verifier.jwks_key_counts(), Some((1, 3)));
    // The key's own `alg` restricts it: PS256 verifies, RS256 with the same key does not.
    let ps = token_json(
        &json!({"alg":"PS256","kid":"ps-only"}),
        &json!({"sub":"p","exp":NOW + 60}),
        &key,
        Jwa::PS256,
    );
    assert_eq!(check(&verifier, &ps), Ok("p".to_owned()));
    assert_eq!(
        check(&verifier, &rs256(&key, Some("ps-only"), "p"))
            .unwrap_err()
            .reason(),
        "bad_signature"
    );
    assert_eq!(
        check(&verifier, &rs256(&key, Some("enc"), "p"))
            .unwrap_err()
            .reason(),
        "bad_signature"
    );

    let missing = Verifier::builder()
        .jwks_file(temp_path("does-not-exist.json"))
        .build();
    assert!(matches!(missing, Err(ConfigError::JwksIo { .. })));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn static_key_with_kid_and_jwks() {
    // A static PEM key answers tokens whose kid the JWKS does not know.
    let path = temp_path("mixed.json");
    write_set(
        &path,
        vec![jwk(&rsa("rsa2_private.pem"), Jwa::RS256, "k2", true)],
    );
    let verifier = Verifier::builder()
        .public_key_pem(fixture("rsa_public.pem"))
        .jwks_file(&path)
        .build()
        .unwrap();
    assert_eq!(
        check(
            &verifier,
            &rs256(&rsa("rsa_private.pem"), Some("issuer-kid"), "s")
        ),
        Ok("s".to_owned())
    );
    assert_eq!(
        check(&verifier, &rs256(&rsa("rsa2_private.pem"), Some("k2"), "j")),
        Ok("j".to_owned())
    );
    // But a kid the JWKS knows selects that key only.
    assert_eq!(
        check(&verifier, &rs256(&rsa("rsa_private.pem"), Some("k2"), "s"))
            .unwrap_err()
            .reason(),
        "bad_signature"
    );
    std::fs::remove_file(&path).unwrap();
}
