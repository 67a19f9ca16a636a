//! Bad sync requests over real TLS: each gets a clear 4xx with a reason and changes no case data
//! and no sync state on the server. A bad upload from one phone does not affect another.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ed25519_dalek::SigningKey;
use fieldcase_core::ids::CaseId;
use fieldcase_core::protocol::{ErrorBody, Role};
use fieldcase_core::sync::{CaseChanges, PROTOCOL_VERSION, SyncRequest};
use fieldcase_core::transport::{
    Client, DeviceClient, DeviceCredential, RawRequest, TransportError,
};
use fieldcase_tests::{TestDevice, TestServer, raw_device};

const SYNC: &str = "/v1/sync";

/// Registers a raw replica's actor as `device` of `user`, as a phone's store does with its own
/// edits: the hub takes changes only from actors registered to the device that uploads them.
fn register(
    doc: &mut automerge::AutoCommit,
    user: fieldcase_core::ids::UserId,
    device: uuid::Uuid,
) {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    let actor = doc.get_actor().to_hex_string();
    let authors = doc.get(automerge::ROOT, "authors").unwrap().unwrap().1;
    let entry = doc
        .put_object(&authors, actor, automerge::ObjType::Map)
        .unwrap();
    doc.put(&entry, "user", user.to_string()).unwrap();
    doc.put(&entry, "device", device.to_string()).unwrap();
}

/// Case rows (id, change counter, sealed document) and device sync state rows.
type DataState = (Vec<(String, i64, Vec<u8>)>, Vec<(String, String, String)>);

/// Case documents with their change counters, and every device's sync state.
fn data_state(server: &TestServer) -> DataState {
    server.with_sql(|sql| {
        let mut cases = Vec::new();
        for r in sql.query_all("SELECT id, seq, doc FROM cases ORDER BY id", &[])? {
            cases.push((r.get(0)?, r.get(1)?, r.get(2)?));
        }
        let mut states = Vec::new();
        for r in sql.query_all(
            "SELECT device_id, case_id, confirmed FROM device_case_state ORDER BY 1, 2",
            &[],
        )? {
            states.push((r.get(0)?, r.get(1)?, r.get(2)?));
        }
        Ok((cases, states))
    })
}

