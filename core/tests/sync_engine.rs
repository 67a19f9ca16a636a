//! The sans-IO sync engine between real device stores and the in-memory hub: devices converge,
//! a lost response loses and duplicates nothing, replays change nothing, and cost follows what
//! changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fieldcase_core::ActorId;
use fieldcase_core::CoreError;
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::{CaseId, DeviceId, UserId};
use fieldcase_core::model::{Author, TaskStatus, TaskUpdate};
use fieldcase_core::store::DB_FILE;
use fieldcase_core::sync::hub::{HubStorage, MemoryHub, handle_sync};
use fieldcase_core::sync::{SyncRequest, SyncTransport, sync};
use time::macros::datetime;

/// An in-process transport to a shared hub, that can drop the next response after the hub has
/// processed the request (a connection cut mid-response).
struct HubLink<'a> {
    hub: &'a mut MemoryHub,
    device: DeviceId,
    user: UserId,
    drop_next_response: bool,
    requests: Vec<Vec<u8>>,
}

impl SyncTransport for HubLink<'_> {
    fn round_trip(&mut self, request: &[u8]) -> fieldcase_core::Result<Vec<u8>> {
        self.requests.push(request.to_vec());
        let request = SyncRequest::decode(request)?;
        let response = handle_sync(self.hub, self.device, self.user, &request)?;
        if std::mem::take(&mut self.drop_next_response) {
            let reset =
                std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut mid-response");
            return Err(CoreError::Network(
                fieldcase_core::transport::TransportError::Io(reset),
            ));
        }
        Ok(response.encode()?)
    }
}

fn link<'a>(hub: &'a mut MemoryHub, t: &TestStore) -> HubLink<'a> {
    HubLink {
        hub,
        device: t.identity.device,
        user: t.identity.user,
        drop_next_response: false,
        requests: vec![],
    }
}

/// An office-made case assigned to `users`, put on the hub.
fn office_case(hub: &mut MemoryHub, users: &[UserId], with_task: bool) -> CaseId {
    let office = Author {
        user: UserId::new(),
        device: DeviceId::new(),
    };
    let id = CaseId::new();
    let mut doc = CaseDoc::create(
        id,
        &new_case("K-0142", users[0]),
        office,
        &ActorId::random(),
        datetime!(2026-11-23 12:00 UTC),
    )
    .unwrap();
    if with_task {
        doc.add_task(
            office,
            &task(
                "social welfare centre",
                datetime!(2026-11-24 10:00 +01:00),
                users[0],
            ),
            datetime!(2026-11-23 12:01 UTC),
        )
        .unwrap();
    }
    hub.put_case(id, doc.save(), users);
    id
}

fn hub_case(hub: &MemoryHub, id: CaseId) -> fieldcase_core::model::Case {
    CaseDoc::load(id, hub.case_bytes(id).unwrap(), &ActorId::random())
        .unwrap()
        .case()
        .unwrap()
}

#[test]
fn two_devices_edit_offline_and_converge_through_the_hub() {
    let mut hub = MemoryHub::new();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = create(da.path(), [1; 32]);
    let b = create(db.path(), [2; 32]);
    let case = office_case(&mut hub, &[a.identity.user, b.identity.user], true);

    // Morning sync: both phones get the case and today's task.
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    sync(&b.store, &mut link(&mut hub, &b)).unwrap();
    let task_id = a.store.case(case).unwrap().tasks[0].id;
    assert_eq!(b.store.case(case).unwrap().tasks[0].id, task_id);

    // Offline at the centre: both write notes, both change the task status.
    let na = a
        .store
        .write_note(case, &note("A: the officer took the application"))
        .unwrap();
    b.store
        .write_note(case, &note("B: client was calm"))
        .unwrap();
    a.store
        .update_task(
            case,
            task_id,
            &TaskUpdate {
                status: Some(TaskStatus::Done),
                ..Default::default()
            },
        )
        .unwrap();
    b.store
        .update_task(
            case,
            task_id,
            &TaskUpdate {
                status: Some(TaskStatus::Missed),
                ..Default::default()
            },
        )
        .unwrap();

    // Back in range, in either order; then A once more to receive B's edits.
    let ra = sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    assert_eq!(ra.cases_uploaded, 1);
    sync(&b.store, &mut link(&mut hub, &b)).unwrap();
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();

    let (ca, cb, ch) = (
        a.store.case(case).unwrap(),
        b.store.case(case).unwrap(),
        hub_case(&hub, case),
    );
    assert_eq!(ca, cb);
    assert_eq!(ca, ch);
    assert_eq!(ca.notes.len(), 2);
    assert!(ca.notes.iter().any(|n| n.id == na));
    let conflicts = a.store.conflicts(case).unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].field, "status");
    assert_eq!(b.store.conflicts(case).unwrap(), conflicts);
    assert!(a.store.pending_changes().unwrap().is_empty());
    assert!(b.store.pending_changes().unwrap().is_empty());
}

