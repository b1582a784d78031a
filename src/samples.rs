//! Tiny valid media files for the unit tests (test-only). The scanner indexes
//! only files whose content is what their extension says, so a test's photo is a
//! real JPEG, PNG or WebP of a pixel or a few, and its video a minimal MP4 box
//! structure; each carries a tag, so different tags give different contents.
//! (`tests/it/support/media.rs` makes the same files for the integration tests.)

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each sample decodes as what it claims, and its tag makes it its own.
    #[test]
    fn samples_are_real_files_of_their_kind() {
        for (name, format) in [
            ("a.jpg", image::ImageFormat::Jpeg),
            ("a.PNG", image::ImageFormat::Png),
            ("a.webp", image::ImageFormat::WebP),
        ] {
            for tag in [&b""[..], b"x", b"a longer tag with more bytes"] {
                let bytes = file(name, tag);
                let decoded = image::load_from_memory_with_format(&bytes, format);
                assert!(decoded.is_ok(), "{name} {tag:?}: {decoded:?}");
            }
            assert_ne!(file(name, b"one"), file(name, b"two"), "{name}");
        }
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let movie = mp4(b"tag");
        assert_eq!(
            crate::media::convert::mp4_structure_problem(
                &mut std::io::Cursor::new(&movie),
                movie.len() as u64
            ),
            None
        );
        assert_ne!(mp4(b"one"), mp4(b"two"));
        assert_eq!(file("notes.txt", b"text"), b"text");
    }
}