fn refused(result: Result<Vec<u8>, TransportError>) -> (u16, String, String) {
    match result {
        Err(TransportError::Http {
            status,
            code,
            reason,
            ..
        }) => (status, code, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn upload(case: CaseId, changes: Vec<u8>) -> SyncRequest {
    SyncRequest {
        version: PROTOCOL_VERSION,
        cursor: 0,
        uploads: vec![CaseChanges {
            case_id: case,
            changes,
            heads: vec![],
        }],
        purged: vec![],
        ..SyncRequest::default()
    }
}

#[test]
fn bad_sync_requests_get_a_clear_4xx_and_change_nothing() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-1", &[ana]);
    let phone = raw_device(&server, "ana");
    phone
        .post(SYNC, &SyncRequest::default().encode().unwrap())
        .unwrap();
    let before = data_state(&server);

    // Unauthenticated.
    let unsigned = RawRequest {
        method: "POST".into(),
        path: SYNC.into(),
        headers: vec![],
        body: b"{}".to_vec(),
    };
    let answer = phone.client().send(&unsigned).unwrap();
    assert_eq!(answer.status, 401);
    let body: ErrorBody = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body.error, "missing_auth");
    assert!(!body.reason.is_empty());

    // Malformed body, unknown version, oversized body.
    let (status, code, reason) = refused(phone.post(SYNC, b"this is not a sync message"));
    assert_eq!(
        (status, code.as_str()),
        (400, "malformed_request"),
        "{reason}"
    );
    let newer = SyncRequest {
        version: PROTOCOL_VERSION + 1,
        cursor: 0,
        uploads: vec![],
        purged: vec![],
        ..SyncRequest::default()
    }
    .encode()
    .unwrap();
    let (status, code, reason) = refused(phone.post(SYNC, &newer));
    assert_eq!(
        (status, code.as_str()),
        (400, "unsupported_protocol_version")
    );
    assert!(
        reason.contains(&(PROTOCOL_VERSION + 1).to_string()),
        "{reason}"
    );
    // A phone still speaking version 1 (JSON) is told so, not "malformed".
    let old = br#"{"version":1,"cursor":0,"uploads":[]}"#;
    let (status, code, reason) = refused(phone.post(SYNC, old));
    assert_eq!(
        (status, code.as_str()),
        (400, "unsupported_protocol_version")
    );
    assert!(reason.contains("version 1 "), "{reason}");
    let huge = vec![b' '; fieldcase_core::protocol::MAX_SYNC_BODY + 1];
    let (status, code, _) = refused(phone.post(SYNC, &huge));
    assert_eq!((status, code.as_str()), (413, "body_too_large"));

    // Changes that are not automerge (the crasher that panics automerge 0.12).
    let crasher = hex::decode("856f4a836f4a833a0326000000012301230200000030830000d726856f4bffffffffffff01ffffff0700000000000000").unwrap();
    let (status, code, reason) =
        refused(phone.post(SYNC, &upload(case, crasher).encode().unwrap()));
    assert_eq!((status, code.as_str()), (422, "bad_changes"), "{reason}");
    assert_eq!(
        data_state(&server),
        before,
        "a refused request changed data"
    );

    // An unenrolled device: a key the server never saw.
    let stranger = DeviceClient::new(
        Client::new(&format!("https://{}", server.addr()), server.fingerprint()).unwrap(),
        DeviceCredential::new(
            uuid::Uuid::now_v7(),
            SigningKey::generate(&mut rand::rngs::OsRng),
        ),
    );
    let (status, code, _) = refused(stranger.post(SYNC, &SyncRequest::default().encode().unwrap()));
    assert_eq!((status, code.as_str()), (401, "unknown_device"));
    assert_eq!(data_state(&server), before);

    // The server still serves a good phone of the same user.
    let good = TestDevice::enroll_direct(&server, "ana");
    good.device.sync_now().unwrap();
    assert_eq!(good.case(case).client_code, "K-1");
}

#[test]
fn a_replayed_sync_request_is_refused_and_changes_nothing() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-2", &[ana]);
    // A phone of ana's, speaking raw: it takes the case, writes a note into it as itself,
    // sends the signed upload once, then the same request again.
    let raw = raw_device(&server, "ana");
    let empty = SyncRequest::default();
    let received = fieldcase_core::sync::SyncResponse::decode(
        &raw.post(SYNC, &empty.encode().unwrap()).unwrap(),
    )
    .unwrap()
    .updates;
    let mut doc = automerge::AutoCommit::load(&received[0].changes).unwrap();
    let before = doc.get_heads();
    let device = raw.credential().device_id;
    register(&mut doc, ana, device);
    {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let notes = doc.get(automerge::ROOT, "notes").unwrap().unwrap().1;
        let note = doc
            .put_object(
                &notes,
                uuid::Uuid::now_v7().to_string(),
                automerge::ObjType::Map,
            )
            .unwrap();
        doc.put(&note, "author_user", ana.to_string()).unwrap();
        doc.put(&note, "author_device", device.to_string()).unwrap();
        doc.put(&note, "written_at", "2026-11-24T10:00:00Z")
            .unwrap();
        doc.put(&note, "kind", "visit").unwrap();
        let body = doc
            .put_object(&note, "body", automerge::ObjType::Text)
            .unwrap();
        doc.splice_text(&body, 0, 0, "a note to upload").unwrap();
        doc.put_object(&note, "tags", automerge::ObjType::Map)
            .unwrap();
    }
    let body = SyncRequest {
        version: PROTOCOL_VERSION,
        cursor: 0,
        uploads: vec![CaseChanges {
            case_id: case,
            changes: doc.save_after(&before),
            heads: doc.get_heads(),
        }],
        purged: vec![],
        ..SyncRequest::default()
    }
    .encode()
    .unwrap();
    let request = raw.signed_request_now("POST", SYNC, &body);
    assert_eq!(raw.client().send(&request).unwrap().status, 200);
    let after_first = data_state(&server);
    assert_eq!(server.case(case).notes.len(), 1);
    let replay = raw.client().send(&request).unwrap();
    assert_eq!(replay.status, 401);
    assert_eq!(replay.error_body().unwrap().error, "replayed_request");
    assert_eq!(data_state(&server), after_first);
}

