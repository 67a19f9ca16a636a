//! What a hostile client sends, for the tests and benchmarks of the office under attack: a
//! device enrolled by hand (its key in the test's hands, so it can sign anything) and a
//! deflate bomb in automerge's chunk format.

use ed25519_dalek::SigningKey;
use fieldcase_core::transport::{Client, DeviceClient, DeviceCredential};

use crate::TestServer;

/// A device of the user called `user`, enrolled over the real transport with a key the test
/// holds, so that it can sign requests no phone would send.
pub fn raw_device(server: &TestServer, user: &str) -> DeviceClient {
    let url = format!("https://{}", server.addr());
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let enrolled = fieldcase_core::transport::enroll(
        &url,
        server.fingerprint(),
        &server.enrollment_code(user),
        &key,
    )
    .unwrap();
    DeviceClient::new(
        Client::new(&url, server.fingerprint()).unwrap(),
        DeviceCredential::new(enrolled.device_id, key),
    )
}

/// An automerge document chunk of one deflated column of `mib` MiB of zeros: tens of kilobytes
/// on the wire that inflate to `mib` MiB.
pub fn deflate_bomb(mib: usize) -> Vec<u8> {
    use std::io::Write;
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..mib {
        deflate.write_all(&zeros).unwrap();
    }
    let body = deflate.finish().unwrap();
    // Magic, a zero checksum, chunk type 2 (a compressed document), then the LEB128 length.
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
