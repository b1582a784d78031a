//! Tiny valid media files for the integration tests. The scanner indexes only
//! files whose content is what their extension says, so a test's photo is a real
//! JPEG, PNG or WebP of a pixel or a few, and its video a minimal MP4 box
//! structure; each carries a tag, so different tags give different contents.
//! (The same files as the unit tests' `src/samples.rs`.)

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder};

/// A file for `relative_path`'s extension (any case) carrying `tag`; the tag
/// itself for an extension that is not media.
pub fn file(relative_path: &str, tag: &[u8]) -> Vec<u8> {
    let extension = relative_path
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "jpg" | "jpeg" => jpeg(tag),
        "png" => png(tag),
        "webp" => webp(tag),
        "mp4" | "mov" => mp4(tag),
        _ => tag.to_vec(),
    }
}

/// A one-pixel JPEG with `tag` in comment segments after its start marker.
pub fn jpeg(tag: &[u8]) -> Vec<u8> {
    let mut encoded = Vec::new();
    JpegEncoder::new(&mut encoded)
        .write_image(&[200, 120, 40], 1, 1, ExtendedColorType::Rgb8)
        .unwrap();
    let mut bytes = encoded[..2].to_vec();
    for piece in tag.chunks(usize::from(u16::MAX) - 2) {
        bytes.extend_from_slice(&[0xFF, 0xFE]);
        bytes.extend_from_slice(&(piece.len() as u16 + 2).to_be_bytes());
        bytes.extend_from_slice(piece);
    }
    bytes.extend_from_slice(&encoded[2..]);
    bytes
}

/// A one-pixel PNG with `tag` in a tEXt chunk after its header.
pub fn png(tag: &[u8]) -> Vec<u8> {
    let mut encoded = Vec::new();
    PngEncoder::new(&mut encoded)
        .write_image(&[40, 120, 200], 1, 1, ExtendedColorType::Rgb8)
        .unwrap();
    // Signature (8 bytes), then IHDR: length, type, 13 bytes of data, CRC.
    let after_header = 8 + 4 + 4 + 13 + 4;
    let mut chunk = b"tEXt".to_vec();
    chunk.extend_from_slice(b"Comment\0");
    chunk.extend_from_slice(tag);
    let mut bytes = encoded[..after_header].to_vec();
    bytes.extend_from_slice(&(chunk.len() as u32 - 4).to_be_bytes());
    bytes.extend_from_slice(&chunk);
    bytes.extend_from_slice(&crc32(&chunk).to_be_bytes());
    bytes.extend_from_slice(&encoded[after_header..]);
    bytes
}

/// A lossless WebP one pixel high whose pixels are `tag`'s bytes.
pub fn webp(tag: &[u8]) -> Vec<u8> {
    let mut pixels = tag.to_vec();
    pixels.resize(pixels.len().div_ceil(3).max(1) * 3, 0);
    let width = (pixels.len() / 3) as u32;
    let mut bytes = Vec::new();
    WebPEncoder::new_lossless(&mut bytes)
        .write_image(&pixels, width, 1, ExtendedColorType::Rgb8)
        .unwrap();
    bytes
}

/// An MP4's boxes: `ftyp`, a `free` box holding `tag`, and a `moov` with a
/// 10-second `mvhd`. No media data: enough for the scanner and the duration probe.
pub fn mp4(tag: &[u8]) -> Vec<u8> {
    let mut mvhd = vec![0u8; 4 + 8]; // version, flags; creation and modification
    mvhd.extend_from_slice(&1000u32.to_be_bytes()); // timescale
    mvhd.extend_from_slice(&10_000u32.to_be_bytes()); // duration
    mvhd.extend_from_slice(&[0u8; 80]);
    let mut bytes = mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41");
    bytes.extend_from_slice(&mp4_box(b"free", tag));
    bytes.extend_from_slice(&mp4_box(b"moov", &mp4_box(b"mvhd", &mvhd)));
    bytes
}

pub fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32 + 8).to_be_bytes().to_vec();
    bytes.extend_from_slice(kind);
    bytes.extend_from_slice(payload);
    bytes
}

/// PNG's CRC-32 (the ISO-HDLC polynomial, bit by bit: a few chunks per test).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A file for `relative_path`'s extension of at least `size` bytes whose content
/// is its own: the tag is the path, then pseudo-random filler (which no format
/// compresses) up to the size.
pub fn sized(relative_path: &str, size: usize) -> Vec<u8> {
    let mut state = relative_path
        .bytes()
        .fold(0x9E37_79B9_7F4A_7C15u64, |a, b| {
            (a ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
        });
    let mut tag = relative_path.as_bytes().to_vec();
    loop {
        let bytes = file(relative_path, &tag);
        if bytes.len() >= size {
            return bytes;
        }
        for _ in 0..size - bytes.len() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            tag.push(state as u8);
        }
    }
}
