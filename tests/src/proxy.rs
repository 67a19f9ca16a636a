//! A fault-injecting TCP proxy on 127.0.0.1 for tests: forwards to an upstream that can change
//! (a restarted server), and can cut the next connection after a number of bytes from the server.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Default)]
struct Faults {
    cut_next_after: Option<usize>,
}

/// A TCP proxy between a device and the server. Stops when dropped.
pub struct FaultProxy {
    /// Where devices connect.
    pub addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    faults: Arc<Mutex<Faults>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Arc::new(Mutex::new(upstream));
        let faults = Arc::new(Mutex::new(Faults::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (upstream, faults, stop) = (upstream.clone(), faults.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let target = *upstream.lock().unwrap();
                            let cut = faults.lock().unwrap().cut_next_after.take();
                            std::thread::spawn(move || relay(client, target, cut));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        Self {
            addr,
            upstream,
            faults,
            stop,
            thread: Some(thread),
        }
    }

    /// `https://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Points the proxy at another upstream (a restarted server).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }

    /// Cuts the next connection once `bytes` have come back from the server.
    pub fn cut_next_response_after(&self, bytes: usize) {
        self.faults.lock().unwrap().cut_next_after = Some(bytes);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn relay(client: TcpStream, target: SocketAddr, cut_after: Option<usize>) {
    let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nonblocking(false);
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upload = std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = c_read.read(&mut buf) {
            if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let mut buf = [0u8; 16 * 1024];
    let mut sent = 0usize;
    while let Ok(n) = s_read.read(&mut buf) {
        if n == 0 {
            break;
        }
        let n = match cut_after {
            Some(limit) if sent + n >= limit => {
                let _ = c_write.write_all(&buf[..limit.saturating_sub(sent)]);
                // The connection dies mid-response.
                let _ = c_write.shutdown(Shutdown::Both);
                let _ = s_read.shutdown(Shutdown::Both);
                break;
            }
            _ => n,
        };
        if c_write.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n;
    }
    let _ = c_write.shutdown(Shutdown::Both);
    let _ = upload.join();
}
