//! Runs the catalogue of bad inputs (`tests/bad-inputs.toml`) against a real server over TLS.
//!
//! For every case: the answer has the expected status and typed error code (or the server cuts a
//! slow client off), the server's data is unchanged (every row of users, enrollment codes,
//! devices, cases, assignments, sync state, purge receipts, quarantine and the audit log; only the
//! replay-protection nonces may grow), and a good phone of another user syncs right after (during,
//! for the slow clients). At the end that phone's notes are all on the server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ReadDoc};
use ed25519_dalek::SigningKey;
use fieldcase_core::ids::CaseId;
use fieldcase_core::protocol::{ErrorBody, Role, WipeReceipt, enroll_request};
use fieldcase_core::sync::{CaseChanges, PROTOCOL_VERSION, SyncRequest, SyncResponse};
use fieldcase_core::transport::{Client, DeviceClient, DeviceCredential, RawRequest};
use fieldcase_tests::rawhttp::{RawAnswer, RawConnection, request};
use fieldcase_tests::{TestDevice, TestServer, deflate_bomb, raw_device};
use serde::Deserialize;

const SYNC: &str = "/v1/sync";
/// Timeouts of the test server, short so that the slow-client cases stay short.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a slow client may keep the server busy before the test calls it "not cut off".
const SLOW_DEADLINE: Duration = Duration::from_secs(12);

#[derive(Debug, Deserialize)]
struct Catalogue {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default = "post")]
    method: String,
    #[serde(default = "sync_path")]
    path: String,
    #[serde(default = "device")]
    auth: String,
    header: Option<[String; 2]>,
    body: String,
    status: Option<u16>,
    error: Option<String>,
    slow: Option<String>,
    #[serde(default)]
    closed: bool,
}

fn post() -> String {
    "POST".into()
}
fn sync_path() -> String {
    SYNC.into()
}
fn device() -> String {
    "device".into()
}

/// Everything the test sets up: the server, the attacker's phone and case, an admin, and the
/// good phone of another user.
struct World {
    server: TestServer,
    attacker: DeviceClient,
    admin: DeviceClient,
    revoked: DeviceClient,
    case: CaseId,
    other_case: CaseId,
    /// The attacker's case as the server sent it (a saved automerge document).
    case_doc: Vec<u8>,
    good: TestDevice,
    good_notes: Vec<String>,
}

fn setup() -> World {
    let server = TestServer::start_with_limits(fieldcase_server::ManualClock::new(), |l| {
        l.request_timeout = REQUEST_TIMEOUT;
        l.first_request_timeout = HEADER_TIMEOUT;
        l.header_read_timeout = HEADER_TIMEOUT;
        // The catalogue holds many failed enrollments from one address on purpose, and many
        // requests of one device.
        l.enroll_failures_per_window = 10_000;
        l.device_burst = 10_000;
    });
    let ana = server.add_user("ana", Role::FieldWorker);
    let bea = server.add_user("bea", Role::FieldWorker);
    let adm = server.add_user("adm", Role::Admin);
    // The admin signed in on the web just now, so that the admin API's changes reach the
    // inputs under test.
    server.sign_in_on_the_web(adm);
    let (case, _) = server.create_case("K-1", &[ana]);
    let (other_case, _) = server.create_case("K-2", &[bea]);
    let attacker = raw_device(&server, "ana");
    let admin = raw_device(&server, "adm");
    let revoked = raw_device(&server, "ana");
    server.revoke(fieldcase_core::ids::DeviceId::from_uuid(
        revoked.credential().device_id,
    ));
    // The attacker syncs once, legitimately, and so holds its case.
    let answer = attacker.post(SYNC, &sync_body(vec![], vec![])).unwrap();
    let response = SyncResponse::decode(&answer).unwrap();
    let case_doc = response
        .updates
        .iter()
        .find(|u| u.case_id == case)
        .unwrap()
        .changes
        .clone();
    let good = TestDevice::enroll_direct(&server, "bea");
    good.device.sync_now().unwrap();
    World {
        server,
        attacker,
        admin,
        revoked,
        case,
        other_case,
        case_doc,
        good,
        good_notes: Vec::new(),
    }
}

