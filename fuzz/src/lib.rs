//! What each fuzz target feeds to fieldcase, and what it checks besides "no panic".
//!
//! One function per target, taking the raw bytes an attacker controls. The cargo-fuzz binaries in
//! `fuzz_targets/` call these, and `core/tests/fuzz_regressions.rs` includes this very file to
//! replay every saved crasher and seed with `cargo test`, so a fixed crash stays fixed.
//!
//! A function panics only on a real fault: a decoder panicking on hostile bytes, a decoded message
//! that does not survive its own encoding, or a guard (the age header prescan) letting through
//! what it must refuse.

use std::sync::{Once, OnceLock};

use automerge::ActorId;
use ed25519_dalek::SigningKey;
use fieldcase_core::CoreError;
use fieldcase_core::crypto::{DataKey, KeySlot, SlotKind};
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::{CaseId, DeviceId, UserId};
use fieldcase_core::model::{
    Author, ConsentStatus, NewCase, NewNote, NewTask, NoteKind, OfficeKind,
};
use fieldcase_core::protocol::{
    EnrollRequest, Lease, ParsedAuth, WipeOrder, WipeReceipt, normalize_enrollment_code,
    verify_enroll_request,
};
use fieldcase_core::sync::hub::{MemoryHub, handle_sync};
use fieldcase_core::sync::{SyncRequest, SyncResponse};
use uuid::Uuid;

/// What a target does with one input: returns normally, or panics on a real fault.
pub type Check = fn(&[u8]);

/// Every target, by name (the names of the cargo-fuzz binaries and of the corpus folders).
pub const TARGETS: &[(&str, Check)] = &[
    ("sync_request", sync_request),
    ("sync_response", sync_response),
    ("sync_hub", sync_hub),
    ("case_doc_load", case_doc_load),
    ("case_doc_apply", case_doc_apply),
    ("sealed_blob", sealed_blob),
    ("age_header", age_header),
    ("statements", statements),
    ("enroll_auth", enroll_auth),
];

/// Runs one target on one input, as the cargo-fuzz binaries do.
///
/// libfuzzer-sys aborts the process on every panic, even one that core catches and turns into
/// a typed error: automerge 0.12 panics on some malformed documents and changes, and core runs
/// those calls behind `catch_unwind` (DESIGN.md section 11). Left so, the fuzzer stops at the
/// first such input, which the product refuses without harm, and explores nothing past it. So
/// the first call puts a hook in front of libfuzzer-sys's: a panic inside core's guard unwinds
/// to it silently, any other panic still aborts and is reported as a crash.
pub fn fuzz_one(check: Check, data: &[u8]) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !fieldcase_core::document::panic_is_guarded() {
                abort(info);
            }
        }));
    });
    check(data);
}

/// The fixed case, user, device and actor of the documents the targets build.
pub const FUZZ_CASE: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
/// The user the fuzzed case is assigned to.
pub const FUZZ_USER: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
/// The device that uploads in `sync_hub`.
pub const FUZZ_DEVICE: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0003);
/// The keystore secret of the key slots in `age_header`.
pub const FUZZ_ROOT: [u8; 32] = [0x42; 32];
/// The data key of the sealed blobs in `sealed_blob`.
pub const FUZZ_DATA_KEY: [u8; 32] = [0x24; 32];
/// The seed of the server key that signs statements in `statements`.
pub const FUZZ_SERVER_KEY: [u8; 32] = [0x11; 32];
/// The associated data the `sealed_blob` target opens with.
pub const FUZZ_AAD: &[u8] = b"fuzz/case_docs/row";
/// Highest scrypt work factor the `age_header` target lets age run (a higher one is legal up to
/// the store's cap, but costs seconds per input and would stall the fuzzer).
pub const FUZZ_MAX_SCRYPT: u32 = 12;

fn actor() -> ActorId {
    ActorId::from(&[0xab_u8; 16][..])
}

fn author() -> Author {
    Author {
        user: UserId::from_uuid(FUZZ_USER),
        device: DeviceId::from_uuid(FUZZ_DEVICE),
    }
}

/// A small real case document (one task with a checklist, one note), saved; built once.
pub fn base_case() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let now = time::macros::datetime!(2026-11-24 09:00 UTC);
        let new = NewCase {
            client_code: "K-0142".into(),
            consent: ConsentStatus::Given,
            assigned_workers: vec![UserId::from_uuid(FUZZ_USER)],
        };
        let case = CaseId::from_uuid(FUZZ_CASE);
        let Ok(mut doc) = CaseDoc::create(case, &new, author(), &actor(), now) else {
            return Vec::new();
        };
        let task = NewTask {
            purpose: "ID card".into(),
            office_kind: OfficeKind::RegistryOffice,
            office_name: "Matična služba".into(),
            office_address: "Novi Sad".into(),
            scheduled_at: now,
            time_zone: "Europe/Belgrade".into(),
            assignees: vec![UserId::from_uuid(FUZZ_USER)],
            checklist: vec!["birth certificate".into()],
        };
        let task = doc.add_task(author(), &task, now).ok();
        let note = NewNote {
            kind: NoteKind::Visit,
            body: "visit at the centre".into(),
            tags: vec![],
            task,
        };
        let _ = doc.add_note(author(), &note, now);
        doc.save()
    })
}