#[test]
fn a_lost_response_loses_and_duplicates_nothing() {
    let mut hub = MemoryHub::new();
    let dir = tempfile::tempdir().unwrap();
    let a = create(dir.path(), [1; 32]);
    let case = office_case(&mut hub, &[a.identity.user], true);
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    a.store
        .write_note(case, &note("written before the cut"))
        .unwrap();

    // The office adds a note; the phone uploads, the hub applies, the response is lost.
    let office = Author {
        user: UserId::new(),
        device: DeviceId::new(),
    };
    HubStorage::case_doc(&mut hub, case)
        .unwrap()
        .unwrap()
        .add_note(
            office,
            &note("office note"),
            datetime!(2026-11-24 07:00 UTC),
        )
        .unwrap();
    HubStorage::store_case(&mut hub, case, None).unwrap();
    let mut cut = link(&mut hub, &a);
    cut.drop_next_response = true;
    assert!(matches!(
        sync(&a.store, &mut cut),
        Err(CoreError::Network(_))
    ));
    assert_eq!(
        a.store.pending_changes().unwrap().len(),
        1,
        "nothing acknowledged yet"
    );
    assert_eq!(
        hub_case(&hub, case).notes.len(),
        2,
        "the hub did apply the upload"
    );

    // The next sync completes: both notes everywhere, once each.
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    let device = a.store.case(case).unwrap();
    assert_eq!(device, hub_case(&hub, case));
    let mut bodies: Vec<_> = device.notes.iter().map(|n| n.body.clone()).collect();
    bodies.sort();
    assert_eq!(bodies, ["office note", "written before the cut"]);
    assert!(a.store.pending_changes().unwrap().is_empty());
}

#[test]
fn replayed_requests_change_nothing_and_cost_follows_what_changed() {
    let mut hub = MemoryHub::new();
    let dir = tempfile::tempdir().unwrap();
    let a = create(dir.path(), [1; 32]);
    let cases: Vec<CaseId> = (0..100)
        .map(|_| office_case(&mut hub, &[a.identity.user], false))
        .collect();
    let first = sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    assert_eq!(first.cases_updated, 100);
    assert_eq!(a.store.list_cases().unwrap().len(), 100);

    // Nothing changed: one round trip, a small fixed-size exchange.
    let idle = sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    assert_eq!(
        (idle.round_trips, idle.cases_updated, idle.cases_uploaded),
        (1, 0, 0)
    );
    assert!(
        idle.bytes_sent < 100 && idle.bytes_received < 200,
        "{idle:?}"
    );

    // Ten cases changed on the phone: only they travel, in one round trip.
    for case in &cases[..10] {
        a.store
            .write_note(*case, &note("follow-up call done"))
            .unwrap();
    }
    let mut l = link(&mut hub, &a);
    let ten = sync(&a.store, &mut l).unwrap();
    assert_eq!((ten.round_trips, ten.cases_uploaded), (1, 10));
    let request = SyncRequest::decode(&l.requests[0]).unwrap();
    assert_eq!(request.uploads.len(), 10);
    assert!(ten.bytes_sent < 10 * 2_000, "{ten:?}");

    // Replaying that request changes nothing on the hub.
    let replay = l.requests[0].clone();
    drop(l);
    let before: Vec<_> = cases
        .iter()
        .map(|c| hub.case_bytes(*c).unwrap().to_vec())
        .collect();
    let request = SyncRequest::decode(&replay).unwrap();
    handle_sync(&mut hub, a.identity.device, a.identity.user, &request).unwrap();
    for (case, bytes) in cases.iter().zip(before) {
        assert_eq!(
            hub_case(&hub, *case),
            CaseDoc::load(*case, &bytes, &ActorId::random())
                .unwrap()
                .case()
                .unwrap()
        );
    }
}

