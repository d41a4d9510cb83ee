//! Replays every committed corpus and regression file through its fuzz target, as an ordinary
//! test on stable: `cargo test --manifest-path fuzz/Cargo.toml`.
//!
//! Layout: `corpus/<target>/*` (seeds and minimized finds) and `regressions/<target>/*`
//! (inputs that once crashed; each also has its own test below).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use sockeye_fuzz::TARGETS;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(kind);
    let mut count = 0;
    for (name, target) in TARGETS {
        for file in files(&root.join(name)) {
            let data = fs::read(&file).unwrap();
            eprintln!("{}", file.display());
            target(&data);
            count += 1;
        }
    }
    count
}

#[test]
fn every_corpus_file_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, _) in TARGETS {
        assert!(
            !files(&root.join(name)).is_empty(),
            "no seeds for {name} in {}",
            root.display()
        );
    }
    assert!(replay("corpus") > 0);
}

#[test]
fn every_regression_file_passes_its_target() {
    replay("regressions");
}

#[test]
fn assembler_seed_format_round_trips() {
    use arbitrary::{Arbitrary, Unstructured};
    use sockeye_fuzz::{Op, Ops};
    let ops = Ops(vec![
        Op::Text("51-[\"a\",{\"_placeholder\":true,\"num\":0}]".to_owned()),
        Op::Binary(vec![1, 2, 3]),
    ]);
    let bytes = ops.to_bytes();
    assert_eq!(
        Ops::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap(),
        ops
    );
}

#[test]
fn auth_seeds_are_valid_tokens() {
    use std::time::{Duration, UNIX_EPOCH};

    use sockeye_auth::{Token, Verifier};
    use sockeye_fuzz::{AUTH_AUDIENCE, AUTH_ISSUER, AUTH_SECRET};
    let seed = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus/auth_token")
            .join(name);
        Token::new(&fs::read_to_string(path).unwrap()).unwrap()
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let hs256 = Verifier::builder()
        .hmac_secret(AUTH_SECRET)
        .build()
        .unwrap();
    assert_eq!(
        hs256.verify(&seed("hs256-valid"), now).unwrap().sub(),
        Some("alice")
    );
    let strict = Verifier::builder()
        .hmac_secret(AUTH_SECRET)
        .public_key_pem(include_bytes!(
            "../../crates/sockeye-auth/tests/fixtures/ed25519_public.pem"
        ))
        .issuer(AUTH_ISSUER)
        .audience(AUTH_AUDIENCE)
        .build()
        .unwrap();
    assert_eq!(
        strict.verify(&seed("eddsa-valid"), now).unwrap().sub(),
        Some("carol")
    );
    assert_eq!(
        strict
            .verify(&seed("hs256-iss-aud-nbf"), now)
            .unwrap()
            .sub(),
        Some("bob")
    );
    assert_eq!(
        strict
            .verify(&seed("eddsa-bad-aud"), now)
            .unwrap_err()
            .reason(),
        "bad_audience"
    );
    assert_eq!(
        hs256
            .verify(&seed("hs256-expired"), now)
            .unwrap_err()
            .reason(),
        "expired"
    );
}

/// The harness took a refused upgrade while the abandoned upgrade socket still owed its close
/// frame for a contract breach; the session refuses it on purpose (harness fix).
#[test]
fn regression_engine_session_upgrade_refused_while_aborted_socket_open() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions/engine_session/upgrade-refused-while-aborted-socket-open");
    sockeye_fuzz::engine_session(&fs::read(path).unwrap());
}

/// A POST body that fails to decode before its first packet does not read the clock, so the
/// timer may stay in the past; the harness had asserted otherwise (harness fix).
#[test]
fn regression_engine_session_post_body_decode_error_leaves_timer_past() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions/engine_session/post-body-decode-error-leaves-timer-past");
    sockeye_fuzz::engine_session(&fs::read(path).unwrap());
}

/// The input held a piece of a fixed error message (found by libFuzzer through the harness's
/// own `contains`); the harness now checks that messages are built from the crate's literals
/// and looks for token-shaped runs only (harness fix).
#[test]
fn regression_auth_token_message_text_in_input() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions/auth_token/message-text-in-input");
    sockeye_fuzz::auth_token(&fs::read(path).unwrap());
}