/// Every row of the tables that hold the server's data, as text. The good phone's own rows are
/// left out (it syncs between and, for slow clients, during the cases); request nonces too (an
/// authenticated request that is then refused still uses up its nonce, by design).
fn snapshot(world: &World) -> Vec<String> {
    let good = world.good.id().to_string();
    world.server.with_db(|conn| {
        let mut out = Vec::new();
        for table in [
            "users",
            "enrollment_codes",
            "devices",
            "audit_log",
            "cases",
            "case_seq",
            "case_assignments",
            "device_case_state",
            "purge_receipts",
            "quarantine",
            "server_meta",
        ] {
            let mut stmt = conn.prepare(&format!("SELECT * FROM {table}"))?;
            let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let mut line = format!("{table}:");
                let mut mine = false;
                for (i, name) in names.iter().enumerate() {
                    let value = format!("{:?}", row.get_ref(i)?);
                    if ((name == "id" && table == "devices") || name == "device_id")
                        && value.contains(&good)
                    {
                        mine = true;
                    }
                    line.push_str(&value);
                    line.push('|');
                }
                if !mine {
                    out.push(line);
                }
            }
        }
        out.sort();
        Ok(out)
    })
}

fn decode_value(spec: &str) -> Vec<u8> {
    if let Some(text) = spec.strip_prefix("text:") {
        text.as_bytes().to_vec()
    } else if let Some(h) = spec.strip_prefix("hex:") {
        hex::decode(h).unwrap()
    } else {
        panic!("bad value spec {spec}")
    }
}

fn sync_body(uploads: Vec<CaseChanges>, purged: Vec<CaseId>) -> Vec<u8> {
    SyncRequest {
        version: PROTOCOL_VERSION,
        cursor: 0,
        uploads,
        purged,
        ..SyncRequest::default()
    }
    .encode()
    .unwrap()
}

/// One upload as [`raw_sync`] writes it: id bytes, heads, the change length it declares, and the
/// change bytes that follow.
struct RawUpload<'a>(&'a [u8], Vec<[u8; 32]>, usize, &'a [u8]);

/// A sync request (this protocol version) written byte by byte, without the encoder's checks, so that it can
/// say what the encoder never would: ids of any length, more heads or cases than allowed, lengths
/// past the end.
fn raw_sync(uploads: &[RawUpload], purged: &[&[u8]]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = b"FCSY".to_vec();
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out.push(1); // a request
    varint(&mut out, 0); // cursor
    varint(&mut out, uploads.len() as u64);
    for RawUpload(id, heads, declared, changes) in uploads {
        out.extend_from_slice(id);
        varint(&mut out, heads.len() as u64);
        for h in heads {
            out.extend_from_slice(h);
        }
        varint(&mut out, *declared as u64);
        out.extend_from_slice(changes);
    }
    varint(&mut out, purged.len() as u64);
    for id in purged {
        out.extend_from_slice(id);
    }
    out.push(0); // no office epoch yet
    varint(&mut out, 0); // no attested heads
    out
}

/// 16 bytes of text, as a case id on the wire: a path or SQL where an id belongs.
fn text_id(text: &str) -> [u8; 16] {
    let mut id = [0u8; 16];
    let n = text.len().min(16);
    id[..n].copy_from_slice(&text.as_bytes()[..n]);
    id
}

/// The attacker's case document, ready to be edited as another replica.
fn replica(world: &World) -> AutoCommit {
    let mut doc = AutoCommit::load(&world.case_doc).unwrap();
    doc.set_actor(automerge::ActorId::random());
    doc
}

/// An upload of the changes made by `edit` to the attacker's case, with the heads after them.
fn upload_of(world: &World, edit: impl FnOnce(&mut AutoCommit)) -> CaseChanges {
    let mut doc = replica(world);
    let before = doc.get_heads();
    edit(&mut doc);
    CaseChanges {
        case_id: world.case,
        changes: doc.save_after(&before),
        heads: doc.get_heads(),
    }
}