#[test]
fn a_device_cannot_change_a_case_it_is_not_assigned() {
    let mut hub = MemoryHub::new();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = create(da.path(), [1; 32]);
    let b = create(db.path(), [2; 32]);
    let mine = office_case(&mut hub, &[a.identity.user], false);
    let _theirs = office_case(&mut hub, &[b.identity.user], false);
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    // A only ever receives its own case.
    let listed: Vec<CaseId> = a.store.list_cases().unwrap().iter().map(|c| c.id).collect();
    assert_eq!(listed, vec![mine]);
    // B forges an upload for A's case with B's own changes: not accepted, hub unchanged.
    let before = hub_case(&hub, mine);
    let mut foreign =
        CaseDoc::load(mine, hub.case_bytes(mine).unwrap(), &ActorId::random()).unwrap();
    let heads = foreign.heads();
    foreign
        .add_note(
            Author {
                user: b.identity.user,
                device: b.identity.device,
            },
            &note("not mine"),
            datetime!(2026-11-24 09:00 UTC),
        )
        .unwrap();
    let request = SyncRequest {
        version: fieldcase_core::sync::PROTOCOL_VERSION,
        cursor: 0,
        uploads: vec![fieldcase_core::sync::CaseChanges {
            case_id: mine,
            changes: foreign.changes_since(&heads),
            heads: foreign.heads(),
        }],
        purged: vec![],
        ..SyncRequest::default()
    };
    let response = handle_sync(&mut hub, b.identity.device, b.identity.user, &request).unwrap();
    assert!(response.accepted.is_empty());
    assert!(response.updates.iter().all(|u| u.case_id != mine));
    assert_eq!(hub_case(&hub, mine), before);
}

#[test]
fn an_unassigned_case_takes_pending_edits_then_is_purged_with_a_receipt() {
    let mut hub = MemoryHub::new();
    let dir = tempfile::tempdir().unwrap();
    let a = create(dir.path(), [1; 32]);
    let case = office_case(&mut hub, &[a.identity.user], false);
    let other = office_case(&mut hub, &[a.identity.user], false);
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    a.store
        .write_note(case, &note("written before the unassignment"))
        .unwrap();

    hub.set_assigned(case, &[]);
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    // The pending note reached the hub first; then the case left the phone, with a receipt.
    assert_eq!(hub_case(&hub, case).notes.len(), 1);
    assert!(matches!(a.store.case(case), Err(CoreError::CaseNotFound)));
    assert_eq!(
        a.store
            .list_cases()
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        vec![other]
    );
    assert_eq!(hub.purge_receipts(), &[(a.identity.device, case)]);
    // The next sync carries no receipt again and purges nothing more.
    assert!(a.store.prepare_sync().unwrap().request().purged.is_empty());
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    assert_eq!(hub.purge_receipts().len(), 1);
    assert_eq!(a.store.list_cases().unwrap().len(), 1);
}

