//! Replays the fuzzers' crashers and seeds with `cargo test`, so a crash once found stays fixed.
//!
//! The checks are the fuzz targets' own (`fuzz/src/lib.rs`, included here), so this test and
//! `scripts/fuzz` exercise exactly the same code. Inputs live in `core/tests/crashers/<target>/`
//! (crashes found and fixed; `*.hex` files hold hex, others raw bytes) and `fuzz/seeds/<target>/`
//! (valid inputs the fuzzers start from). Every input runs through every target: a crasher of one
//! decoder must not crash another.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../fuzz/src/lib.rs"]
mod fuzz;

use std::path::{Path, PathBuf};

fn inputs(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for (target, _) in fuzz::TARGETS {
        let dir = root.join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if !path.is_file() {
                continue;
            }
            let raw = std::fs::read(&path).unwrap();
            let bytes = if path.extension().is_some_and(|e| e == "hex") {
                hex::decode(String::from_utf8(raw).unwrap().trim()).unwrap()
            } else {
                raw
            };
            out.push((path, bytes));
        }
    }
    out.sort();
    out
}

fn replay(root: &Path) -> usize {
    let inputs = inputs(root);
    for (path, bytes) in &inputs {
        for (target, check) in fuzz::TARGETS {
            let outcome = std::panic::catch_unwind(|| fuzz::fuzz_one(*check, bytes));
            assert!(
                outcome.is_ok(),
                "fuzz target {target} panics on {}",
                path.display()
            );
        }
    }
    inputs.len()
}

#[test]
fn crashers_found_by_fuzzing_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crashers");
    let n = replay(&root);
    assert!(n >= 1, "no crashers found under {}", root.display());
}

#[test]
fn fuzz_seeds_pass_every_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let n = replay(&root);
    assert!(
        n >= fuzz::TARGETS.len(),
        "expected seeds for every target under {}",
        root.display()
    );
}

/// Writes the seed corpus (valid inputs for every target) into `$FIELDCASE_FUZZ_SEEDS`; run by
/// hand when a format changes: `FIELDCASE_FUZZ_SEEDS=fuzz/seeds cargo test -p fieldcase-core
/// --test fuzz_regressions -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files; run by hand to regenerate fuzz/seeds"]
fn write_fuzz_seeds() {
    let Ok(root) = std::env::var("FIELDCASE_FUZZ_SEEDS") else {
        return;
    };
    seeds::write(Path::new(&root));
}

mod seeds {
    use std::path::Path;

    use automerge::ActorId;
    use ed25519_dalek::SigningKey;
    use fieldcase_core::crypto::{DataKey, KeySlot};
    use fieldcase_core::document::CaseDoc;
    use fieldcase_core::ids::{CaseId, DeviceId, UserId};
    use fieldcase_core::model::{Author, NewNote, NoteKind};
    use fieldcase_core::protocol::{
        ErrorBody, Lease, WipeOrder, WipeReceipt, enroll_request, sign_request,
    };
    use fieldcase_core::sync::{CaseChanges, PROTOCOL_VERSION, SyncRequest, SyncResponse};

    use super::fuzz;