/// The attacker's own user and device ids, as the office registered them.
fn attacker_ids(world: &World) -> (String, String) {
    let device = world.attacker.credential().device_id.to_string();
    let user: String = world.server.with_sql(|c| {
        c.query_row(
            "SELECT user_id FROM devices WHERE id = ?1",
            fieldcase_server::sql_params![&device],
        )?
        .get(0)
    });
    (user, device)
}

/// Like [`upload_of`], from a replica registered to the attacker's own device (as its phone's
/// store registers itself), so that what is refused is the edit, not an unknown author.
fn registered_upload_of(
    world: &World,
    edit: impl FnOnce(&mut AutoCommit, &str, &str),
) -> CaseChanges {
    let (user, device) = attacker_ids(world);
    upload_of(world, |doc| {
        let actor = doc.get_actor().to_hex_string();
        let authors = doc.get(automerge::ROOT, "authors").unwrap().unwrap().1;
        let entry = doc.put_object(&authors, actor, ObjType::Map).unwrap();
        doc.put(&entry, "user", user.as_str()).unwrap();
        doc.put(&entry, "device", device.as_str()).unwrap();
        edit(doc, &user, &device);
    })
}

/// A complete note by `(user, device)` written at `at`.
fn put_note(doc: &mut AutoCommit, user: &str, device: &str, at: &str) {
    let notes = doc.get(automerge::ROOT, "notes").unwrap().unwrap().1;
    let note = doc
        .put_object(&notes, uuid::Uuid::now_v7().to_string(), ObjType::Map)
        .unwrap();
    doc.put(&note, "author_user", user).unwrap();
    doc.put(&note, "author_device", device).unwrap();
    doc.put(&note, "written_at", at).unwrap();
    doc.put(&note, "kind", "visit").unwrap();
    let body = doc.put_object(&note, "body", ObjType::Text).unwrap();
    doc.splice_text(&body, 0, 0, "a note").unwrap();
    doc.put_object(&note, "tags", ObjType::Map).unwrap();
}

fn note_change(world: &World) -> CaseChanges {
    upload_of(world, |doc| {
        let notes = doc.get(automerge::ROOT, "notes").unwrap().unwrap().1;
        let note = doc
            .put_object(&notes, uuid::Uuid::now_v7().to_string(), ObjType::Map)
            .unwrap();
        doc.put(&note, "kind", "visit").unwrap();
        doc.put(&note, "body", "an ordinary note").unwrap();
    })
}

fn enroll_body(code: &str, key: &SigningKey) -> Vec<u8> {
    serde_json::to_vec(&enroll_request(code, key).unwrap()).unwrap()
}

fn random_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

