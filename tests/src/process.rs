//! The real `fieldcase-server` binary as a child process: started with `serve` on a fixed port
//! of 127.0.0.1 (so enrolled phones find it again after a restart), killed with SIGKILL, and
//! started again on the same data folder. For crash tests and the load run, where the server must
//! be its own process (to kill it, or to measure its memory alone).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// Newest modification time of any file under `dir`.
fn newest(dir: &Path) -> SystemTime {
    let mut best = SystemTime::UNIX_EPOCH;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return best;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        best = best.max(time);
    }
    best
}

/// The `fieldcase-server` binary of this build profile. `cargo test --workspace` builds it next
/// to the test executables; if it is missing or older than the server's or core's sources (a run
/// of `cargo test -p fieldcase-tests` alone), it is built here with the same cargo and profile.
///
/// `FIELDCASE_SERVER_BIN` names a binary to use instead (for a copied or installed build).
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FIELDCASE_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> or target/<profile>/<bin>
    let mut profile_dir = exe.parent().expect("executable folder").to_path_buf();
    if profile_dir.ends_with("deps") || profile_dir.ends_with("examples") {
        profile_dir.pop();
    }
    let binary = profile_dir.join(format!("fieldcase-server{}", std::env::consts::EXE_SUFFIX));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let built = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let sources = newest(&workspace.join("server/src"))
        .max(newest(&workspace.join("server/migrations")))
        .max(newest(&workspace.join("core/src")));
    if built < sources {
        // Build only into a cargo target folder (one that cargo itself made), never elsewhere.
        let target = profile_dir.parent().expect("target folder");
        assert!(
            target.join(".rustc_info.json").exists(),
            "{} is missing or older than the sources, and {} is not a cargo target folder: build \
             it, or set FIELDCASE_SERVER_BIN",
            binary.display(),
            target.display()
        );
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let target_dir = profile_dir.parent().expect("target folder");
        let mut command = Command::new(cargo);
        command
            .current_dir(&workspace)
            .args([
                "build",
                "-p",
                "fieldcase-server",
                "--bin",
                "fieldcase-server",
            ])
            .env("CARGO_TARGET_DIR", target_dir);
        if profile_dir.ends_with("release") {
            command.arg("--release");
        }
        let status = command.status().expect("running cargo build");
        assert!(status.success(), "building fieldcase-server failed");
    }
    binary
}

/// A free port on 127.0.0.1 (bound and released; the server binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The real server binary running `serve` on a data folder.
pub struct ServerProcess {
    child: Option<Child>,
    binary: PathBuf,
    data: PathBuf,
    /// `FIELDCASE_DATABASE_URL` of the process (`None`: the SQLite file in the data folder).
    database: Option<String>,
    /// The configuration file it is given (`--config`), if any.
    config: Option<PathBuf>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `fieldcase-server --data DATA serve --listen 127.0.0.1:PORT` and waits until it
    /// announces that it listens.
    pub fn start(binary: &Path, data: &Path, port: u16) -> Self {
        ServerProcess::start_on(binary, data, port, None)
    }

    /// Like [`ServerProcess::start`] on the database `database` (a `postgres://` URL handed
    /// over in `FIELDCASE_DATABASE_URL`; `None` is the SQLite file in the data folder).
    pub fn start_on(binary: &Path, data: &Path, port: u16, database: Option<&str>) -> Self {
        ServerProcess::start_configured(binary, data, port, database, None)
    }

