//! Attachments end to end over real TLS on 127.0.0.1: a photo taken with GPS tags is sealed on
//! the phone without them, travels in chunks on its own requests after the notes, resumes where
//! a cut left it, reaches the office once per content and a colleague's phone only when asked;
//! and every bad chunk a phone could send is refused with its code, storing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fieldcase_core::ActorId;
use fieldcase_core::CoreError;
use fieldcase_core::device::PATH_SYNC;
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::{AttachmentId, CaseId, DeviceId};
use fieldcase_core::model::{AttachmentRef, Author, ContentHash, Limits, MediaType, NewAttachment};
use fieldcase_core::protocol::{
    CHUNKS_IN_FLIGHT, ChunkAck, Role, attachment_chunk_path, attachment_path, error_code,
};
use fieldcase_core::store::AttachmentState;
use fieldcase_core::sync::{CaseChanges, SyncRequest, SyncResponse};
use fieldcase_core::transfer::TransferOptions;
use fieldcase_core::transport::TransportError;
use fieldcase_tests::photo::{self, GPS_RATIONALS, METADATA_MARKERS};
use fieldcase_tests::{TestDevice, TestServer};

fn labelled(label: &str, media_type: MediaType) -> NewAttachment {
    NewAttachment {
        label: label.into(),
        media_type,
        note: None,
        task: None,
    }
}

fn all_files_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn http_code(e: &TransportError) -> &str {
    match e {
        TransportError::Http { code, .. } => code,
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[test]
fn a_photo_with_gps_tags_reaches_the_office_and_a_colleague_without_them() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let bojan = server.add_user("bojan", Role::FieldWorker);
    let (case, _) = server.create_case("K-0142", &[ana, bojan]);
    let a = TestDevice::enroll_direct(&server, "ana");
    let b = TestDevice::enroll_direct(&server, "bojan");
    a.device.sync_now().unwrap();
    b.device.sync_now().unwrap();

    // A summons photographed at the police station: 640x480 with GPS, make and place tags.
    let taken = photo::jpeg_with_gps(640, 480, 1);
    for marker in METADATA_MARKERS {
        assert!(
            photo::contains(&taken, marker),
            "the test photo lacks {marker:?}"
        );
    }
    let store = a.device.store();
    let added = store
        .attach(
            case,
            &labelled("Summons, 12 March", MediaType::Jpeg),
            taken.clone(),
        )
        .unwrap();
    let kept = store.open_attachment(case, added.id).unwrap();
    for marker in METADATA_MARKERS {
        assert!(!photo::contains(&kept, marker), "{marker:?} survived");
    }
    assert!(!photo::contains(&kept, &GPS_RATIONALS));
    assert_eq!(photo::dimensions(&kept), Some((640, 480)));
    assert!(kept.len() < taken.len());
    assert_eq!(added.size, kept.len() as u64);
    // Sealed at rest: no file of the phone holds the image's bytes or its label.
    let disk = all_files_bytes(a.path());
    assert!(!photo::contains(
        &disk,
        &kept[kept.len() / 2..kept.len() / 2 + 64]
    ));
    assert!(!photo::contains(&disk, b"Summons, 12 March"));
    let listed = store.attachments(case).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, AttachmentState::OnlyHere);
    assert_eq!(listed[0].reference, added);

    // The reference travels with case sync, the bytes on their own.
    a.device.sync_now().unwrap();
    let at_office = server.attachments(case);
    assert_eq!(at_office.len(), 1);
    assert!(!at_office[0].complete);
    let report = a
        .device
        .sync_attachments(TransferOptions::default())
        .unwrap();
    assert_eq!(report.uploads_completed, 1);
    assert_eq!(report.chunks_sent, added.chunk_count());
    assert_eq!(
        store.attachments(case).unwrap()[0].state,
        AttachmentState::AtOffice
    );
    assert!(server.attachments(case)[0].complete);
    // Nothing left: a second run sends nothing.
    let again = a
        .device
        .sync_attachments(TransferOptions::default())
        .unwrap();
    assert_eq!((again.chunks_sent, again.uploads_completed), (0, 0));

    // The colleague's phone learns of it but downloads nothing until asked.
    b.device.sync_now().unwrap();
    let theirs = b.device.store().attachments(case).unwrap();
    assert_eq!(theirs[0].state, AttachmentState::NotDownloaded);
    assert_eq!(theirs[0].reference, added);
    let idle = b
        .device
        .sync_attachments(TransferOptions::default())
        .unwrap();
    assert_eq!(idle.chunks_received, 0);
    assert!(matches!(
        b.device.store().open_attachment(case, added.id),
        Err(CoreError::NotDownloaded)
    ));
    b.device.store().request_download(case, added.id).unwrap();
    let fetched = b
        .device
        .sync_attachments(TransferOptions::default())
        .unwrap();
    assert_eq!(fetched.downloads_completed, 1);
    let opened = b.device.store().open_attachment(case, added.id).unwrap();
    assert_eq!(*opened, *kept);
    assert_eq!(
        b.device.store().attachments(case).unwrap()[0].state,
        AttachmentState::AtOffice
    );

    // Removed by its author: gone from the case on every replica; a colleague may not remove it.
    assert!(matches!(
        b.device.store().remove_attachment(case, added.id),
        Err(CoreError::NotYours)
    ));
    store.remove_attachment(case, added.id).unwrap();
    assert!(store.attachments(case).unwrap().is_empty());
    a.device.sync_now().unwrap();
    b.device.sync_now().unwrap();
    assert!(server.attachments(case).is_empty());
    assert!(b.device.store().attachments(case).unwrap().is_empty());
}

