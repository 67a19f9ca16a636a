//! Streamed answers between a real device store and the in-memory hub: pages cut into frames
//! that the phone applies as they arrive. A whole stream is one round trip; a stream cut after
//! some frames keeps every whole frame, and the next sync sends none of them again, even when
//! the hub had built pages far past the cut.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use fieldcase_core::ActorId;
use fieldcase_core::CoreError;
use fieldcase_core::document::CaseDoc;
use fieldcase_core::ids::{CaseId, DeviceId, UserId};
use fieldcase_core::model::Author;
use fieldcase_core::sync::hub::{FRAME_BUDGET, MemoryHub, continue_feed, handle_sync_frames};
use fieldcase_core::sync::{SyncProgress, SyncRequest, SyncTransport, sync_with_progress};
use time::macros::datetime;

/// An in-process transport that streams: the hub builds every page of the answer at once (as
/// far ahead of the phone as a server could be), and the frames are handed over one by one,
/// until `cut_after` frames when set (the link then fails).
struct StreamLink<'a> {
    hub: &'a mut MemoryHub,
    device: DeviceId,
    user: UserId,
    cut_after: Option<usize>,
    /// Every frame handed over: its change bytes and the cases it updated.
    delivered: Vec<(usize, Vec<CaseId>)>,
    /// The change bytes of each case update handed over.
    case_bytes: Vec<(CaseId, usize)>,
}

impl SyncTransport for StreamLink<'_> {
    fn round_trip(&mut self, _request: &[u8]) -> fieldcase_core::Result<Vec<u8>> {
        unreachable!("the sync asks for frames")
    }

    fn round_trip_frames(
        &mut self,
        request: &[u8],
        frames: &mut dyn FnMut(Vec<Vec<u8>>) -> fieldcase_core::Result<()>,
    ) -> fieldcase_core::Result<()> {
        let request = SyncRequest::decode(request)?;
        let mut all = handle_sync_frames(self.hub, self.device, self.user, &request, None)?;
        while let Some(last) = all.last().filter(|l| l.more && !l.reset) {
            let from = last.cursor;
            all.extend(continue_feed(
                self.hub,
                self.device,
                self.user,
                request.cursor,
                from,
            )?);
        }
        for frame in all {
            if self.cut_after == Some(self.delivered.len()) {
                let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "link cut");
                return Err(CoreError::Network(
                    fieldcase_core::transport::TransportError::Io(cut),
                ));
            }
            let bytes = frame.updates.iter().map(|u| u.changes.len()).sum();
            let cases = frame.updates.iter().map(|u| u.case_id).collect();
            self.case_bytes
                .extend(frame.updates.iter().map(|u| (u.case_id, u.changes.len())));
            self.delivered.push((bytes, cases));
            frames(vec![frame.encode()?])?;
        }
        Ok(())
    }
}

fn stream_link<'a>(hub: &'a mut MemoryHub, t: &TestStore) -> StreamLink<'a> {
    StreamLink {
        hub,
        device: t.identity.device,
        user: t.identity.user,
        cut_after: None,
        delivered: Vec::new(),
        case_bytes: Vec::new(),
    }
}

/// `count` office-made cases of a task each, assigned to `user`.
fn office_cases(hub: &mut MemoryHub, user: UserId, count: usize) -> Vec<CaseId> {
    let office = Author {
        user: UserId::new(),
        device: DeviceId::new(),
    };
    (0..count)
        .map(|i| {
            let id = CaseId::new();
            let mut doc = CaseDoc::create(
                id,
                &new_case(&format!("K-{i:04}"), user),
                office,
                &ActorId::random(),
                datetime!(2026-11-23 12:00 UTC),
            )
            .unwrap();
            doc.add_task(
                office,
                &task("registry office", datetime!(2026-11-24 10:00 +01:00), user),
                datetime!(2026-11-23 12:01 UTC),
            )
            .unwrap();
            hub.put_case(id, doc.save(), &[user]);
            id
        })
        .collect()
}

const CASES: usize = 300;