    /// Like [`ServerProcess::start_on`], reading the configuration file `config` too.
    pub fn start_configured(
        binary: &Path,
        data: &Path,
        port: u16,
        database: Option<&str>,
        config: Option<&Path>,
    ) -> Self {
        // Without a configuration of the caller's, one in the data folder lets the phones sync
        // as soon as they enroll (the tests of an admin's confirmation run elsewhere).
        let own;
        let config = match config {
            Some(config) => Some(config),
            None => {
                own = data.join("test-server.toml");
                std::fs::write(&own, "confirm_enrollment = false\n").expect("test configuration");
                Some(own.as_path())
            }
        };
        let mut server = ServerProcess {
            child: None,
            binary: binary.to_path_buf(),
            data: data.to_path_buf(),
            database: database.map(str::to_owned),
            config: config.map(Path::to_path_buf),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        server.restart();
        server
    }

    /// The process id (for reading its memory use).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Starts the process again (after [`ServerProcess::kill`]), on the same port. The port
    /// can stay taken for a moment after a kill; retried for up to 10 s.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let started = Instant::now();
        loop {
            let mut command = Command::new(&self.binary);
            if let Some(url) = &self.database {
                command.env("FIELDCASE_DATABASE_URL", url);
            }
            if let Some(config) = &self.config {
                command.arg("--config").arg(config);
            }
            let mut child = command
                .arg("--data")
                .arg(&self.data)
                .args(["serve", "--listen", &self.addr.to_string()])
                .env("RUST_LOG", "error")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting fieldcase-server");
            let stdout = child.stdout.take().expect("server stdout");
            let mut reader = BufReader::new(stdout);
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            // Keep reading: a closed pipe would fail the server's next line to stdout.
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
            if first.starts_with("fieldcase-server listening on") {
                self.child = Some(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "fieldcase-server did not start on {}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the process dies at once, in whatever it was doing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the server");
            child.wait().expect("reap the server");
        }
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a process holds in memory at one moment, from Linux `/proc/PID/status`: the resident
/// size split into anonymous memory (the heap, stacks), mapped files (the binary, SQLite's WAL
/// index) and shared memory, and the number of threads, so that a load run can tell which grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemorySample {
    /// Resident set size in bytes (`VmRSS`).
    pub rss: u64,
    /// Resident anonymous memory in bytes (`RssAnon`).
    pub anon: u64,
    /// Resident pages of mapped files in bytes (`RssFile`).
    pub file: u64,
    /// Resident shared memory in bytes (`RssShmem`).
    pub shmem: u64,
    /// Number of threads (`Threads`).
    pub threads: u64,
}

impl MemorySample {
    /// Reads the process's status; `None` when it has gone or the kernel has no such file.
    pub fn of(pid: u32) -> Option<MemorySample> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        MemorySample::parse(&status)
    }

    /// Parses the text of a `/proc/PID/status` file (sizes there are in kB).
    fn parse(status: &str) -> Option<MemorySample> {
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            line[name.len()..].split_whitespace().next()?.parse().ok()
        };
        Some(MemorySample {
            rss: field("VmRSS:")? * 1024,
            anon: field("RssAnon:").unwrap_or(0) * 1024,
            file: field("RssFile:").unwrap_or(0) * 1024,
            shmem: field("RssShmem:").unwrap_or(0) * 1024,
            threads: field("Threads:").unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::MemorySample;

    #[test]
    fn a_status_file_gives_the_resident_size_and_its_parts() {
        let status = "Name:\tfieldcase-serve\nVmRSS:\t   30000 kB\nRssAnon:\t   25000 kB\n\
                      RssFile:\t    4000 kB\nRssShmem:\t    1000 kB\nThreads:\t14\n";
        let m = MemorySample::parse(status).expect("parsed");
        assert_eq!(m.rss, 30000 * 1024);
        assert_eq!(m.anon, 25000 * 1024);
        assert_eq!(m.file, 4000 * 1024);
        assert_eq!(m.shmem, 1000 * 1024);
        assert_eq!(m.threads, 14);
        assert_eq!(MemorySample::parse("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let m = MemorySample::of(std::process::id()).expect("own status");
        assert!(m.rss > 0 && m.anon > 0 && m.threads >= 1, "{m:?}");
        assert!(m.anon + m.file + m.shmem <= m.rss + 4096 * 16, "{m:?}");
    }
}

/// CPU time a process has used so far (user and system, all its threads), from
/// `/proc/PID/stat`; `None` when it has gone. `pid` 0 reads this process.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let path = match pid {
        0 => "/proc/self/stat".to_owned(),
        pid => format!("/proc/{pid}/stat"),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    parse_cpu_time(&stat)
}

/// Parses utime and stime (fields 14 and 15, in clock ticks of 1/100 s on Linux) of a
/// `/proc/PID/stat` line; the command name (field 2) may hold spaces, so fields are counted
/// after its closing parenthesis.
fn parse_cpu_time(stat: &str) -> Option<Duration> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

#[cfg(test)]
mod cpu_tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_past_a_name_with_spaces() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_cpu_time(stat), Some(Duration::from_millis(3250)));
        assert!(cpu_time(0).is_some());
    }
}