/// The sync endpoint records a request's nonce in its own transaction; a sync the office
/// refuses rolls that back, yet its nonce is spent all the same: the same signed request sent
/// again is refused as a replay, not judged a second time.
#[test]
fn a_refused_sync_spends_its_nonce_and_the_same_request_again_is_a_replay() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-3", &[ana]);
    let raw = raw_device(&server, "ana");
    // An upload of changes to the case that do not apply (garbage): refused.
    let body = SyncRequest {
        version: PROTOCOL_VERSION,
        cursor: 0,
        uploads: vec![CaseChanges {
            case_id: case,
            changes: vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3],
            heads: vec![],
        }],
        purged: vec![],
        ..SyncRequest::default()
    }
    .encode()
    .unwrap();
    let request = raw.signed_request_now("POST", SYNC, &body);
    let first = raw.client().send(&request).unwrap();
    assert!(
        (400..500).contains(&first.status) && first.status != 401,
        "refused on its content: {}",
        first.status
    );
    let before = data_state(&server);
    let again = raw.client().send(&request).unwrap();
    assert_eq!(again.status, 401);
    assert_eq!(again.error_body().unwrap().error, "replayed_request");
    assert_eq!(data_state(&server), before);
}

/// A first upload of several whole documents (which the server loads and checks side by side)
/// with one hostile document last: the whole request is refused and no case is changed, not
/// even those before it; without that document the same cases are all stored.
#[test]
fn a_hostile_document_among_many_refuses_the_request_and_changes_no_case() {
    use fieldcase_core::sync::SyncResponse;
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let cases: Vec<CaseId> = (0..5)
        .map(|i| server.create_case(&format!("K-{i}"), &[ana]).0)
        .collect();
    let phone = raw_device(&server, "ana");
    let empty = SyncRequest::default();
    let received = SyncResponse::decode(&phone.post(SYNC, &empty.encode().unwrap()).unwrap())
        .unwrap()
        .updates;
    assert_eq!(received.len(), cases.len());
    let uploads = |hostile: bool| -> Vec<CaseChanges> {
        received
            .iter()
            .enumerate()
            .map(|(i, update)| {
                let mut doc = automerge::AutoCommit::load(&update.changes).unwrap();
                register(&mut doc, ana, phone.credential().device_id);
                let code = match hostile && i == received.len() - 1 {
                    true => "x".repeat(fieldcase_core::document::MAX_TEXT_BYTES + 1),
                    false => format!("K-{i}-checked"),
                };
                automerge::transaction::Transactable::put(
                    &mut doc,
                    automerge::ROOT,
                    "client_code",
                    code,
                )
                .unwrap();
                CaseChanges {
                    case_id: update.case_id,
                    heads: doc.get_heads(),
                    changes: doc.save(),
                }
            })
            .collect()
    };
    let request = |uploads| SyncRequest {
        version: PROTOCOL_VERSION,
        cursor: 0,
        uploads,
        purged: vec![],
        ..SyncRequest::default()
    };
    let before = data_state(&server);
    let (status, code, reason) =
        refused(phone.post(SYNC, &request(uploads(true)).encode().unwrap()));
    assert_eq!((status, code.as_str()), (422, "bad_changes"), "{reason}");
    assert_eq!(
        data_state(&server),
        before,
        "a refused request changed cases"
    );

    phone
        .post(SYNC, &request(uploads(false)).encode().unwrap())
        .unwrap();
    for (i, case) in received.iter().enumerate() {
        assert_eq!(
            server.case(case.case_id).client_code,
            format!("K-{i}-checked")
        );
    }
}

