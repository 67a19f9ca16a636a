//! The fault proxy's link shaping and cuts, through a real server over TLS: a delayed link is
//! never faster than its delay, a cut request reaches the office incomplete and changes nothing,
//! and the next sync completes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use fieldcase_core::CoreError;
use fieldcase_core::protocol::Role;
use fieldcase_tests::proxy::Link;
use fieldcase_tests::{FaultProxy, TestDevice, TestServer};

#[test]
fn a_shaped_link_delays_each_way_and_counts_bytes() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    server.create_case("K-1", &[ana]);
    let proxy = FaultProxy::start(server.addr());
    let phone = TestDevice::enroll(&server, "ana", &proxy.url());
    phone.device.sync_now().unwrap();
    let (up, down) = (proxy.bytes_to_server(), proxy.bytes_to_client());
    assert!(up > 0 && down > 0);

    // 100 ms each way: a sync (a fresh TLS connection and one request) takes at least two round
    // trips of 200 ms.
    proxy.set_link(Link {
        delay_each_way: Duration::from_millis(100),
        bytes_per_second: Some(1_000_000),
    });
    let t = Instant::now();
    phone.device.sync_now().unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    assert!(proxy.bytes_to_server() > up && proxy.bytes_to_client() > down);
}

#[test]
fn a_request_cut_on_its_way_changes_nothing_and_the_next_sync_delivers_it() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-2", &[ana]);
    let proxy = FaultProxy::start(server.addr());
    let phone = TestDevice::enroll(&server, "ana", &proxy.url());
    phone.device.sync_now().unwrap();
    for i in 0..20 {
        phone.write_note(case, &format!("note {i}: {}", "at the centre ".repeat(30)));
    }
    // Past the TLS handshake (well under 1 KB from the phone), inside the request body.
    proxy.cut_next_request_after(1_500);
    let cut = phone.device.sync_now();
    assert!(matches!(cut, Err(CoreError::Network(_))), "{cut:?}");
    assert!(server.case(case).notes.is_empty());
    assert_eq!(phone.device.store().pending_changes().unwrap().len(), 20);

    phone.device.sync_now().unwrap();
    assert_eq!(server.case(case).notes.len(), 20);
    assert_eq!(phone.case(case), server.case(case));
    assert!(phone.device.store().pending_changes().unwrap().is_empty());
}

#[test]
fn a_streamed_answer_cut_on_its_way_costs_at_most_the_frame_in_flight() {
    use fieldcase_core::sync::hub::{FRAME_BUDGET, RESPONSE_BUDGET};
    const CASES: usize = 400;
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    for i in 0..CASES {
        server.create_case(&format!("K-{i:04}"), &[ana]);
    }
    let proxy = FaultProxy::start(server.addr());
    let whole_phone = TestDevice::enroll(&server, "ana", &proxy.url());

    // The whole answer: several pages, streamed in one round trip.
    let before = proxy.bytes_to_client();
    let report = whole_phone.device.sync_now().unwrap();
    let whole = proxy.bytes_to_client() - before;
    assert!(whole > 2 * RESPONSE_BUDGET as u64, "{whole} B");
    assert_eq!(report.round_trips, 1, "{report:?}");
    assert_eq!(
        whole_phone.device.store().list_cases().unwrap().len(),
        CASES
    );
    // What a sync costs that moves no case: the handshake, headers and framing a resumed sync
    // pays again whatever it resumes.
    let before = proxy.bytes_to_client();
    whole_phone.device.sync_now().unwrap();
    let overhead = proxy.bytes_to_client() - before;

    // Cut in the first page, in the second, and late in the answer.
    for (num, den) in [(1u64, 5u64), (1, 2), (4, 5)] {
        let cut_phone = TestDevice::enroll(&server, "ana", &proxy.url());
        proxy.cut_next_response_after(usize::try_from(whole * num / den).unwrap());
        let before = proxy.bytes_to_client();
        let cut = cut_phone.device.sync_now();
        assert!(matches!(cut, Err(CoreError::Network(_))), "{cut:?}");
        let delivered = proxy.bytes_to_client() - before;
        let kept = cut_phone.device.store().list_cases().unwrap().len();
        assert!(kept > 0 && kept < CASES, "{kept} cases kept");

        let before = proxy.bytes_to_client();
        cut_phone.device.sync_now().unwrap();
        let resumed = proxy.bytes_to_client() - before;
        assert_eq!(cut_phone.device.store().list_cases().unwrap().len(), CASES);
        let sent_again = (delivered + resumed).saturating_sub(whole);
        // At most the frame in flight, the part of a TLS record that arrived, and the new
        // connection's own bytes: under 16 KiB.
        let record = fieldcase_server::http::tls::TLS_RECORD_BYTES as u64;
        assert!(
            overhead + record + (FRAME_BUDGET as u64) < 16 * 1024,
            "{overhead} B"
        );
        assert!(
            sent_again <= 16 * 1024,
            "cut at {num}/{den}: sent again {sent_again} B (a sync that moves nothing costs {overhead} B)"
        );
    }
}