/// A phone that lacks most of a case (another phone of the worker wrote twenty notes) is sent
/// the compact document, and keeps it as the case's snapshot rather than as one more change to
/// apply at every load; after reopening the store it reads the case as the hub has it.
#[test]
fn a_case_received_whole_is_kept_as_its_snapshot() {
    let mut hub = MemoryHub::new();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = create(da.path(), [1; 32]);
    let b = create(db.path(), [2; 32]);
    let case = office_case(&mut hub, &[a.identity.user, b.identity.user], true);
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    sync(&b.store, &mut link(&mut hub, &b)).unwrap();
    for i in 0..20 {
        b.store
            .write_note(
                case,
                &note(&format!("visit {i}: the officer took the papers")),
            )
            .unwrap();
    }
    sync(&b.store, &mut link(&mut hub, &b)).unwrap();
    let report = sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    assert_eq!(report.cases_updated, 1);

    let separate_changes: i64 = rusqlite::Connection::open(da.path().join(DB_FILE))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM case_changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        separate_changes, 0,
        "the received document was stored as a change"
    );
    let TestStore { store, keys, .. } = a;
    drop(store);
    let reopened = fieldcase_core::store::Store::open(da.path(), options(&new_clock())).unwrap();
    reopened.unlock_with_keystore(&keys).unwrap();
    let read = reopened.case(case).unwrap();
    assert_eq!(read.notes.len(), 20);
    assert_eq!(read, hub_case(&hub, case));
}

/// A compressed change chunk whose body inflates to `mib` MiB of zeros: a deflate bomb of a few
/// kilobytes.
fn deflate_bomb(mib: usize) -> Vec<u8> {
    use std::io::Write;
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..mib {
        deflate.write_all(&zeros).unwrap();
    }
    let body = deflate.finish().unwrap();
    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    let mut len = body.len();
    while len >= 0x80 {
        chunk.push((len & 0x7f) as u8 | 0x80);
        len >>= 7;
    }
    chunk.push(len as u8);
    chunk.extend(body);
    chunk
}

#[test]
fn uploads_are_inflated_only_for_cases_the_device_may_change_and_within_one_budget_a_request() {
    use fieldcase_core::document::MAX_INFLATED;
    use fieldcase_core::sync::CaseChanges;

    let mut hub = MemoryHub::new();
    let d = tempfile::tempdir().unwrap();
    let a = create(d.path(), [1; 32]);
    let mine = office_case(&mut hub, &[a.identity.user], false);
    let also_mine = office_case(&mut hub, &[a.identity.user], false);
    let (device, user) = (a.identity.device, a.identity.user);
    let mib = usize::try_from(MAX_INFLATED / (1 << 20)).unwrap();
    let half_and_more = deflate_bomb(mib / 2 + 1);
    let upload = |case_id, changes: &Vec<u8>| CaseChanges {
        case_id,
        changes: changes.clone(),
        heads: vec![automerge::ChangeHash([9; 32])],
    };
    let request = |uploads| SyncRequest {
        version: fieldcase_core::sync::PROTOCOL_VERSION,
        cursor: 0,
        uploads,
        purged: vec![],
        ..SyncRequest::default()
    };
    // Each alone within the budget, together past it: the request is refused before automerge
    // sees any of it.
    let both = request(vec![
        upload(mine, &half_and_more),
        upload(also_mine, &half_and_more),
    ]);
    let before = (hub_case(&hub, mine), hub_case(&hub, also_mine));
    assert!(matches!(
        handle_sync(&mut hub, device, user, &both),
        Err(CoreError::Document(why)) if why.contains("inflate past")
    ));
    assert_eq!((hub_case(&hub, mine), hub_case(&hub, also_mine)), before);
    // The same bombs for cases the device may not change are never scanned, let alone loaded:
    // they count toward nothing and the request goes through.
    let foreign = request(vec![
        upload(CaseId::new(), &half_and_more),
        upload(CaseId::new(), &half_and_more),
        upload(CaseId::new(), &half_and_more),
    ]);
    let response = handle_sync(&mut hub, device, user, &foreign).unwrap();
    assert!(response.accepted.is_empty());
}