#[test]
fn a_streamed_first_sync_is_one_round_trip_of_small_frames_and_followed_frame_by_frame() {
    let mut hub = MemoryHub::new();
    let dir = tempfile::tempdir().unwrap();
    let phone = create(dir.path(), [1; 32]);
    office_cases(&mut hub, phone.identity.user, CASES);
    let mut link = stream_link(&mut hub, &phone);
    let mut events: Vec<SyncProgress> = Vec::new();
    let report = sync_with_progress(&phone.store, &mut link, &mut |p| events.push(p)).unwrap();
    // More than one page (the hub paginates at 128 KiB), all in one answer.
    let total: usize = link.delivered.iter().map(|(b, _)| b).sum();
    assert!(
        total > fieldcase_core::sync::hub::RESPONSE_BUDGET,
        "{total}"
    );
    assert_eq!(report.round_trips, 1, "{report:?}");
    assert_eq!(phone.store.list_cases().unwrap().len(), CASES);
    // Every frame within its budget (a case alone may be larger; these are not).
    assert!(link.delivered.iter().all(|(b, _)| *b <= FRAME_BUDGET));
    assert!(link.delivered.len() >= total / FRAME_BUDGET);
    // Each case came once.
    let mut received: Vec<CaseId> = link.delivered.iter().flat_map(|(_, c)| c.clone()).collect();
    received.sort();
    received.dedup();
    assert_eq!(received.len(), CASES);
    // The progress bar moves with the frames, not only with the round trips, and keeps its rules.
    assert!(events.len() > link.delivered.len() / 2, "{}", events.len());
    for pair in events.windows(2) {
        assert!(pair[1].cases_done >= pair[0].cases_done);
        assert!(pair[1].cases_expected >= pair[0].cases_expected);
        assert!(pair[1].cases_done <= pair[1].cases_expected);
    }
    let last = events.last().unwrap();
    assert!(last.finished);
    assert_eq!(last.cases_done, CASES as u64);
}

#[test]
fn a_cut_stream_keeps_every_whole_frame_and_the_next_sync_sends_none_of_them_again() {
    // Cut inside the first page, and inside a later one.
    for cut_after in [3, 12] {
        let mut hub = MemoryHub::new();
        let dir = tempfile::tempdir().unwrap();
        let phone = create(dir.path(), [1; 32]);
        office_cases(&mut hub, phone.identity.user, CASES);
        let mut cut = stream_link(&mut hub, &phone);
        cut.cut_after = Some(cut_after);
        let err = fieldcase_core::sync::sync(&phone.store, &mut cut).unwrap_err();
        assert!(matches!(err, CoreError::Network(_)), "{err:?}");
        let kept: Vec<CaseId> = cut.delivered.iter().flat_map(|(_, c)| c.clone()).collect();
        assert_eq!(cut.delivered.len(), cut_after);
        // What arrived whole is on the phone.
        let held = phone.store.list_cases().unwrap();
        assert_eq!(held.len(), kept.len(), "cut after {cut_after} frames");
        for case in &kept {
            phone.store.case(*case).unwrap();
        }

        // While the phone was cut off, the office changed a case the phone had received whole:
        // the phone is sent that change, not the case again.
        let changed = kept[0];
        let mut doc = CaseDoc::load(
            changed,
            hub.case_bytes(changed).unwrap(),
            &ActorId::random(),
        )
        .unwrap();
        let whole = doc.save().len();
        doc.add_task(
            Author {
                user: UserId::new(),
                device: DeviceId::new(),
            },
            &task(
                "court",
                datetime!(2026-11-25 09:00 +01:00),
                phone.identity.user,
            ),
            datetime!(2026-11-23 13:00 UTC),
        )
        .unwrap();
        hub.put_case(changed, doc.save(), &[phone.identity.user]);

        let mut resumed = stream_link(&mut hub, &phone);
        fieldcase_core::sync::sync(&phone.store, &mut resumed).unwrap();
        let sent_for_changed: Vec<usize> = resumed
            .case_bytes
            .iter()
            .filter(|(c, _)| *c == changed)
            .map(|(_, bytes)| *bytes)
            .collect();
        assert_eq!(sent_for_changed.len(), 1);
        assert!(
            sent_for_changed[0] < whole,
            "the changed case went whole again ({} B of {whole} B)",
            sent_for_changed[0]
        );
        assert_eq!(phone.store.case(changed).unwrap().tasks.len(), 2);
        let resumed_cases: Vec<CaseId> = resumed
            .delivered
            .iter()
            .flat_map(|(_, c)| c.clone())
            .filter(|c| *c != changed)
            .collect();
        let again: Vec<&CaseId> = resumed_cases.iter().filter(|c| kept.contains(c)).collect();
        assert!(
            again.is_empty(),
            "cut after {cut_after} frames: {} cases sent again",
            again.len()
        );
        assert_eq!(phone.store.list_cases().unwrap().len(), CASES);
    }
}
