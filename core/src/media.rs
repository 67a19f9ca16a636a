//! What is removed from a file before it is sealed: the metadata a camera writes. A photo's EXIF
//! can hold the GPS position where it was taken (a shelter's address), the time, the phone's make
//! and serial number; XMP and IPTC blocks, maker notes and comments can hold the same. Only the
//! image data and what is needed to draw it (JFIF, Adobe colour transform, ICC colour profile)
//! stay. The container is rewritten segment by segment ([`img_parts`]); the pixels are never
//! decoded, so a photo keeps its quality and the work is a copy.
//!
//! A file must be of the kind the app says it is (its first bytes decide), and of a kind this
//! module can clean or that holds no camera metadata (PDF). HEIC is refused: its metadata sits in
//! items addressed by offsets that removing them would have to rewrite, so the camera should hand
//! JPEG.

use img_parts::jpeg::{Jpeg, markers};
use img_parts::png::Png;
use img_parts::webp::WebP;
use img_parts::{Bytes, ImageEXIF};

use crate::model::{MediaType, ValidationError};

/// What a new attachment's bytes become before they are kept, wherever it is added (a phone, the
/// office's page): its label and size checked against the model's rules, then [`clean`]ed.
pub fn prepare(
    new: &crate::model::NewAttachment,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, ValidationError> {
    crate::model::validate_label(&new.label)?;
    crate::model::validate_size(bytes.len() as u64)?;
    clean(bytes, new.media_type)
}

/// Checks that `bytes` are of `declared` kind and returns them without their metadata.
pub fn clean(bytes: Vec<u8>, declared: MediaType) -> Result<Vec<u8>, ValidationError> {
    if MediaType::sniff(&bytes) != Some(declared) {
        return Err(ValidationError::MediaTypeMismatch);
    }
    let bytes = Bytes::from(bytes);
    match declared {
        MediaType::Jpeg => clean_jpeg(bytes),
        MediaType::Png => clean_png(bytes),
        MediaType::Webp => clean_webp(bytes),
        MediaType::Pdf => Ok(bytes.to_vec()),
    }
}

fn unreadable(_: img_parts::Error) -> ValidationError {
    ValidationError::MediaTypeMismatch
}

/// Keeps JFIF (APP0), the ICC profile (APP2 starting `ICC_PROFILE`) and Adobe's colour
/// transform (APP14); drops every other application segment (EXIF and XMP in APP1, IPTC in
/// APP13, maker blocks elsewhere) and comments.
fn clean_jpeg(bytes: Bytes) -> Result<Vec<u8>, ValidationError> {
    let mut jpeg = Jpeg::from_bytes(bytes).map_err(unreadable)?;
    jpeg.segments_mut().retain(|segment| {
        let marker = segment.marker();
        let is_app = (markers::APP0..=markers::APP15).contains(&marker);
        if marker == markers::COM {
            return false;
        }
        if !is_app {
            return true;
        }
        match marker {
            markers::APP0 | markers::APP14 => true,
            markers::APP2 => segment.contents().starts_with(b"ICC_PROFILE\0"),
            _ => false,
        }
    });
    Ok(jpeg.encoder().bytes().to_vec())
}

/// Drops the chunks that hold text, time or EXIF (`eXIf`, `tEXt`, `zTXt`, `iTXt`, `tIME`); the
/// others draw the image.
fn clean_png(bytes: Bytes) -> Result<Vec<u8>, ValidationError> {
    let mut png = Png::from_bytes(bytes).map_err(unreadable)?;
    png.chunks_mut().retain(|chunk| {
        !matches!(
            &chunk.kind(),
            b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt" | b"tIME"
        )
    });
    png.set_exif(None);
    Ok(png.encoder().bytes().to_vec())
}

/// Drops the `EXIF` and `XMP ` chunks (and clears their flags in `VP8X`).
fn clean_webp(bytes: Bytes) -> Result<Vec<u8>, ValidationError> {
    let mut webp = WebP::from_bytes(bytes).map_err(unreadable)?;
    webp.set_exif(None);
    webp.chunks_mut()
        .retain(|chunk| !matches!(&chunk.id(), b"EXIF" | b"XMP "));
    Ok(webp.encoder().bytes().to_vec())
}
