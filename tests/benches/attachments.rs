//! Attachments on a slow link, against the real server over TLS on 127.0.0.1 through the
//! harness's link-shaping proxy. Prints:
//!
//! - `3g notes`: a phone with PHOTOS photos of about 2 MB and 50 new notes comes into range on
//!   3G (1 Mbit/s, 300 ms): seconds until the notes are at the office (the app syncs notes
//!   first), then seconds for the photos, against the link's own time for their bytes;
//! - `3g note mid-transfer`: a note written while the photos travel: seconds until the office
//!   holds it;
//! - `cut`: the link cut every 500 KB during an upload: bytes sent again per cut, against one
//!   chunk;
//! - `list`: listing a case of 50 attachments on the phone (median of 200);
//! - `notes-only sync`: a sync of one new note on a phone whose case holds 50 attachments, and
//!   on one whose case holds none (medians of 40, side by side).
//!
//! Run: `cargo bench -p fieldcase-tests --bench attachments [-- PHOTOS]` (default 20; each photo
//! costs about 17 s of link time; 0 leaves the 3G scenario out).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fieldcase_core::ids::CaseId;
use fieldcase_core::model::{Limits, MediaType, NewAttachment};
use fieldcase_core::protocol::Role;
use fieldcase_core::transfer::TransferOptions;
use fieldcase_tests::photo::plain_jpeg;
use fieldcase_tests::proxy::{FaultProxy, Link};
use fieldcase_tests::{TestDevice, TestServer};

fn labelled(label: &str) -> NewAttachment {
    NewAttachment {
        label: label.into(),
        media_type: MediaType::Jpeg,
        note: None,
        task: None,
    }
}