/// Bodies the catalogue names `gen:NAME`. May set up state first (a used or expired code).
fn generate(world: &World, name: &str) -> Vec<u8> {
    let upload = |c: CaseChanges| sync_body(vec![c], vec![]);
    let raw = |changes: Vec<u8>, heads| {
        upload(CaseChanges {
            case_id: world.case,
            changes,
            heads,
        })
    };
    match name {
        "sync_truncated" => {
            let full = upload(note_change(world));
            full[..full.len() / 2].to_vec()
        }
        "sync_invalid_utf8" => {
            let mut body = br#"{"version":1,"cursor":0,"uploads":[{"case_id":"X","changes":"","heads":[]}]}"#.to_vec();
            let at = body.iter().position(|&b| b == b'X').unwrap();
            body.splice(at..=at, [0xc3, 0x28, 0xff]);
            body
        }
        "sync_too_many_heads" => raw_sync(
            &[RawUpload(world.case.as_bytes(), vec![[7; 32]; 65], 0, &[])],
            &[],
        ),
        "sync_too_many_cases" => {
            let ids: Vec<CaseId> = (0..5001).map(|_| CaseId::new()).collect();
            let ids: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes().as_slice()).collect();
            raw_sync(&[], &ids)
        }
        "sync_changes_past_end" => {
            raw_sync(&[RawUpload(world.case.as_bytes(), vec![], 1000, b"0123456789")], &[])
        }
        "sync_head_cut_short" => {
            let mut body = raw_sync(&[RawUpload(world.case.as_bytes(), vec![[7; 32]], 0, &[])], &[]);
            // drop 12 bytes of the head, keeping the change length and the purge count after it
            let end = body.len() - 2;
            body.drain(end - 12..end);
            body
        }
        "sync_id_path_bytes" => raw_sync(&[RawUpload(&text_id("../../server.db"), vec![], 0, &[])], &[]),
        "sync_id_sql_bytes" => raw_sync(&[RawUpload(&text_id("x' OR '1'='1"), vec![], 0, &[])], &[]),
        "sync_purged_sql_bytes" => raw_sync(&[], &[&text_id("'; DROP TABLE c")]),
        "sync_id_short" => raw_sync(&[RawUpload(b"42", vec![], 0, &[])], &[]),
        "sync_duplicate_upload" => {
            let c = note_change(world);
            sync_body(vec![c.clone(), c], vec![])
        }
        "upload_note" => upload(note_change(world)),
        // With a head to reach, so that the hub hands the bytes to automerge.
        "upload_crasher" => raw(
            hex::decode("856f4a836f4a833a0326000000012301230200000030830000d726856f4bffffffffffff01ffffff0700000000000000").unwrap(),
            vec![automerge::ChangeHash([9; 32])],
        ),
        // 186 bytes that automerge 0.12 parses into more than 20 GB (a bundle chunk; found by
        // fuzzing `case_doc_load`).
        "upload_bundle_bomb" => raw(
            hex::decode(include_str!("../../core/tests/crashers/case_doc_load/automerge-0.12-bundle-oom-fuzzed.hex").trim()).unwrap(),
            vec![automerge::ChangeHash([9; 32])],
        ),
        // A compressed change chunk whose 256 KB inflate to 256 MiB.
        "upload_deflate_bomb" => raw(deflate_bomb(256), vec![automerge::ChangeHash([9; 32])]),
        "upload_random" => {
            let mut bytes = vec![0u8; 4096];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
            raw(bytes, vec![])
        }
        "upload_truncated_change" => {
            let c = note_change(world);
            let cut = c.changes[..c.changes.len() / 2].to_vec();
            raw(cut, c.heads)
        }
        "upload_missing_change" => raw(vec![], vec![automerge::ChangeHash([9; 32])]),
        "upload_deep_nesting" => upload(upload_of(world, |doc| {
            let mut obj = doc
                .put_object(automerge::ROOT, "x", ObjType::Map)
                .unwrap();
            for _ in 0..1000 {
                obj = doc.put_object(&obj, "x", ObjType::Map).unwrap();
            }
        })),
        "upload_huge_text" => upload(upload_of(world, |doc| {
            let notes = doc.get(automerge::ROOT, "notes").unwrap().unwrap().1;
            let note = doc
                .put_object(&notes, uuid::Uuid::now_v7().to_string(), ObjType::Map)
                .unwrap();
            doc.put(&note, "kind", "visit").unwrap();
            doc.put(&note, "body", "x".repeat(1024 * 1024)).unwrap();
        })),
        "upload_broken_layout" => upload(upload_of(world, |doc| {
            doc.put(automerge::ROOT, "notes", "gone").unwrap();
        })),
        // A complete note dated at the end of the year 9999: converted to any time zone east of
        // UTC it overflows (the office's pages once panicked on it).
        "upload_far_future_note" => upload(upload_of(world, |doc| {
            let notes = doc.get(automerge::ROOT, "notes").unwrap().unwrap().1;
            let note = doc
                .put_object(&notes, uuid::Uuid::now_v7().to_string(), ObjType::Map)
                .unwrap();
            doc.put(&note, "author_user", uuid::Uuid::now_v7().to_string()).unwrap();
            doc.put(&note, "author_device", uuid::Uuid::now_v7().to_string()).unwrap();
            doc.put(&note, "written_at", "9999-12-31T23:30:00Z").unwrap();
            doc.put(&note, "kind", "visit").unwrap();
            let body = doc.put_object(&note, "body", ObjType::Text).unwrap();
            doc.splice_text(&body, 0, 0, "dated at the end of time").unwrap();
            doc.put_object(&note, "tags", ObjType::Map).unwrap();
        })),
        // From the attacker's own registered device: a note in a colleague's name, and one
        // dated tomorrow.
        "upload_note_in_colleagues_name" => upload(registered_upload_of(world, |doc, _, device| {
            let colleague = uuid::Uuid::new_v4().to_string();
            put_note(doc, &colleague, device, "2026-11-24T10:00:00Z");
        })),
        "upload_note_from_tomorrow" => upload(registered_upload_of(world, |doc, user, device| {
            let tomorrow = time::OffsetDateTime::now_utc() + time::Duration::days(1);
            let at = tomorrow
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            put_note(doc, user, device, &at);
        })),
        "upload_note_registered_elsewhere" => upload(upload_of(world, |doc| {
            let (user, device) = attacker_ids(world);
            let actor = doc.get_actor().to_hex_string();
            let authors = doc.get(automerge::ROOT, "authors").unwrap().unwrap().1;
            let entry = doc.put_object(&authors, actor, ObjType::Map).unwrap();
            doc.put(&entry, "user", user.as_str()).unwrap();
            doc.put(&entry, "device", uuid::Uuid::new_v4().to_string()).unwrap();
            put_note(doc, &user, &device, "2026-11-24T10:00:00Z");
        })),
        // The case's own opening time moved before 1900.
        "upload_ancient_case" => upload(upload_of(world, |doc| {
            doc.put(automerge::ROOT, "created_at", "1899-12-31T23:00:00Z").unwrap();
        })),
        "upload_wrong_schema" => upload(upload_of(world, |doc| {
            doc.put(automerge::ROOT, "schema", 99_i64).unwrap();
        })),
        "enroll_forged" => enroll_body("ABCD-EFGH-JKMN-PQRS", &random_key()),
        "enroll_used" => {
            let code = world.server.enrollment_code("ana");
            fieldcase_core::transport::enroll(
                &world.server.running().url(),
                world.server.fingerprint(),
                &code,
                &random_key(),
            )
            .unwrap();
            enroll_body(&code, &random_key())
        }
        "enroll_expired" => {
            let now = world.server.running().state.now();
            let code = world
                .server
                .running()
                .state
                .db()
                .write(|sql| fieldcase_server::office::enrollment::issue_enrollment_code(sql, "ana", 60, now - 3600))
                .unwrap()
                .code;
            enroll_body(&code, &random_key())
        }
        "enroll_bad_key" => {
            let mut request = enroll_request("ABCD-EFGH-JKMN-PQRS", &random_key()).unwrap();
            request.device_public_key = "not a key; DROP TABLE devices".into();
            serde_json::to_vec(&request).unwrap()
        }
        "enroll_wrong_proof" => {
            let mut request = enroll_request("ABCD-EFGH-JKMN-PQRS", &random_key()).unwrap();
            request.proof = enroll_request("ABCD-EFGH-JKMN-PQRS", &random_key())
                .unwrap()
                .proof;
            serde_json::to_vec(&request).unwrap()
        }
        "enroll_long_code" => {
            let mut request = enroll_request("ABCD-EFGH-JKMN-PQRS", &random_key()).unwrap();
            request.code = "A".repeat(3_000);
            serde_json::to_vec(&request).unwrap()
        }
        "receipt_unknown_device" => serde_json::to_vec(&WipeReceipt::sign(
            &random_key(),
            uuid::Uuid::now_v7(),
            0,
            "panic",
        ))
        .unwrap(),
        "receipt_forged" => serde_json::to_vec(&WipeReceipt::sign(
            &random_key(),
            world.attacker.credential().device_id,
            0,
            "panic",
        ))
        .unwrap(),
        other => panic!("unknown generator {other}"),
    }
}