#[test]
fn a_phone_that_never_purges_an_unassigned_case_writes_to_it_for_the_grace_only() {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ReadDoc};
    use fieldcase_core::sync::SyncResponse;
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-GRACE", &[ana]);
    let phone = raw_device(&server, "ana");
    let device = phone.credential().device_id;
    let sync = |request: &SyncRequest| {
        SyncResponse::decode(&phone.post(SYNC, &request.encode().unwrap()).unwrap()).unwrap()
    };
    let first = sync(&SyncRequest::default());
    let mut doc = AutoCommit::load(&first.updates[0].changes).unwrap();
    register(&mut doc, ana, device);
    // A note on a replica that never purges, uploaded with the phone's cursor.
    let write = |doc: &mut AutoCommit, body: &str, cursor: u64| {
        let notes = doc.get(automerge::ROOT, "notes").unwrap().unwrap().1;
        let note = doc
            .put_object(&notes, uuid::Uuid::now_v7().to_string(), ObjType::Map)
            .unwrap();
        doc.put(&note, "author_user", ana.to_string()).unwrap();
        doc.put(&note, "author_device", device.to_string()).unwrap();
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        doc.put(&note, "written_at", now).unwrap();
        doc.put(&note, "kind", "visit").unwrap();
        let text = doc.put_object(&note, "body", ObjType::Text).unwrap();
        doc.splice_text(&text, 0, 0, body).unwrap();
        doc.put_object(&note, "tags", ObjType::Map).unwrap();
        let mut request = upload(case, doc.save());
        request.uploads[0].heads = doc.get_heads();
        request.cursor = cursor;
        sync(&request)
    };
    // The office takes the case from her: what she wrote before still arrives, with the order.
    server.unassign(case, ana);
    let answer = write(&mut doc, "written before the order", first.cursor);
    assert_eq!(answer.accepted, vec![case]);
    assert_eq!(answer.purge, vec![case]);
    assert_eq!(server.case(case).notes.len(), 1);
    // Her phone never purges. Once the grace is over (an hour, moved back here), it writes no
    // more, though it never sent a receipt.
    server.with_sql(|sql| {
        sql.execute(
            "UPDATE device_case_state SET purge_ordered_at = purge_ordered_at - ?1",
            fieldcase_server::sql_params![fieldcase_core::sync::hub::PURGE_GRACE_SECS + 1],
        )
    });
    let answer = write(&mut doc, "written after the order", answer.cursor);
    assert!(answer.accepted.is_empty());
    assert_eq!(answer.purge, vec![case]);
    let notes = server.case(case).notes;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].body, "written before the order");
}

/// A case shared by ana and bojan holding one note of bojan's, at the office; ana's raw device,
/// which can send whatever bytes it likes; and the case's document as the office sent it to her.
struct ColleaguesNote {
    server: TestServer,
    case: CaseId,
    ana: fieldcase_core::ids::UserId,
    raw: DeviceClient,
    office: automerge::AutoCommit,
}

impl ColleaguesNote {
    fn new(client_code: &str) -> ColleaguesNote {
        let server = TestServer::start();
        let ana = server.add_user("ana", Role::FieldWorker);
        let bojan = server.add_user("bojan", Role::FieldWorker);
        let (case, _) = server.create_case(client_code, &[ana, bojan]);
        let colleague = TestDevice::enroll_direct(&server, "bojan");
        colleague.device.sync_now().unwrap();
        colleague.write_note(case, "bojan's note, at the office");
        colleague.device.sync_now().unwrap();
        let raw = raw_device(&server, "ana");
        let received = fieldcase_core::sync::SyncResponse::decode(
            &raw.post(SYNC, &SyncRequest::default().encode().unwrap())
                .unwrap(),
        )
        .unwrap()
        .updates;
        let office = automerge::AutoCommit::load(&received[0].changes).unwrap();
        ColleaguesNote {
            server,
            case,
            ana,
            raw,
            office,
        }
    }