/// Reads everything a phone or the office reads from a case document; none of it may panic.
fn read_all(doc: &mut CaseDoc) {
    let _ = doc.case();
    let _ = doc.notes();
    let _ = doc.tasks();
    let _ = doc.summary();
    let _ = doc.status();
    let _ = doc.conflicts();
    let _ = doc.change_authors();
    let heads = doc.heads();
    let _ = doc.has_all(&heads);
    let _ = doc.changes_since(&[]);
}

/// `SyncRequest::decode` (the server's view of a phone's upload); a decoded request survives
/// its own encoding.
pub fn sync_request(data: &[u8]) {
    if let Ok(request) = SyncRequest::decode(data)
        && let Ok(bytes) = request.encode()
    {
        assert_eq!(
            SyncRequest::decode(&bytes).as_ref(),
            Ok(&request),
            "a decoded sync request does not survive its own encoding"
        );
    }
}

/// `SyncResponse::decode` (the phone's view of the server's answer); a decoded response
/// survives its own encoding.
pub fn sync_response(data: &[u8]) {
    if let Ok(response) = SyncResponse::decode(data)
        && let Ok(bytes) = response.encode()
    {
        assert_eq!(
            SyncResponse::decode(&bytes).as_ref(),
            Ok(&response),
            "a decoded sync response does not survive its own encoding"
        );
    }
}

/// A decoded upload handled by the hub (`handle_sync` over `MemoryHub`, holding
/// [`base_case`] assigned to [`FUZZ_USER`]): the changes are applied behind `catch_unwind`.
pub fn sync_hub(data: &[u8]) {
    let Ok(request) = SyncRequest::decode(data) else {
        return;
    };
    let mut hub = MemoryHub::new();
    let case = CaseId::from_uuid(FUZZ_CASE);
    hub.put_case(case, base_case().to_vec(), &[UserId::from_uuid(FUZZ_USER)]);
    let result = handle_sync(
        &mut hub,
        DeviceId::from_uuid(FUZZ_DEVICE),
        UserId::from_uuid(FUZZ_USER),
        &request,
    );
    if result.is_ok()
        && let Some(bytes) = hub.case_bytes(case)
    {
        // What the hub stored must load again as a case document, and the hub's check of only
        // what the changes touched must have refused whatever the whole check refuses.
        let loaded = CaseDoc::load(case, bytes, &actor());
        assert!(loaded.is_ok(), "the hub stored a case it cannot load");
        if let Ok(doc) = loaded {
            assert!(
                doc.check_bounds().is_ok(),
                "the hub stored a case out of bounds"
            );
        }
    }
}

/// `CaseDoc::load` of stored or received bytes, then every read.
pub fn case_doc_load(data: &[u8]) {
    if let Ok(mut doc) = CaseDoc::load(CaseId::from_uuid(FUZZ_CASE), data, &actor()) {
        read_all(&mut doc);
        let saved = doc.save();
        assert!(
            CaseDoc::load(CaseId::from_uuid(FUZZ_CASE), &saved, &actor()).is_ok(),
            "a loaded case document does not load again once saved"
        );
    }
}

/// `CaseDoc::apply_encoded_changes` of received change chunks onto [`base_case`], then every
/// read.
pub fn case_doc_apply(data: &[u8]) {
    let Ok(mut doc) = CaseDoc::load(CaseId::from_uuid(FUZZ_CASE), base_case(), &actor()) else {
        return;
    };
    if doc.apply_encoded_changes(data).is_ok() {
        read_all(&mut doc);
    }
}

/// `crypto::open` of a sealed record: the first byte picks how much of the associated data to
/// bind, the rest is the record. Without the key, nothing may open.
pub fn sealed_blob(data: &[u8]) {
    let Some((&cut, sealed)) = data.split_first() else {
        return;
    };
    let aad = &FUZZ_AAD[..usize::from(cut) % (FUZZ_AAD.len() + 1)];
    let key = DataKey::from_bytes(zeroize::Zeroizing::new(FUZZ_DATA_KEY));
    let _ = fieldcase_core::crypto::open(&key, aad, sealed, "fuzzed record");
    let other = DataKey::from_bytes(zeroize::Zeroizing::new([0u8; 32]));
    assert!(
        fieldcase_core::crypto::open(&other, aad, sealed, "fuzzed record").is_err(),
        "a record opened under a key that never sealed it"
    );
}

