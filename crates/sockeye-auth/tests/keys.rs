//! Every supported algorithm with the key kind it needs, and configuration errors.

mod common;

use common::*;
use jsonwebtoken::{Algorithm as Jwa, EncodingKey};
use serde_json::json;
use sockeye_auth::{Algorithm, ConfigError, MintClaims, MintError, Verifier, mint};

fn claims() -> serde_json::Value {
    json!({ "sub": "ada", "exp": NOW + 60 })
}

fn signed(alg: Jwa, key: &EncodingKey) -> String {
    token_json(&json!({ "alg": format!("{alg:?}") }), &claims(), key, alg)
}

#[test]
fn every_asymmetric_algorithm_with_a_pem_key() {
    let rsa_key = rsa("rsa_private.pem");
    let ec256 = EncodingKey::from_ec_pem(&fixture("ec256_private.pem")).unwrap();
    let ec384 = EncodingKey::from_ec_pem(&fixture("ec384_private.pem")).unwrap();
    let ed = EncodingKey::from_ed_pem(&fixture("ed25519_private.pem")).unwrap();
    let cases = [
        ("rsa_public.pem", Jwa::RS256, &rsa_key),
        ("rsa_public.pem", Jwa::RS384, &rsa_key),
        ("rsa_public.pem", Jwa::RS512, &rsa_key),
        ("rsa_public.pem", Jwa::PS256, &rsa_key),
        ("rsa_public.pem", Jwa::PS384, &rsa_key),
        ("rsa_public.pem", Jwa::PS512, &rsa_key),
        ("ec256_public.pem", Jwa::ES256, &ec256),
        ("ec384_public.pem", Jwa::ES384, &ec384),
        ("ed25519_public.pem", Jwa::EdDSA, &ed),
    ];
    for (pem, alg, key) in cases {
        // Default algorithms: the whole family of the key.
        let verifier = Verifier::builder()
            .public_key_pem(fixture(pem))
            .build()
            .unwrap();
        assert_eq!(
            check(&verifier, &signed(alg, key)),
            Ok("ada".to_owned()),
            "{alg:?}"
        );
        // Explicitly configured: only that algorithm; the family's others are refused.
        let name = format!("{alg:?}");
        let only: Algorithm = name.parse().unwrap();
        let strict = Verifier::builder()
            .public_key_pem(fixture(pem))
            .algorithms([only])
            .build()
            .unwrap();
        assert_eq!(
            check(&strict, &signed(alg, key)),
            Ok("ada".to_owned()),
            "{alg:?}"
        );
        for other in [Jwa::RS256, Jwa::PS512, Jwa::ES256, Jwa::EdDSA, Jwa::HS256] {
            if other == alg {
                continue;
            }
            let header = json!({ "alg": format!("{other:?}") }).to_string();
            let token = signed(alg, key);
            let (_, rest) = token.split_once('.').unwrap();
            let relabelled = format!("{}.{rest}", b64(header.as_bytes()));
            assert_eq!(
                check(&strict, &relabelled).unwrap_err().reason(),
                "bad_algorithm"
            );
        }
    }
}

#[test]
fn curve_and_key_mismatches_are_bad_signature() {
    // ES384 token, only a P-256 key configured (both ES algorithms allowed by default).
    let ec384 = EncodingKey::from_ec_pem(&fixture("ec384_private.pem")).unwrap();
    let verifier = Verifier::builder()
        .public_key_pem(fixture("ec256_public.pem"))
        .build()
        .unwrap();
    assert_eq!(
        check(&verifier, &signed(Jwa::ES384, &ec384))
            .unwrap_err()
            .reason(),
        "bad_signature"
    );
    // Several static keys: the one that fits verifies.
    let multi = Verifier::builder()
        .public_key_pem(fixture("rsa2_public.pem"))
        .public_key_pem(fixture("rsa_public.pem"))
        .public_key_pem(fixture("ed25519_public.pem"))
        .build()
        .unwrap();
    assert_eq!(
        check(&multi, &signed(Jwa::PS256, &rsa("rsa_private.pem"))),
        Ok("ada".to_owned())
    );
    let ed = EncodingKey::from_ed_pem(&fixture("ed25519_private.pem")).unwrap();
    assert_eq!(
        check(&multi, &signed(Jwa::EdDSA, &ed)),
        Ok("ada".to_owned())
    );
}