    /// A replica of the office's document whose actor is registered to ana's raw device.
    fn anas_replica(&mut self) -> automerge::AutoCommit {
        let mut doc = self.office.fork();
        register(&mut doc, self.ana, self.raw.credential().device_id);
        doc
    }

    /// Sends `changes` leading to `doc`'s heads; the answer's status.
    fn upload(&self, doc: &mut automerge::AutoCommit, changes: Vec<u8>) -> u16 {
        let body = SyncRequest {
            uploads: vec![CaseChanges {
                case_id: self.case,
                changes,
                heads: doc.get_heads(),
            }],
            ..upload(self.case, vec![])
        }
        .encode()
        .unwrap();
        self.raw
            .client()
            .send(&self.raw.signed_request_now("POST", SYNC, &body))
            .unwrap()
            .status
    }

    /// The notes map of `doc`, the key of bojan's note and the note.
    fn bojans_note(doc: &automerge::AutoCommit) -> (automerge::ObjId, String, automerge::ObjId) {
        use automerge::ReadDoc;
        let notes = doc.get(automerge::ROOT, "notes").unwrap().unwrap().1;
        let key = doc.keys(&notes).next().unwrap();
        let note = doc.get(&notes, key.as_str()).unwrap().unwrap().1;
        (notes, key, note)
    }

    /// Bojan's note stays at the office as he wrote it, and the case holds nothing else.
    fn assert_note_kept(&self) {
        let notes = self.server.case(self.case).notes;
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].body, "bojan's note, at the office");
    }
}

/// The hub keeps what it read of a case after checking an upload and starts the next check of
/// the same case from it: an upload that deletes a colleague's note, right after one of the
/// same phone's was taken, is refused all the same, and the note stays.
#[test]
fn an_upload_deleting_a_note_right_after_an_accepted_one_is_still_refused() {
    use automerge::transaction::Transactable;
    let mut fixture = ColleaguesNote::new("K-4");
    // An accepted upload of the phone's own: the actor registered, nothing else.
    let before = fixture.office.get_heads();
    let mut doc = fixture.anas_replica();
    let changes = doc.save_after(&before);
    assert_eq!(fixture.upload(&mut doc, changes), 200);
    // Then, from there, bojan's note deleted.
    let before = doc.get_heads();
    let (notes, victim, _) = ColleaguesNote::bojans_note(&doc);
    doc.delete(&notes, victim.as_str()).unwrap();
    let changes = doc.save_after(&before);
    assert_eq!(fixture.upload(&mut doc, changes), 422);
    fixture.assert_note_kept();
}

/// A phone may send a case as its whole saved document rather than its new changes (the hub
/// then keeps those bytes as they came): such a document is checked note by note all the same.
/// Rewriting a colleague's note without naming oneself its editor, or leaving it out, is
/// refused and the note stays as written; the same document with only the phone's own
/// registration is taken.
#[test]
fn a_whole_document_that_rewrites_or_drops_a_colleagues_note_is_refused() {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    let mut fixture = ColleaguesNote::new("K-5");

    let mut rewritten = fixture.anas_replica();
    let (_, _, note) = ColleaguesNote::bojans_note(&rewritten);
    let body = rewritten.get(&note, "body").unwrap().unwrap().1;
    rewritten.splice_text(&body, 0, 5, "ana's").unwrap();
    let whole = rewritten.save();
    assert_eq!(fixture.upload(&mut rewritten, whole), 422);

    let mut dropped = fixture.anas_replica();
    let (notes, key, _) = ColleaguesNote::bojans_note(&dropped);
    dropped.delete(&notes, key.as_str()).unwrap();
    let whole = dropped.save();
    assert_eq!(fixture.upload(&mut dropped, whole), 422);
    fixture.assert_note_kept();

    let mut own = fixture.anas_replica();
    let whole = own.save();
    assert_eq!(fixture.upload(&mut own, whole), 200);
    fixture.assert_note_kept();
}