#[test]
fn a_note_written_while_the_clock_ran_ahead_is_redated_before_it_travels_and_syncs() {
    let mut hub = MemoryHub::new();
    let dir = tempfile::tempdir().unwrap();
    let a = create(dir.path(), [7; 32]);
    let case = office_case(&mut hub, &[a.identity.user], false);
    let other = office_case(&mut hub, &[a.identity.user], false);
    let now = datetime!(2026-11-24 08:00 UTC);
    hub.set_now(now);
    a.clock.set(now);
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    a.store.write_note(other, &note("on time")).unwrap();
    // Written with the phone's clock two days ahead; the clock is then put right.
    a.clock.set(now + time::Duration::days(2));
    a.store
        .write_note(case, &note("the clock was wrong"))
        .unwrap();
    a.clock.set(now);
    let report = sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    assert_eq!(report.cases_uploaded, 2, "the note is not held back");
    assert_eq!(hub_case(&hub, other).notes[0].body, "on time");
    let at_office = hub_case(&hub, case);
    assert_eq!(at_office.notes.len(), 1);
    assert_eq!(at_office.notes[0].written_at, now);
    // A note the office already has keeps its time.
    a.clock.set(now + time::Duration::minutes(30));
    assert_eq!(a.store.redate_future_notes().unwrap(), 0);
}