#[test]
fn hmac_variants_and_defaults() {
    let default = hs256_verifier();
    assert_eq!(default.algorithms(), [Algorithm::HS256]);
    assert_eq!(default.leeway(), 0);
    let all = Verifier::builder()
        .hmac_secret(SECRET)
        .algorithms([
            Algorithm::HS512,
            Algorithm::HS384,
            Algorithm::HS256,
            Algorithm::HS384,
        ])
        .build()
        .unwrap();
    assert_eq!(
        all.algorithms(),
        [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
    );
    for alg in [Jwa::HS256, Jwa::HS384, Jwa::HS512] {
        assert_eq!(check(&all, &signed(alg, &hs(SECRET))), Ok("ada".to_owned()));
    }
}

#[test]
fn configuration_errors() {
    let short = Verifier::builder()
        .hmac_secret([7u8; 31])
        .build()
        .unwrap_err();
    assert!(
        matches!(short, ConfigError::SecretTooShort { len: 31 }),
        "{short}"
    );
    assert!(Verifier::builder().hmac_secret([7u8; 32]).build().is_ok());
    assert!(matches!(
        Verifier::builder().build(),
        Err(ConfigError::NoKey)
    ));
    assert!(matches!(
        Verifier::builder()
            .hmac_secret(SECRET)
            .algorithms([])
            .build(),
        Err(ConfigError::NoAlgorithms)
    ));
    assert!(matches!(
        Verifier::builder()
            .hmac_secret(SECRET)
            .algorithms([Algorithm::RS256])
            .build(),
        Err(ConfigError::NoKeyForAlgorithm(Algorithm::RS256))
    ));
    let not_pem = Verifier::builder()
        .public_key_pem(b"hello")
        .build()
        .unwrap_err();
    assert!(matches!(
        not_pem,
        ConfigError::InvalidPublicKey { index: 0 }
    ));
    // A private key is not a public key.
    let private = Verifier::builder()
        .public_key_pem(fixture("ed25519_private.pem"))
        .build();
    assert!(private.is_err());
    // Messages never carry the secret.
    let secret_text = "x".repeat(20);
    let err = Verifier::builder()
        .hmac_secret(&secret_text)
        .build()
        .unwrap_err();
    assert!(!err.to_string().contains(&secret_text));
    assert!(!format!("{err:?}").contains(&secret_text));
    let builder = Verifier::builder().hmac_secret(SECRET);
    assert!(!format!("{builder:?}").contains("sockeye-test-secret"));
    assert!(!format!("{:?}", hs256_verifier()).contains("sockeye-test-secret"));
}

#[test]
fn mint_round_trip() {
    let verifier = Verifier::builder()
        .hmac_secret(SECRET)
        .algorithms([Algorithm::HS384])
        .issuer("sockeye-dev")
        .audience("sockeye")
        .build()
        .unwrap();
    let claims = MintClaims::new("dev-user", NOW + 600)
        .algorithm(Algorithm::HS384)
        .issued_at(NOW)
        .issuer("sockeye-dev")
        .audience("sockeye");
    let token = mint(SECRET, &claims).unwrap();
    let verified = verifier.verify(&token, now()).unwrap();
    assert_eq!(verified.sub(), Some("dev-user"));
    assert_eq!(verified.exp(), NOW + 600);
    assert_eq!(verified.get("iat"), Some(&json!(NOW)));
    assert_eq!(verified.as_map().len(), 5);

    assert_eq!(
        mint(&SECRET[..31], &claims).unwrap_err(),
        MintError::SecretTooShort { len: 31 }
    );
    let rs = MintClaims::new("x", 1).algorithm(Algorithm::RS256);
    assert_eq!(
        mint(SECRET, &rs).unwrap_err(),
        MintError::NotHmac(Algorithm::RS256)
    );
}

#[test]
fn verifier_is_shareable_and_reload_is_a_no_op_without_jwks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Verifier>();
    shareable::<sockeye_auth::Token>();
    shareable::<sockeye_auth::Claims>();
    let verifier = hs256_verifier();
    assert!(!verifier.reload_if_changed().unwrap());
    assert_eq!(verifier.jwks_key_counts(), None);
    let shown = format!("{verifier:?}");
    assert!(shown.contains("HS256"), "{shown}");
}