    fn put(root: &Path, target: &str, name: &str, bytes: &[u8]) {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    pub(super) fn write(root: &Path) {
        let case = CaseId::from_uuid(fuzz::FUZZ_CASE);
        let base = fuzz::base_case();
        put(root, "case_doc_load", "case", base);

        // A phone's new note on the base case: the change chunks and the heads after them.
        let phone = ActorId::from(&[0x01_u8; 16][..]);
        let mut doc = CaseDoc::load(case, base, &phone).unwrap();
        let before = doc.heads();
        let author = Author {
            user: UserId::from_uuid(fuzz::FUZZ_USER),
            device: DeviceId::from_uuid(fuzz::FUZZ_DEVICE),
        };
        doc.add_note(
            author,
            &NewNote {
                kind: NoteKind::Call,
                body: "called the centre".into(),
                tags: vec![],
                task: None,
            },
            time::macros::datetime!(2026-11-24 10:00 UTC),
        )
        .unwrap();
        let changes = doc.changes_since(&before);
        put(root, "case_doc_apply", "note", &changes);
        put(root, "case_doc_load", "case-with-note", &doc.save());
        let upload = CaseChanges {
            case_id: case,
            changes,
            heads: doc.heads(),
        };
        let request = SyncRequest {
            version: PROTOCOL_VERSION,
            cursor: 3,
            uploads: vec![upload.clone()],
            purged: vec![CaseId::new()],
            ..SyncRequest::default()
        };
        let request = request.encode().unwrap();
        put(root, "sync_request", "upload", &request);
        put(root, "sync_hub", "upload", &request);

        let server = SigningKey::from_bytes(&fuzz::FUZZ_SERVER_KEY);
        let device = fuzz::FUZZ_DEVICE;
        let lease = Lease::sign(&server, device, 1_800_000_000);
        let response = SyncResponse {
            epoch: None,
            reset: false,
            attested: Vec::new(),
            version: PROTOCOL_VERSION,
            cursor: 9,
            more: false,
            accepted: vec![case],
            updates: vec![upload],
            purge: vec![CaseId::new()],
            lease: Some(lease.clone()),
            remaining: None,
        };
        put(root, "sync_response", "update", &response.encode().unwrap());

        let key = DataKey::from_bytes(zeroize::Zeroizing::new(fuzz::FUZZ_DATA_KEY));
        let mut sealed = vec![u8::try_from(fuzz::FUZZ_AAD.len()).unwrap()];
        sealed.extend(fieldcase_core::crypto::seal(&key, fuzz::FUZZ_AAD, b"visit note").unwrap());
        put(root, "sealed_blob", "record", &sealed);

        let keystore = KeySlot::for_keystore(&key, &fuzz::FUZZ_ROOT).unwrap();
        put(root, "age_header", "keystore", &keystore.wrapped);
        let passphrase = KeySlot::for_passphrase(&key, "correct horse", 10).unwrap();
        put(root, "age_header", "passphrase", &passphrase.wrapped);
        put(
            root,
            "age_header",
            "slot.json",
            &serde_json::to_vec(&keystore).unwrap(),
        );

        let order = WipeOrder::sign(&server, device, 1_800_000_000, "revoked");
        put(
            root,
            "statements",
            "wipe-order",
            &serde_json::to_vec(&order).unwrap(),
        );
        put(
            root,
            "statements",
            "lease",
            &serde_json::to_vec(&lease).unwrap(),
        );
        let receipt = WipeReceipt::sign(&server, device, 1_800_000_000, "panic");
        put(
            root,
            "statements",
            "wipe-receipt",
            &serde_json::to_vec(&receipt).unwrap(),
        );
        let refusal = ErrorBody {
            error: "device_revoked".into(),
            reason: "revoked".into(),
            wipe_order: Some(order),
        };
        put(
            root,
            "statements",
            "refusal",
            &serde_json::to_vec(&refusal).unwrap(),
        );

        let enroll = enroll_request("ABCD-EFGH-JKMN-PQRS", &server).unwrap();
        put(
            root,
            "enroll_auth",
            "enroll",
            &serde_json::to_vec(&enroll).unwrap(),
        );
        let headers = sign_request(
            &server,
            &device,
            "POST",
            "/v1/sync",
            1_800_000_000,
            &[7; 16],
            b"{}",
        );
        let lines = format!(
            "{}\n{}\n{}\n{}",
            device, headers.timestamp, headers.nonce, headers.signature
        );
        put(root, "enroll_auth", "headers", lines.as_bytes());
        put(root, "enroll_auth", "code", b"abcd efgh-jkmn-pqrs");
    }
}