fn body_of(world: &World, spec: &str) -> Vec<u8> {
    let placeholders = |text: &str| {
        text.replace("{CASE}", &world.case.to_string())
            .replace("{OTHER_CASE}", &world.other_case.to_string())
            .replace(
                "{DEVICE}",
                &world.attacker.credential().device_id.to_string(),
            )
    };
    if let Some(text) = spec.strip_prefix("text:") {
        placeholders(text).into_bytes()
    } else if spec.starts_with("hex:") {
        decode_value(spec)
    } else if let Some(rest) = spec.strip_prefix("repeat:") {
        let (c, n) = rest.split_once(':').unwrap();
        c.repeat(n.parse().unwrap()).into_bytes()
    } else if let Some(n) = spec.strip_prefix("nested:") {
        let n: usize = n.parse().unwrap();
        let mut body = "[".repeat(n);
        body.push_str(&"]".repeat(n));
        body.into_bytes()
    } else if let Some(name) = spec.strip_prefix("gen:") {
        generate(world, name)
    } else {
        panic!("bad body spec {spec}")
    }
}

/// The request's bytes on the wire, signed as the case says. May send something first (the
/// original of a replayed request).
fn wire_request(world: &World, case: &Case, body: &[u8]) -> Vec<u8> {
    let path = case.path.replace(
        "{DEVICE}",
        &world.attacker.credential().device_id.to_string(),
    );
    let signed = |client: &DeviceClient, body: &[u8]| -> RawRequest {
        client.signed_request_now(&case.method, &path, body)
    };
    let mut req = match case.auth.as_str() {
        "none" => RawRequest {
            method: case.method.clone(),
            path: path.clone(),
            headers: vec![],
            body: body.to_vec(),
        },
        "device" => signed(&world.attacker, body),
        "admin" => signed(&world.admin, body),
        "revoked_device" => signed(&world.revoked, body),
        "unknown_device" => {
            let stranger = DeviceClient::new(
                Client::new(&world.server.running().url(), world.server.fingerprint()).unwrap(),
                DeviceCredential::new(uuid::Uuid::now_v7(), random_key()),
            );
            signed(&stranger, body)
        }
        "forged_signature" => {
            let forger = DeviceClient::new(
                Client::new(&world.server.running().url(), world.server.fingerprint()).unwrap(),
                DeviceCredential::new(world.attacker.credential().device_id, random_key()),
            );
            signed(&forger, body)
        }
        "stale_timestamp" => {
            let mut nonce = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
            let then = world.server.running().state.now() - 600;
            world
                .attacker
                .signed_request(&case.method, &path, body, then, &nonce)
        }
        "tampered_body" => {
            let mut req = signed(&world.attacker, body);
            req.body.push(b' ');
            req
        }
        "replayed" => {
            let req = signed(&world.attacker, body);
            let first = world.attacker.client().send(&req).unwrap();
            assert_eq!(first.status, 200, "the original of a replayed request");
            req
        }
        other => panic!("unknown auth {other}"),
    };
    let mut headers: Vec<(String, Vec<u8>)> = req
        .headers
        .drain(..)
        .map(|(n, v)| (n, v.into_bytes()))
        .collect();
    if let Some([name, value]) = &case.header {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.clone(), decode_value(value)));
    }
    let headers: Vec<(&str, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    request(&req.method, &req.path, &headers, &req.body)
}