/// A noise JPEG of about `bytes` bytes.
fn photo_of(bytes: usize, seed: u32) -> Vec<u8> {
    // Noise compresses to about 0.93 byte a pixel at the encoder's default quality.
    let pixels = (bytes as f64 / 0.93) as u32;
    let width = ((pixels as f64 * 4.0 / 3.0).sqrt()) as u32;
    plain_jpeg(width, pixels / width, seed)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn three_g(photos: usize) {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-3G", &[ana]);
    let proxy = FaultProxy::start(server.addr());
    let phone = Arc::new(TestDevice::enroll(&server, "ana", &proxy.url()));
    phone.device.sync_now().unwrap();
    let mut bytes = 0u64;
    for i in 0..photos {
        let added = phone
            .device
            .store()
            .attach(
                case,
                &labelled(&format!("photo {i}")),
                photo_of(2_000_000, i as u32),
            )
            .unwrap();
        bytes += added.size;
    }
    for i in 0..50 {
        phone.write_note(case, &format!("note {i}: written offline at the court"));
    }
    proxy.set_link(Link::three_g());
    let start = Instant::now();
    phone.device.sync_now().unwrap();
    let notes = start.elapsed().as_secs_f64();
    assert_eq!(server.case(case).notes.len(), 50);

    // While the photos travel, a note is written 10 s in; the office is watched for it.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (phone, done) = (phone.clone(), done.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(10));
            let id = phone.write_note(case, "written while the photos travel");
            let written = Instant::now();
            loop {
                if server.case(case).notes.iter().any(|n| n.id == id) {
                    return (written.elapsed().as_secs_f64(), server);
                }
                if done.load(Ordering::Relaxed) {
                    phone.device.sync_now().unwrap();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let start = Instant::now();
    let report = phone
        .device
        .sync_attachments(TransferOptions::default())
        .unwrap();
    let took = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let (note_wait, _server) = watcher.join().unwrap();
    assert_eq!(report.uploads_completed as usize, photos);
    let link = bytes as f64 * 8.0 / 1_000_000.0;
    println!(
        "3g notes: 50 notes at the office in {notes:.2} s with {photos} photos ({:.1} MB) waiting",
        bytes as f64 / 1e6
    );
    println!(
        "3g photos: {took:.1} s against the link's own {link:.1} s for their bytes: {:.2}x \
         ({} syncs between chunks)",
        took / link,
        report.syncs_between
    );
    println!("3g note mid-transfer: at the office {note_wait:.2} s after it was written");
}

fn cuts() {
    let server = TestServer::start();
    let ana = server.add_user("ana", Role::FieldWorker);
    let (case, _) = server.create_case("K-CUT", &[ana]);
    let proxy = FaultProxy::start(server.addr());
    let phone = TestDevice::enroll(&server, "ana", &proxy.url());
    phone.device.sync_now().unwrap();
    let added = phone
        .device
        .store()
        .attach(case, &labelled("cut photo"), photo_of(4_000_000, 99))
        .unwrap();
    phone.device.sync_now().unwrap();
    let before = proxy.bytes_to_server();
    let mut cut_count = 0u64;
    loop {
        proxy.cut_next_request_after(500_000);
        match phone.device.sync_attachments(TransferOptions::default()) {
            Ok(report) if report.left == 0 => break,
            Ok(_) => {}
            Err(_) => cut_count += 1,
        }
        assert!(cut_count < 100, "the upload never finished");
    }
    let sent = proxy.bytes_to_server() - before;
    // What an uncut upload of the same attachment sends, measured on a second phone.
    let clean = TestDevice::enroll(&server, "ana", &proxy.url());
    clean.device.sync_now().unwrap();
    let bytes = phone
        .device
        .store()
        .open_attachment(case, added.id)
        .unwrap()
        .to_vec();
    let (other, _) = server.create_case("K-CUT-2", &[ana]);
    clean.device.sync_now().unwrap();
    // Different content, same size: the office must not find it already held.
    let mut altered = bytes.clone();
    let last = altered.len() - 3;
    altered[last] ^= 0x55;
    clean
        .device
        .store()
        .attach(other, &labelled("clean photo"), altered)
        .unwrap();
    clean.device.sync_now().unwrap();
    let before = proxy.bytes_to_server();
    clean
        .device
        .sync_attachments(TransferOptions::default())
        .unwrap();
    let uncut = proxy.bytes_to_server() - before;
    let again = sent.saturating_sub(uncut) as f64 / cut_count.max(1) as f64;
    println!(
        "cut every 500 KB: {cut_count} cuts, {:.0} KB sent again per cut (one chunk is {} KB)",
        again / 1024.0,
        Limits::ATTACHMENT_CHUNK / 1024
    );
}

fn listing_and_notes_only_sync() {
    // Hundreds of syncs back to back: the office's per-device rate is not what is measured.
    let server = TestServer::start_adjusted(None, |l| l.device_burst = 100_000);
    let ana = server.add_user("ana", Role::FieldWorker);
    let (with, _) = server.create_case("K-50", &[ana]);
    let (without, _) = server.create_case("K-0", &[ana]);
    let phone = TestDevice::enroll_direct(&server, "ana");
    phone.device.sync_now().unwrap();
    for i in 0..50 {
        phone
            .device
            .store()
            .attach(with, &labelled(&format!("scan {i}")), plain_jpeg(64, 64, i))
            .unwrap();
    }
    phone.device.sync_now().unwrap();
    phone
        .device
        .sync_attachments(TransferOptions::default())
        .unwrap();
    let list: Vec<f64> = (0..200)
        .map(|_| {
            let start = Instant::now();
            assert_eq!(phone.device.store().attachments(with).unwrap().len(), 50);
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    println!(
        "list: 50 attachments in {:.2} ms (median of 200)",
        median(list)
    );
    let sync = |case: CaseId| -> Vec<f64> {
        (0..40)
            .map(|i| {
                phone.write_note(case, &format!("note {i}"));
                let start = Instant::now();
                phone.device.sync_now().unwrap();
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect()
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        a.extend(sync(with));
        b.extend(sync(without));
    }
    let (a, b) = (median(a), median(b));
    println!(
        "notes-only sync: {a:.2} ms on a case of 50 attachments, {b:.2} ms on a case of none: {:.2}x",
        a / b
    );
}

fn main() {
    let photos: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    listing_and_notes_only_sync();
    cuts();
    if photos > 0 {
        three_g(photos);
    }
}
