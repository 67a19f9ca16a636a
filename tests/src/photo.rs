//! Photos as a phone's camera makes them: a real JPEG carrying what a camera writes beside the
//! pixels — EXIF with the make and a GPS position, an XMP packet naming the place, a comment —
//! so tests can show that none of it survives.

use std::io::Cursor;

/// Text that appears in the photo's metadata, never in its pixels: none of it may survive.
pub const METADATA_MARKERS: &[&[u8]] = &[
    b"Exif\0\0",
    b"FieldCam",
    b"GPSLatitude",
    b"Shelter, Ulica 7",
    b"http://ns.adobe.com/xap/1.0/",
];

/// The GPS latitude's rationals as the EXIF holds them (44/1, 48/1, 3615/100): 44°48'36.15".
pub const GPS_RATIONALS: [u8; 24] = [
    0, 0, 0, 44, 0, 0, 0, 1, 0, 0, 0, 48, 0, 0, 0, 1, 0, 0, 0x0E, 0x1F, 0, 0, 0, 100,
];

/// A JPEG of `width` x `height` pixels of noise-like content (so it does not compress to
/// nothing; `seed` varies it), without metadata.
pub fn plain_jpeg(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let v = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ seed.wrapping_mul(97);
        image::Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap_or_default();
    out.into_inner()
}

/// An EXIF block (APP1 payload): IFD0 with the camera's make and a pointer to a GPS IFD holding
/// latitude N 44°48'36.15".
fn exif() -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"Exif\0\0");
    let tiff_start = t.len();
    t.extend_from_slice(b"MM\0\x2a\0\0\0\x08");
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32| {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&kind.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&value.to_be_bytes());
    };
    // IFD0 at 8: two entries (30 bytes), then the make string at 38, the GPS IFD at 48.
    t.extend_from_slice(&2u16.to_be_bytes());
    entry(&mut t, 0x010F, 2, 9, 38);
    entry(&mut t, 0x8825, 4, 1, 48);
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(b"FieldCam\0\0");
    // GPS IFD at 48: latitude ref "N" inline, latitude's rationals at 78.
    t.extend_from_slice(&2u16.to_be_bytes());
    entry(&mut t, 0x0001, 2, 2, u32::from_be_bytes(*b"N\0\0\0"));
    entry(&mut t, 0x0002, 5, 3, 78);
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&GPS_RATIONALS);
    debug_assert_eq!(t.len() - tiff_start, 102);
    t
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(
        &u16::try_from(payload.len() + 2)
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    s.extend_from_slice(payload);
    s
}

/// A real JPEG with EXIF (make, GPS), XMP (GPSLatitude, a place) and a comment inserted after
/// its start marker, as a camera app writes them.
pub fn jpeg_with_gps(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let plain = plain_jpeg(width, height, seed);
    let xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><rdf:Description \
        exif:GPSLatitude=\"44,48.6025N\" photoshop:City=\"Shelter, Ulica 7\"/></x:xmpmeta>";
    let mut out = plain[..2].to_vec();
    out.extend(segment(0xE1, &exif()));
    out.extend(segment(0xE1, xmp));
    out.extend(segment(0xFE, b"Shelter, Ulica 7"));
    out.extend_from_slice(&plain[2..]);
    out
}

/// Whether `haystack` holds `needle` anywhere.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The dimensions `bytes` decode to, if they decode as an image.
pub fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    image::load_from_memory(bytes)
        .ok()
        .map(|i| (i.width(), i.height()))
}