#[test]
fn two_colleagues_editing_one_note_at_once_are_both_kept_and_both_named() {
    let mut hub = MemoryHub::new();
    let (da, db, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = create(da.path(), [1; 32]);
    let b = create(db.path(), [2; 32]);
    let c = create(dc.path(), [3; 32]);
    let users = [a.identity.user, b.identity.user, c.identity.user];
    let case = office_case(&mut hub, &users, false);
    sync(&c.store, &mut link(&mut hub, &c)).unwrap();
    let written = c
        .store
        .write_note(case, &note("Court hearing moved."))
        .unwrap();
    sync(&c.store, &mut link(&mut hub, &c)).unwrap();
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    sync(&b.store, &mut link(&mut hub, &b)).unwrap();
    // Offline, each completes the colleague's note in her own words.
    a.store
        .edit_note(case, written, "Court hearing moved to 12 December.")
        .unwrap();
    b.store
        .edit_note(case, written, "Court hearing moved. Interpreter booked.")
        .unwrap();
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    sync(&b.store, &mut link(&mut hub, &b)).unwrap();
    let at_office = hub_case(&hub, case);
    let editors: Vec<UserId> = at_office.notes[0]
        .edited_by
        .iter()
        .map(|e| e.user)
        .collect();
    assert_eq!(editors.len(), 2, "{editors:?}");
    assert!(editors.contains(&a.identity.user) && editors.contains(&b.identity.user));
    assert_eq!(at_office.notes[0].author.user, c.identity.user);
}

fn note_ids(case: &fieldcase_core::model::Case) -> Vec<fieldcase_core::ids::NoteId> {
    let mut ids: Vec<_> = case.notes.iter().map(|n| n.id).collect();
    ids.sort();
    ids
}

#[test]
fn a_restored_hub_takes_back_what_phones_hold_once_and_a_late_stale_request_changes_nothing() {
    let mut hub = MemoryHub::new();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = create(da.path(), [1; 32]);
    let b = create(db.path(), [2; 32]);
    let case = office_case(&mut hub, &[a.identity.user, b.identity.user], true);
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    sync(&b.store, &mut link(&mut hub, &b)).unwrap();
    a.store
        .write_note(case, &note("before the backup"))
        .unwrap();
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    let backup = hub.backup();

    // After the backup: the office opens a case for A (the restored office will have no
    // record of it) that B's phone also receives; A writes and syncs again, keeping one request
    // the network will deliver late; B writes a note it never sends before the loss.
    let opened_after = office_case(&mut hub, &[a.identity.user, b.identity.user], false);
    sync(&b.store, &mut link(&mut hub, &b)).unwrap();
    a.store.write_note(case, &note("after the backup")).unwrap();
    let mut stale = link(&mut hub, &a);
    sync(&a.store, &mut stale).unwrap();
    let stale_request = stale.requests[0].clone();
    b.store
        .write_note(case, &note("never sent before the loss"))
        .unwrap();

    let mut hub = MemoryHub::restore(&backup);
    assert_eq!(note_ids(&hub_case(&hub, case)).len(), 1);
    let report = sync(&b.store, &mut link(&mut hub, &b)).unwrap();
    assert!(report.round_trips >= 2, "B must start over: {report:?}");
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    sync(&b.store, &mut link(&mut hub, &b)).unwrap();

    let at_hub = hub_case(&hub, case);
    assert_eq!(note_ids(&at_hub).len(), 3, "every note a phone holds, once");
    assert_eq!(note_ids(&a.store.case(case).unwrap()), note_ids(&at_hub));
    assert_eq!(b.store.case(case).unwrap(), at_hub);
    assert!(a.store.pending_changes().unwrap().is_empty());
    // The case the restored hub had no record of came back from B, assigned as its document
    // says (to A), and B was told to give it up.
    assert_eq!(hub.recovered(), &[(opened_after, b.identity.device)]);
    assert_eq!(
        hub_case(&hub, opened_after).assigned_workers,
        vec![a.identity.user]
    );
    assert!(hub.is_assigned(a.identity.user, opened_after).unwrap());
    assert!(a.store.case(opened_after).is_ok());
    assert!(b.store.case(opened_after).is_err());

    // The request delayed from before the restore arrives now: it is told to start over (the
    // answer goes nowhere), and the hub does not forget what it learnt of A since.
    let late = handle_sync(
        &mut hub,
        a.identity.device,
        a.identity.user,
        &SyncRequest::decode(&stale_request).unwrap(),
    )
    .unwrap();
    assert!(late.reset);
    let report = sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    assert_eq!(
        report.cases_updated, 0,
        "the hub forgot what A holds: {report:?}"
    );
}

#[test]
fn an_attestation_the_office_did_not_make_or_made_in_this_epoch_buys_no_access() {
    use fieldcase_core::sync::{Attested, CaseChanges};
    let mut hub = MemoryHub::new();
    let (da, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = create(da.path(), [1; 32]);
    let outsider = create(dc.path(), [3; 32]);
    let case = office_case(&mut hub, &[a.identity.user], false);
    sync(&a.store, &mut link(&mut hub, &a)).unwrap();
    let before = hub.case_bytes(case).unwrap().to_vec();

    // The outsider makes a document of the case with a note of its own, and shows a forged
    // statement from an earlier epoch, then a genuine one (as the office sends its phones) from
    // this epoch, which a hub that still holds what it attested never takes as a recovery.
    let mut doc = CaseDoc::load(case, &before, &ActorId::random()).unwrap();
    let heads_at_office = doc.heads();
    doc.add_note(
        Author {
            user: outsider.identity.user,
            device: outsider.identity.device,
        },
        &note("planted"),
        datetime!(2026-11-23 12:00 UTC),
    )
    .unwrap();
    let upload = CaseChanges {
        case_id: case,
        changes: doc.save(),
        heads: doc.heads(),
    };
    for attested in [
        Attested::new(&[9; 32], [1; 16], case, &heads_at_office),
        Attested::new(
            hub.attestation_key(),
            hub.office_epoch(),
            case,
            &heads_at_office,
        ),
    ] {
        let request = SyncRequest {
            version: fieldcase_core::sync::PROTOCOL_VERSION,
            cursor: 0,
            uploads: vec![upload.clone()],
            purged: vec![],
            epoch: Some(hub.office_epoch()),
            attested: vec![attested],
        };
        let response = handle_sync(
            &mut hub,
            outsider.identity.device,
            outsider.identity.user,
            &request,
        )
        .unwrap();
        assert!(response.accepted.is_empty());
        assert!(response.updates.is_empty());
        assert_eq!(hub.case_bytes(case).unwrap(), before.as_slice());
    }
}

#[test]
fn a_paged_first_sync_is_followed_case_by_case_from_what_the_hub_says_is_left() {
    use fieldcase_core::sync::{SyncProgress, sync_with_progress};
    const CASES: usize = 600;
    let mut hub = MemoryHub::new();
    let dir = tempfile::tempdir().unwrap();
    let phone = create(dir.path(), [1; 32]);
    for _ in 0..CASES {
        office_case(&mut hub, &[phone.identity.user], true);
    }
    let mut events: Vec<SyncProgress> = Vec::new();
    let report = sync_with_progress(
        &phone.store,
        &mut link(&mut hub, &phone),
        &mut |p: SyncProgress| events.push(p),
    )
    .unwrap();
    assert!(report.round_trips >= 3, "{report:?}");
    assert_eq!(events.len(), report.round_trips + 1);
    // Before the first answer nothing is known; after it, every case.
    assert_eq!(events[0].cases_expected, 0);
    assert_eq!(events[1].cases_expected, CASES as u64);
    for pair in events.windows(2) {
        assert!(pair[1].cases_done > pair[0].cases_done || pair[1].finished);
        assert_eq!(pair[1].cases_expected, CASES as u64);
        assert!(pair[1].bytes_expected >= pair[0].bytes_expected);
    }
    let last = events.last().unwrap();
    assert!(last.finished);
    assert_eq!(
        (last.cases_done, last.cases_expected),
        (CASES as u64, CASES as u64)
    );
    // The hub's stored size is what it sends of each case, less the message's framing: the
    // bytes done are the bytes that moved.
    assert_eq!(
        last.bytes_done,
        (report.bytes_sent + report.bytes_received) as u64
    );
    assert_eq!(last.bytes_done, last.bytes_expected);
    assert_eq!(phone.store.list_cases().unwrap().len(), CASES);
}

#[test]
fn a_case_whose_edits_outweigh_it_goes_up_as_stored_without_loading_and_a_small_edit_as_changes() {
    let mut hub = MemoryHub::new();
    let dir = tempfile::tempdir().unwrap();
    let phone = create(dir.path(), [1; 32]);
    let user = phone.identity.user;
    let (small, large) = (
        office_case(&mut hub, &[user], true),
        office_case(&mut hub, &[user], true),
    );
    sync(&phone.store, &mut link(&mut hub, &phone)).unwrap();
    // A large case (its snapshot past the size kept whole at every edit), already at the office.
    for i in 0..60 {
        let body: String = (0..120)
            .map(|j| format!("{} ", i * 7919 + j * 104_729))
            .collect();
        phone.store.write_note(large, &note(&body)).unwrap();
    }
    sync(&phone.store, &mut link(&mut hub, &phone)).unwrap();
    // A day's work on the small case, one more note on the large one; then the phone restarts,
    // so that no document is in memory.
    for i in 0..20 {
        phone
            .store
            .write_note(
                small,
                &note(&format!("visit {i}: the officer took the papers")),
            )
            .unwrap();
    }
    phone
        .store
        .write_note(large, &note("one more visit"))
        .unwrap();
    let phone = restarted(phone, dir.path());

    // Only the large case is loaded to build the request.
    assert_eq!(phone.store.prepare_sync().unwrap().cases_loaded(), 1);
    let phone = restarted(phone, dir.path());
    let mut l = link(&mut hub, &phone);
    sync(&phone.store, &mut l).unwrap();
    let request = SyncRequest::decode(&l.requests[0]).unwrap();
    let up = |case| request.uploads.iter().find(|u| u.case_id == case).unwrap();
    // The small case went whole, its heads read from the stored document's header.
    let small_up = up(small);
    assert!(fieldcase_core::document::is_document_chunk(
        &small_up.changes
    ));
    let mut heads = fieldcase_core::document::document_heads(&small_up.changes).unwrap();
    heads.sort();
    let mut stored = phone.store.heads(small).unwrap();
    stored.sort();
    assert_eq!(heads, stored);
    // The large one as its one new change, far smaller than the case.
    let large_up = up(large);
    assert!(!fieldcase_core::document::is_document_chunk(
        &large_up.changes
    ));
    assert!(
        large_up.changes.len() < 2_000,
        "{} B",
        large_up.changes.len()
    );
    assert_eq!(hub_case(&hub, small).notes.len(), 20);
    assert_eq!(hub_case(&hub, large).notes.len(), 61);
    assert!(phone.store.pending_changes().unwrap().is_empty());
}

/// The phone's store closed and opened again: nothing of it in memory.
fn restarted(phone: TestStore, dir: &std::path::Path) -> TestStore {
    let TestStore {
        store,
        keys,
        clock,
        identity,
    } = phone;
    drop(store);
    let store = fieldcase_core::store::Store::open(dir, options(&clock)).unwrap();
    store.unlock_with_keystore(&keys).unwrap();
    TestStore {
        store,
        keys,
        clock,
        identity,
    }
}