fn connect(world: &World) -> RawConnection {
    RawConnection::connect(world.server.addr(), world.server.fingerprint())
}

/// Sends one case's request and checks its answer; returns a description of what came back.
fn run_case(world: &World, case: &Case, wire: &[u8]) -> String {
    let answer = match case.slow.as_deref() {
        None => {
            let mut conn = connect(world);
            // A refused request may be answered before all of it was sent.
            conn.send(wire);
            conn.read_answer(Duration::from_secs(30))
        }
        Some(kind) => slow_client(world, kind, wire),
    };
    let got = match &answer {
        // A sync the server answered: what it accepted of the uploads.
        RawAnswer::Response { status: 200, body } if case.path == SYNC => {
            let response = SyncResponse::decode(body).unwrap();
            let accepted = if response.accepted.is_empty() {
                "nothing_accepted"
            } else {
                "accepted"
            };
            format!("200 {accepted}")
        }
        RawAnswer::Response { status, body } => {
            let code = serde_json::from_slice::<ErrorBody>(body)
                .map(|e| {
                    assert!(
                        !e.reason.is_empty(),
                        "{}: an error without a reason",
                        case.name
                    );
                    e.error
                })
                .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
            format!("{status} {code}")
        }
        RawAnswer::Closed => "closed".to_owned(),
    };
    let want = if case.closed {
        "closed".to_owned()
    } else {
        format!(
            "{} {}",
            case.status.expect("status"),
            case.error.as_deref().expect("error")
        )
    };
    assert_eq!(got, want, "case {:?}", case.name);
    got
}