/// The scrypt work factor named by the first scrypt stanza of an age header, if any.
fn scrypt_work_factor(data: &[u8]) -> Option<u32> {
    let at = data.windows(11).position(|w| w == b"\n-> scrypt ")?;
    let line = data[at + 11..].split(|&b| b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    text.split(' ').nth(1)?.parse().ok()
}

/// The header of an age file: everything up to its MAC line.
fn age_header_part(data: &[u8]) -> &[u8] {
    match data.windows(5).position(|w| w == b"\n--- ") {
        Some(end) => &data[..end + 1],
        None => data,
    }
}

/// Key slots (the data key wrapped with age): the header prescan, then age itself. Checks the
/// prescan's promises: a keystore slot with an scrypt stanza, a header of more than 64 stanzas
/// or one over 16 KiB never reaches age, so it is refused as corrupt.
pub fn age_header(data: &[u8]) {
    let keystore = KeySlot {
        kind: SlotKind::Keystore,
        wrapped: data.to_vec(),
        kit: None,
    };
    let opened = keystore.open_with_keystore(&FUZZ_ROOT);
    let header = age_header_part(data);
    let stanzas = header.windows(4).filter(|w| w == b"\n-> ").count();
    let refused_by_prescan = header.windows(11).any(|w| w == b"\n-> scrypt ")
        || stanzas > 64
        || header.len() > 16 * 1024;
    if refused_by_prescan {
        assert!(
            matches!(opened, Err(CoreError::Corrupt { .. })),
            "the age prescan let a hostile keystore slot through: {opened:?}"
        );
    }
    let identity = age::x25519::Identity::generate();
    let _ = keystore.open_with_identity(&identity);
    if scrypt_work_factor(data).is_none_or(|wf| wf <= FUZZ_MAX_SCRYPT) {
        let passphrase = KeySlot {
            kind: SlotKind::Passphrase,
            wrapped: data.to_vec(),
            kit: None,
        };
        let _ = passphrase.open_with_passphrase("correct horse");
        let _ = passphrase.open_secret(None, "correct horse");
    }
    if let Ok(slot) = serde_json::from_slice::<KeySlot>(data) {
        let _ = slot.open_with_keystore(&FUZZ_ROOT);
    }
}

/// Signed statements as JSON: wipe orders and leases (a phone reads them from the server),
/// wipe receipts (the server reads them from anyone). Verifying must not panic, and a statement
/// verifies only for the key and device it names.
pub fn statements(data: &[u8]) {
    let server = SigningKey::from_bytes(&FUZZ_SERVER_KEY).verifying_key();
    let device = Uuid::from_u128(FUZZ_DEVICE.as_u128());
    if let Ok(order) = serde_json::from_slice::<WipeOrder>(data) {
        let ok = order.verify(&server, &device);
        assert!(!ok || order.device_id == device);
    }
    if let Ok(lease) = serde_json::from_slice::<Lease>(data) {
        let ok = lease.verify(&server, &device);
        assert!(!ok || lease.device_id == device);
    }
    if let Ok(receipt) = serde_json::from_slice::<WipeReceipt>(data) {
        let _ = receipt.verify(&server);
    }
    if let Ok(body) = serde_json::from_slice::<fieldcase_core::protocol::ErrorBody>(data)
        && let Some(order) = body.wipe_order
    {
        let _ = order.verify(&server, &device);
    }
}

/// The server's unauthenticated inputs besides sync: the enrollment body (JSON, its code, key
/// and proof), the four signed-request headers (one per line), and ids in admin API paths.
pub fn enroll_auth(data: &[u8]) {
    if let Ok(request) = serde_json::from_slice::<EnrollRequest>(data) {
        let _ = verify_enroll_request(&request);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = normalize_enrollment_code(text) {
        assert_eq!(
            code.len(),
            fieldcase_core::protocol::ENROLLMENT_CODE_SYMBOLS
        );
    }
    let mut lines = text.split('\n');
    let (device, timestamp, nonce, signature) = (
        lines.next().unwrap_or(""),
        lines.next().unwrap_or(""),
        lines.next().unwrap_or(""),
        lines.next().unwrap_or(""),
    );
    if let Ok(parsed) = ParsedAuth::parse(device, timestamp, nonce, signature) {
        let _ = parsed.timestamp_fresh(i64::MAX);
        let _ = parsed.timestamp_fresh(i64::MIN);
        let key = SigningKey::from_bytes(&FUZZ_SERVER_KEY).verifying_key();
        let _ = parsed.verify(&key, "POST", nonce, data);
    }
    let _ = Uuid::try_parse(text);
}