#[test]
fn an_upload_cut_short_resumes_from_the_last_chunk_the_office_acknowledged() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-0142", &[ana]);
    let a = TestDevice::enroll_direct(&server, "ana");
    a.device.sync_now().unwrap();
    // About 1.3 MB of noise: six chunks.
    let big = photo::plain_jpeg(1400, 1000, 7);
    let added = a
        .device
        .store()
        .attach(case, &labelled("Medical report", MediaType::Jpeg), big)
        .unwrap();
    let total = added.chunk_count();
    assert!(total >= 4, "{total} chunks");
    a.device.sync_now().unwrap();
    let cut = a
        .device
        .sync_attachments(TransferOptions {
            max_chunks: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert!(cut.budget_spent);
    assert_eq!(cut.left, 1);
    assert_eq!(
        a.device.store().attachments(case).unwrap()[0].state,
        AttachmentState::Uploading { acked: 2, total }
    );
    // A chunk that went ahead of a gap (its neighbour's connection was cut) is kept, named in
    // the acknowledgement, and not sent again.
    let ahead = a.device.store().attachment_chunk(added.id, 3).unwrap();
    let client = a.device.client().unwrap();
    let answer: ChunkAck = serde_json::from_slice(
        &client
            .put(&attachment_chunk_path(case, added.id, 3), &ahead)
            .unwrap(),
    )
    .unwrap();
    assert_eq!((answer.acked, answer.ahead.clone()), (2, vec![3]));
    let rest = a
        .device
        .sync_attachments(TransferOptions::default())
        .unwrap();
    assert_eq!(
        rest.chunks_sent,
        total - 3,
        "nothing the office holds is sent again"
    );
    assert!(server.attachments(case)[0].complete);

    // The same content attached again (another case, another label) is stored once: the
    // office already holds it, so nothing is sent.
    let (other, _) = server.create_case("K-0143", &[ana]);
    a.device.sync_now().unwrap();
    let bytes = a
        .device
        .store()
        .open_attachment(case, added.id)
        .unwrap()
        .to_vec();
    a.device
        .store()
        .attach(
            other,
            &labelled("Medical report, copy", MediaType::Jpeg),
            bytes,
        )
        .unwrap();
    a.device.sync_now().unwrap();
    let copy = a
        .device
        .sync_attachments(TransferOptions::default())
        .unwrap();
    assert_eq!((copy.chunks_sent, copy.uploads_completed), (0, 1));
    assert!(server.attachments(other)[0].complete);
    let blobs: i64 = server
        .with_db(|db| db.query_row("SELECT COUNT(*) FROM attachment_blobs", [], |r| r.get(0)));
    assert_eq!(blobs, 1);
}

#[test]
fn notes_sync_while_an_attachment_waits_and_bad_attachments_change_nothing() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-0142", &[ana]);
    let a = TestDevice::enroll_direct(&server, "ana");
    a.device.sync_now().unwrap();
    let store = a.device.store();
    store
        .attach(
            case,
            &labelled("Receipt", MediaType::Jpeg),
            photo::plain_jpeg(64, 64, 1),
        )
        .unwrap();
    let note = a.write_note(case, "Bus ticket reimbursed.");
    // A notes sync carries the note and the reference; it sends no attachment bytes.
    a.device.sync_now().unwrap();
    assert!(server.case(case).notes.iter().any(|n| n.id == note));
    assert!(!server.attachments(case)[0].complete);

    let before = store.attachments(case).unwrap();
    let png = photo::plain_jpeg(8, 8, 2);
    // A lying media type, a label with path characters, an empty file, one over the cap, a
    // HEIC (whose metadata cannot be removed here): each refused, nothing stored.
    let refusals: Vec<(NewAttachment, Vec<u8>)> = vec![
        (labelled("lie", MediaType::Png), png.clone()),
        (
            labelled("lie", MediaType::Pdf),
            b"<html>not a pdf</html>".to_vec(),
        ),
        (labelled("../../etc/passwd", MediaType::Jpeg), png.clone()),
        (labelled("empty", MediaType::Jpeg), Vec::new()),
        (
            labelled("huge", MediaType::Jpeg),
            vec![0xFF; Limits::ATTACHMENT_MAX as usize + 1],
        ),
        (
            labelled("heic", MediaType::Jpeg),
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec(),
        ),
    ];
    for (new, bytes) in refusals {
        let label = new.label.clone();
        let err = store.attach(case, &new, bytes).unwrap_err();
        assert!(matches!(err, CoreError::Invalid(_)), "{label}: {err:?}");
    }
    assert!(matches!(
        store.attach(CaseId::new(), &labelled("x", MediaType::Jpeg), png.clone()),
        Err(CoreError::CaseNotFound)
    ));
    assert_eq!(store.attachments(case).unwrap(), before);
    assert!(store.pending_changes().unwrap().is_empty());
}