/// Trickles a request one byte a second while the good phone syncs; the server must cut it off.
fn slow_client(world: &World, kind: &str, wire: &[u8]) -> RawAnswer {
    let mut conn = connect(world);
    let started = Instant::now();
    let trickled = match kind {
        "headers" => wire.to_vec(),
        "body" => {
            let head_end = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            conn.write(&wire[..head_end]).unwrap();
            wire[head_end..].to_vec()
        }
        "next_request" => {
            conn.write(&request("GET", "/healthz", &[], b"")).unwrap();
            match conn.read_answer(Duration::from_secs(10)) {
                RawAnswer::Response { status: 200, .. } => {}
                other => panic!("healthz on a fresh connection: {other:?}"),
            }
            wire.to_vec()
        }
        other => panic!("unknown slow kind {other}"),
    };
    // The slow client trickles on its own thread; the good phone syncs meanwhile on this one.
    let trickler = std::thread::spawn(move || {
        let result = conn.trickle(&trickled, Duration::from_secs(1), SLOW_DEADLINE);
        (conn, trickled.len(), result)
    });
    std::thread::sleep(Duration::from_millis(500));
    world
        .good
        .device
        .sync_now()
        .expect("the good phone syncs while a slow client trickles");
    let (mut conn, total, (sent, took)) = trickler.join().unwrap();
    assert!(
        sent < total,
        "the slow client sent all {total} bytes in {took:?}: it was never cut off"
    );
    assert!(
        started.elapsed() < SLOW_DEADLINE,
        "the slow client held the server for {:?}",
        started.elapsed()
    );
    conn.read_answer(Duration::from_secs(5))
}

#[test]
fn every_bad_input_gets_a_clear_error_and_changes_nothing() {
    let catalogue: Catalogue = toml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bad-inputs.toml")).unwrap(),
    )
    .unwrap();
    assert!(catalogue.case.len() >= 50);
    let mut world = setup();
    let mut tried = 0;
    for (i, case) in catalogue.case.iter().enumerate() {
        if i % 8 == 0 {
            let body = format!("good note {i}");
            world.good.write_note(world.other_case, &body);
            world.good_notes.push(body);
            world.good.device.sync_now().unwrap();
        }
        // Prepared state (a used code, a replayed original) is made before the snapshot.
        let body = body_of(&world, &case.body);
        let wire = wire_request(&world, case, &body);
        let before = snapshot(&world);
        let got = run_case(&world, case, &wire);
        let after = snapshot(&world);
        assert_eq!(
            before, after,
            "case {:?} (answered {got}) changed the server's data",
            case.name
        );
        world
            .good
            .device
            .sync_now()
            .unwrap_or_else(|e| panic!("the good phone fails after {:?}: {e}", case.name));
        tried += 1;
    }
    let notes: Vec<String> = world
        .server
        .case(world.other_case)
        .notes
        .into_iter()
        .map(|n| n.body)
        .collect();
    for body in &world.good_notes {
        assert!(notes.contains(body), "the good phone's {body:?} is missing");
    }
    println!("bad inputs tried: {tried}, all refused with their typed error, nothing changed");
}
