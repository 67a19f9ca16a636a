//! A phone as its own process, for the crash tests: opens an enrolled store, then writes visit
//! notes and syncs with the office in a loop until it is killed. It reports on stdout, one line
//! each, only after the fact: `written ID` once `write_note` returned (durable on the phone),
//! `sync-start` before a sync and `synced` once the server answered it (every note written
//! before `sync-start` is then at the office), `sync-failed` when the office was unreachable, `sync-error WHY` on any other failure.
//!
//! Usage: `crash-device STORE_DIR KEY_BYTE` (the keystore stand-in is 32 times KEY_BYTE).

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use fieldcase_core::clock::ManualClock;
use fieldcase_core::crypto::StaticKeyProvider;
use fieldcase_core::device::Device;
use fieldcase_core::model::{NewNote, NoteKind};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().context("STORE_DIR")?;
    let key: u8 = args.next().context("KEY_BYTE")?.parse()?;
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let device = Device::open(
        std::path::Path::new(&dir),
        fieldcase_tests::device_options(&clock),
    )?;
    device
        .store()
        .unlock_with_keystore(&StaticKeyProvider::new([key; 32]))?;
    let cases: Vec<_> = device
        .store()
        .list_cases()?
        .into_iter()
        .map(|c| c.id)
        .collect();
    anyhow::ensure!(!cases.is_empty(), "the phone holds no case");
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for i in 0usize.. {
        let case = cases[i % cases.len()];
        let id = device.store().write_note(
            case,
            &NewNote {
                kind: NoteKind::Visit,
                body: format!("note {i} of this run, written before the kill"),
                tags: vec![],
                task: None,
            },
        )?;
        writeln!(out, "written {id}")?;
        out.flush()?;
        if i % 2 == 1 {
            writeln!(out, "sync-start")?;
            out.flush()?;
            match device.sync_now() {
                Ok(_) => writeln!(out, "synced")?,
                Err(fieldcase_core::CoreError::Network(_)) => writeln!(out, "sync-failed")?,
                Err(e) => writeln!(out, "sync-error {e}")?,
            }
            out.flush()?;
        }
    }
    Ok(())
}