/// What a phone could send on the attachment channel, each answered with its code and storing
/// nothing: the catalogue runs against the real server with real signed requests.
#[test]
fn every_bad_chunk_is_refused_with_its_code_and_stores_nothing() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let bea = server.add_user("bea", Role::FieldWorker);
    let (case, _) = server.create_case("K-1", &[ana, bea]);
    let (beas_case, _) = server.create_case("K-2", &[bea]);
    let a = TestDevice::enroll_direct(&server, "ana");
    let b = TestDevice::enroll_direct(&server, "bea");
    a.device.sync_now().unwrap();
    b.device.sync_now().unwrap();
    let bytes = photo::plain_jpeg(1600, 1200, 3);
    let added: AttachmentRef = a
        .device
        .store()
        .attach(case, &labelled("Decision", MediaType::Jpeg), bytes)
        .unwrap();
    assert!(added.chunk_count() > CHUNKS_IN_FLIGHT);
    a.device.sync_now().unwrap();
    let ana_client = a.device.client().unwrap();
    let bea_client = b.device.client().unwrap();
    let chunk = vec![7u8; Limits::ATTACHMENT_CHUNK];
    let path = |idx| attachment_chunk_path(case, added.id, idx);

    let refused = |result: Result<Vec<u8>, TransportError>, code: &str, why: &str| {
        let err = result.expect_err(why);
        assert_eq!(http_code(&err), code, "{why}");
    };
    refused(
        ana_client.put(&path(CHUNKS_IN_FLIGHT), &chunk),
        error_code::CHUNK_OUT_OF_ORDER,
        "further ahead than a phone keeps in flight",
    );
    refused(
        ana_client.put(&path(added.chunk_count()), &chunk),
        error_code::CHUNK_REFUSED,
        "past the end",
    );
    refused(
        ana_client.put(&path(0), &chunk[..100]),
        error_code::CHUNK_REFUSED,
        "short chunk",
    );
    refused(
        ana_client.put(&path(0), &vec![7u8; Limits::ATTACHMENT_CHUNK + 1]),
        error_code::BODY_TOO_LARGE,
        "chunk over the limit",
    );
    refused(
        ana_client.put(&attachment_chunk_path(case, AttachmentId::new(), 0), &chunk),
        error_code::ATTACHMENT_NOT_FOUND,
        "unknown attachment",
    );
    refused(
        ana_client.put(&attachment_chunk_path(beas_case, added.id, 0), &chunk),
        error_code::NOT_ASSIGNED,
        "another worker's case",
    );
    refused(
        bea_client.put(&path(0), &chunk),
        error_code::CHUNK_REFUSED,
        "a colleague uploading someone else's attachment",
    );
    refused(
        bea_client.get(&path(0)),
        error_code::ATTACHMENT_NOT_AT_OFFICE,
        "download before the office holds it",
    );
    refused(
        ana_client.get(&attachment_chunk_path(beas_case, added.id, 0)),
        error_code::NOT_ASSIGNED,
        "download from another worker's case",
    );
    let status: ChunkAck =
        serde_json::from_slice(&ana_client.get(&attachment_path(case, added.id)).unwrap()).unwrap();
    assert_eq!(
        (status.acked, status.complete),
        (0, false),
        "nothing was stored"
    );

    // Garbage of the right sizes: every chunk taken in order, then the whole fails its hash,
    // all of it is dropped, and the phone's own upload then goes through from the first chunk.
    let total = added.chunk_count();
    for idx in 0..total {
        let len = if idx + 1 == total {
            (added.size - u64::from(idx) * Limits::ATTACHMENT_CHUNK as u64) as usize
        } else {
            Limits::ATTACHMENT_CHUNK
        };
        let answer = ana_client.put(&path(idx), &vec![1u8; len]);
        if idx + 1 == total {
            refused(answer, error_code::ATTACHMENT_HASH_MISMATCH, "wrong hash");
        } else {
            answer.unwrap();
        }
    }
    let status: ChunkAck =
        serde_json::from_slice(&ana_client.get(&attachment_path(case, added.id)).unwrap()).unwrap();
    assert_eq!(
        (status.acked, status.complete),
        (0, false),
        "the bad chunks were dropped"
    );
    let chunks: i64 = server.with_db(|db| {
        db.query_row("SELECT COUNT(*) FROM attachment_blob_chunks", [], |r| {
            r.get(0)
        })
    });
    assert_eq!(chunks, 0);
    let report = a
        .device
        .sync_attachments(TransferOptions::default())
        .unwrap();
    assert_eq!(report.uploads_completed, 1);
    assert!(server.attachments(case)[0].complete);

    // A modified phone that skips the cleaning, or names another kind of file: it may record
    // such references, but the office keeps neither file.
    let tampered = fieldcase_tests::raw_device(&server, "ana");
    let sync = |request: &SyncRequest| {
        SyncResponse::decode(
            &tampered
                .post(PATH_SYNC, &request.encode().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    let first = sync(&SyncRequest::default());
    let update = first.updates.iter().find(|u| u.case_id == case).unwrap();
    let mut doc = CaseDoc::load(case, &update.changes, &ActorId::random()).unwrap();
    let author = Author {
        user: ana,
        device: DeviceId::from_uuid(tampered.credential().device_id),
    };
    let now = time::OffsetDateTime::now_utc();
    let with_gps = photo::jpeg_with_gps(300, 200, 8);
    let cleaned = photo::plain_jpeg(300, 200, 8);
    let forged: Vec<(AttachmentRef, Vec<u8>)> =
        [(MediaType::Jpeg, with_gps), (MediaType::Png, cleaned)]
            .into_iter()
            .map(|(media_type, bytes)| {
                let reference = AttachmentRef {
                    id: AttachmentId::new(),
                    hash: ContentHash::of(&bytes),
                    size: bytes.len() as u64,
                    media_type,
                    label: "forged".into(),
                    author,
                    added_at: now,
                    note: None,
                    task: None,
                };
                doc.add_attachment(&reference, now).unwrap();
                (reference, bytes)
            })
            .collect();
    let answer = sync(&SyncRequest {
        cursor: first.cursor,
        epoch: first.epoch,
        uploads: vec![CaseChanges {
            case_id: case,
            changes: doc.save(),
            heads: doc.heads(),
        }],
        ..SyncRequest::default()
    });
    assert_eq!(answer.accepted, vec![case]);
    for (reference, bytes) in &forged {
        let total = reference.chunk_count();
        for (idx, chunk) in bytes.chunks(Limits::ATTACHMENT_CHUNK).enumerate() {
            let idx = idx as u32;
            let answer = tampered.put(&attachment_chunk_path(case, reference.id, idx), chunk);
            if idx + 1 == total {
                refused(
                    answer,
                    error_code::ATTACHMENT_REFUSED,
                    &reference.media_type.to_string(),
                );
            } else {
                answer.unwrap();
            }
        }
        let status: ChunkAck =
            serde_json::from_slice(&tampered.get(&attachment_path(case, reference.id)).unwrap())
                .unwrap();
        assert_eq!((status.acked, status.complete), (0, false));
    }

    // A revoked phone reaches nothing.
    server.revoke(b.id());
    let err = bea_client.get(&path(0)).unwrap_err();
    assert_eq!(http_code(&err), error_code::DEVICE_REVOKED);
}

/// A request to the office's web pages with a session cookie; status and body.
fn web(
    server: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let client =
        fieldcase_core::transport::Client::new(&server.running().url(), server.fingerprint())
            .unwrap();
    let mut headers = vec![(
        "cookie".to_owned(),
        format!(
            "{}={token}",
            fieldcase_server::http::web::auth::SESSION_COOKIE
        ),
    )];
    if let Some(kind) = content_type {
        headers.push(("content-type".to_owned(), kind.to_owned()));
    }
    let answer = client
        .send(&fieldcase_core::transport::RawRequest {
            method: method.into(),
            path: path.into(),
            headers,
            body,
        })
        .unwrap();
    (answer.status, answer.body)
}

/// The attach form as a browser sends it.
fn attach_form(csrf: &str, label: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "fieldcase-test-boundary-7d1";
    let mut body = Vec::new();
    for (name, value) in [("csrf", csrf.as_bytes()), ("label", label.as_bytes())] {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.jpg\"\r\n\
             Content-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A PNG that says it is 11,000 x 11,000 pixels of RGBA (about 480 MB decoded) in a few dozen
/// bytes: a decompression bomb.
fn png_bomb() -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        c.extend_from_slice(&crc.sum().to_be_bytes());
        c
    };
    let mut ihdr = 11_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&11_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut idat = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut idat, &vec![0u8; 1 << 20]).unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &idat.finish().unwrap()));
    png.extend(chunk(b"IEND", b""));
    png
}

