//! A small tmpfs of its own for disk-fault tests: a real "disk full" when it fills, a real
//! read-only file system when remounted so. Needs root with `CAP_SYS_ADMIN` (the test machines);
//! unmounted on drop.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs of a fixed size.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

fn run(args: &[&str]) {
    let out = Command::new("mount")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run mount (disk-fault tests need root with CAP_SYS_ADMIN): {e}")
        });
    assert!(
        out.status.success(),
        "mount {args:?} failed (disk-fault tests need root with CAP_SYS_ADMIN): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` on a fresh temporary folder.
    pub fn mount(bytes: usize) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_owned();
        run(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={bytes}"),
            "tmpfs",
            &path,
        ]);
        Tmpfs { dir }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system with one file until it refuses (`ENOSPC`); returns the file, whose
    /// removal frees the space again.
    pub fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0xa5u8; 4096];
        loop {
            if file.write_all(&chunk).is_err() {
                break;
            }
        }
        // Byte by byte for the last partial page.
        while file.write_all(&[0]).is_ok() {}
        let _ = file.sync_all();
        path
    }

    /// Remounts read-only (`true`) or read-write (`false`).
    pub fn remount(&self, read_only: bool) {
        let path = self.path().to_str().unwrap().to_owned();
        let mode = if read_only {
            "remount,ro"
        } else {
            "remount,rw"
        };
        run(&["-o", mode, &path]);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = self.path().to_str().unwrap_or_default().to_owned();
        let _ = Command::new("umount").arg("-l").arg(&path).status();
    }
}