fn audited(server: &TestServer, action: &str) -> i64 {
    server.with_db(|db| {
        db.query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = ?1",
            [action],
            |r| r.get(0),
        )
    })
}

#[test]
fn a_case_manager_attaches_a_scan_in_the_browser_and_it_reaches_the_phone_without_its_tags() {
    use fieldcase_server::office::attachments::{
        ATTACHMENT_ADDED, ATTACHMENT_DOWNLOADED, ATTACHMENT_THUMBNAIL,
    };
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let mara = server.add_web_user("mara", Role::CaseManager, "correct horse battery");
    server.join_default_team(mara);
    let (case, _) = server.create_case("K-0142", &[ana]);
    let a = TestDevice::enroll_direct(&server, "ana");
    a.device.sync_now().unwrap();
    let session = server
        .running()
        .state
        .db()
        .write(|sql| fieldcase_server::office::sign_in::create_session(sql, *mara.as_uuid(), now()))
        .unwrap();

    let scan = photo::jpeg_with_gps(800, 600, 5);
    let path = format!("/cases/{case}/attachments");
    // Without the session's CSRF token: refused, nothing attached.
    let (kind, body) = attach_form("forged", "Decision on residence", &scan);
    let (status, _) = web(&server, "POST", &path, &session.token, Some(&kind), body);
    assert_eq!(status, 403);
    // A file that is none of the kinds taken: refused.
    let (kind, body) = attach_form(&session.csrf, "Decision", b"MZ\x90\0 not a scan");
    let (status, _) = web(&server, "POST", &path, &session.token, Some(&kind), body);
    assert_eq!(status, 400);
    assert!(server.attachments(case).is_empty());

    let (kind, body) = attach_form(&session.csrf, "Decision on residence", &scan);
    let (status, _) = web(&server, "POST", &path, &session.token, Some(&kind), body);
    assert_eq!(status, 303);
    assert_eq!(audited(&server, ATTACHMENT_ADDED), 1);
    let listed = server.attachments(case);
    assert_eq!(listed.len(), 1);
    assert!(listed[0].complete);
    let id = listed[0].reference.id;

    // The case page lists it with a thumbnail; the thumbnail is a small JPEG.
    let (status, html) = web(
        &server,
        "GET",
        &format!("/cases/{case}"),
        &session.token,
        None,
        vec![],
    );
    assert_eq!(status, 200);
    let html = String::from_utf8(html).unwrap();
    assert!(html.contains("Decision on residence"), "{html}");
    assert!(html.contains(&format!("/cases/{case}/attachments/{id}/thumbnail")));
    let (status, thumb) = web(
        &server,
        "GET",
        &format!("/cases/{case}/attachments/{id}/thumbnail"),
        &session.token,
        None,
        vec![],
    );
    assert_eq!(status, 200);
    let (w, h) = photo::dimensions(&thumb).unwrap();
    assert!(w <= 240 && h <= 240 && w > 0, "{w}x{h}");
    assert_eq!(audited(&server, ATTACHMENT_THUMBNAIL), 1);

    // Downloaded: the cleaned bytes, audited.
    let (status, downloaded) = web(
        &server,
        "GET",
        &format!("/cases/{case}/attachments/{id}"),
        &session.token,
        None,
        vec![],
    );
    assert_eq!(status, 200);
    for marker in METADATA_MARKERS {
        assert!(!photo::contains(&downloaded, marker), "{marker:?} survived");
    }
    assert_eq!(audited(&server, ATTACHMENT_DOWNLOADED), 1);

    // The phone learns of it by sync, and fetches it when asked.
    a.device.sync_now().unwrap();
    let on_phone = a.device.store().attachments(case).unwrap();
    assert_eq!(on_phone.len(), 1);
    assert_eq!(on_phone[0].state, AttachmentState::NotDownloaded);
    let fetched = a
        .device
        .sync_attachments(TransferOptions {
            download_all: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(fetched.downloads_completed, 1);
    assert_eq!(
        *a.device.store().open_attachment(case, id).unwrap(),
        downloaded
    );

    // An image bomb is kept as the file it is, but no thumbnail is drawn from it.
    let (kind, body) = attach_form(&session.csrf, "Bomb", &png_bomb());
    let (status, _) = web(&server, "POST", &path, &session.token, Some(&kind), body);
    assert_eq!(status, 303);
    let bomb = server
        .attachments(case)
        .into_iter()
        .find(|a| a.reference.label == "Bomb")
        .unwrap();
    let (status, _) = web(
        &server,
        "GET",
        &format!("/cases/{case}/attachments/{}/thumbnail", bomb.reference.id),
        &session.token,
        None,
        vec![],
    );
    assert_eq!(status, 422);
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[test]
fn below_the_free_space_floor_attachments_wait_while_notes_go_on_and_a_purge_takes_them_away() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-0142", &[ana]);
    let a = TestDevice::enroll_direct(&server, "ana");
    a.device.sync_now().unwrap();
    let photo_bytes = photo::plain_jpeg(600, 400, 4);
    a.device
        .store()
        .attach(
            case,
            &labelled("Receipt", MediaType::Jpeg),
            photo_bytes.clone(),
        )
        .unwrap();

    // The same phone with a floor above what its volume has left.
    let mut options = fieldcase_tests::device_options(&a.clock);
    options.attachment_free_floor = u64::MAX / 4;
    let full = fieldcase_core::device::Device::open(a.path(), options).unwrap();
    full.store().unlock_with_keystore(&a.keys).unwrap();
    let report = full.store().storage_report().unwrap();
    assert!(report.used_bytes > photo_bytes.len() as u64 / 2);
    assert!(report.available_bytes < report.attachment_floor);
    let err = full
        .store()
        .attach(case, &labelled("Another", MediaType::Jpeg), photo_bytes)
        .unwrap_err();
    assert!(matches!(err, CoreError::StorageFull { .. }), "{err:?}");
    // Notes still work, sync finishes, and the attachment already taken still travels.
    full.store()
        .write_note(
            case,
            &fieldcase_core::model::NewNote {
                kind: fieldcase_core::model::NoteKind::Visit,
                body: "Low on space, note still written.".into(),
                tags: vec![],
                task: None,
            },
        )
        .unwrap();
    full.sync_now().unwrap();
    assert_eq!(server.case(case).notes.len(), 1);
    let sent = full.sync_attachments(TransferOptions::default()).unwrap();
    assert_eq!(sent.uploads_completed, 1);
    assert_eq!(full.store().attachments(case).unwrap().len(), 1);

    // Taken off the case: the purge removes its attachments with it.
    server.unassign(case, ana);
    full.sync_now().unwrap();
    assert!(matches!(
        full.store().attachments(case),
        Err(CoreError::CaseNotFound)
    ));
    let db = rusqlite::Connection::open(a.path().join(fieldcase_core::store::DB_FILE)).unwrap();
    let (rows, chunks): (i64, i64) = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM attachments), (SELECT COUNT(*) FROM attachment_chunks)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, chunks), (0, 0));
}
