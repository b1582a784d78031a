//! Media as Instagram takes it: the Graph API fetches images as JPEG only, so a
//! PNG or WebP story is converted (pure Rust, the `image` crate) and scaled down
//! to fit 1080×1920, and cached by content until the story is decided. Also the
//! checks of what Instagram would refuse, made before a container is created so
//! the chat hears a plain reason instead of an API error. Headers are read with
//! bounded reads: a video is never loaded, a JPEG is never decoded.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

/// The size a story is shown at; larger images are scaled down to fit it.
pub const STORY_WIDTH: u32 = 1080;
pub const STORY_HEIGHT: u32 = 1920;
const JPEG_QUALITY: u8 = 90;

// Instagram's limits for stories, in decimal megabytes as its documentation
// states them; the smaller reading errs on the side of telling the chat.
const MAX_IMAGE_BYTES: u64 = 8_000_000;
const MAX_VIDEO_BYTES: u64 = 100_000_000;
const MAX_VIDEO_SECONDS: f64 = 60.0;
const MIN_VIDEO_SECONDS: f64 = 3.0;
const MIN_ASPECT: f64 = 0.5;
const MAX_ASPECT: f64 = 0.65;

/// A decoded image may not be larger than this: a 12000×12000 PNG bomb fails
/// with a message instead of taking the Pi's memory.
const MAX_SOURCE_SIDE: u32 = 12_000;
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// An image as it will be served to Instagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The source itself for a JPEG, else the converted file in the cache.
    pub path: PathBuf,
    pub content_type: &'static str,
    /// As displayed, after any EXIF rotation.
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub converted: bool,
}

/// A problem Instagram would refuse (the story is not sent to the API) or that
/// it accepts but shows badly (the chat is told, the story goes on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Refuse(String),
    Warn(String),
}

/// Makes an image story servable: a JPEG stays as it is (its size read from its
/// header); a PNG or WebP is decoded, flattened onto white, scaled down to fit
/// 1080×1920 when larger, and written as JPEG to `cache_dir/{sha256}.jpg`
/// (atomically; an existing one is reused).
pub fn prepare_image(source: &Path, sha256: &str, cache_dir: &Path) -> Result<Prepared> {
    if !is_sha256_hex(sha256) {
        bail!("{sha256:?} is not a SHA-256 digest");
    }
    // Content with this digest was converted before: the source need not be
    // opened (a JPEG source never has a cached copy).
    let cached = cache_dir.join(format!("{sha256}.jpg"));
    if let Some(prepared) = cached_jpeg(&cached) {
        return Ok(prepared);
    }
    let not_an_image = |why: &dyn std::fmt::Display| {
        anyhow!("{} could not be read as an image: {why}", source.display())
    };
    let file =
        File::open(source).with_context(|| format!("{} could not be read", source.display()))?;
    let mut reader = BufReader::new(file);
    let format = {
        let head = reader
            .fill_buf()
            .with_context(|| format!("{} could not be read", source.display()))?;
        image::guess_format(head).ok()
    };
    match format {
        Some(ImageFormat::Jpeg) => {
            let (width, height) = jpeg_dimensions(&mut reader)
                .ok_or_else(|| not_an_image(&"the JPEG header is damaged"))?;
            let bytes = reader.get_ref().metadata()?.len();
            Ok(Prepared {
                path: source.to_path_buf(),
                content_type: "image/jpeg",
                width,
                height,
                bytes,
                converted: false,
            })
        }
        Some(format @ (ImageFormat::Png | ImageFormat::WebP)) => {
            let image = decode(reader, format).map_err(|e| not_an_image(&e))?;
            let image = fit_story(flatten_onto_white(image));
            write_jpeg_atomically(&image, &cached)?;
            cached_jpeg(&cached).ok_or_else(|| {
                anyhow!(
                    "{}: the converted image cannot be read back",
                    cached.display()
                )
            })
        }
        _ => Err(not_an_image(&"it is not a JPEG, PNG or WebP file")),
    }
}

/// What Instagram would refuse or show badly about a prepared image.
pub fn check_image(p: &Prepared) -> Vec<Check> {
    let mut checks = Vec::new();
    if p.bytes > MAX_IMAGE_BYTES {
        let after = if p.converted { " after conversion" } else { "" };
        checks.push(Check::Refuse(format!(
            "the image is {}{after}; Instagram takes images up to 8 MB",
            megabytes(p.bytes)
        )));
    }
    let aspect = f64::from(p.width) / f64::from(p.height.max(1));
    if !(MIN_ASPECT..=MAX_ASPECT).contains(&aspect) {
        checks.push(Check::Warn(format!(
            "the image is {}×{}, far from the 9:16 of a story, so Instagram will crop or frame it",
            p.width, p.height
        )));
    }
    checks
}

/// What Instagram would refuse about a video, and its duration in seconds when
/// the MP4/MOV header tells it. A file that cannot be parsed has no duration and
/// no duration check; only a file that cannot be read is an error.
pub fn check_video(path: &Path) -> Result<(Vec<Check>, Option<f64>)> {
    let could_not_read = || format!("{} could not be read", path.display());
    let file = File::open(path).with_context(could_not_read)?;
    let bytes = file.metadata().with_context(could_not_read)?.len();
    let seconds = mp4_duration(&mut BufReader::new(file), bytes);
    let mut checks = Vec::new();
    if bytes > MAX_VIDEO_BYTES {
        checks.push(Check::Refuse(format!(
            "the video is {}; Instagram takes videos up to 100 MB",
            megabytes(bytes)
        )));
    }
    match seconds {
        Some(s) if s > MAX_VIDEO_SECONDS => checks.push(Check::Refuse(format!(
            "the video is {s:.0} seconds long; Instagram takes stories up to 60 seconds"
        ))),
        Some(s) if s < MIN_VIDEO_SECONDS => checks.push(Check::Refuse(format!(
            "the video is {s:.1} seconds long; Instagram needs at least 3 seconds"
        ))),
        _ => {}
    }
    Ok((checks, seconds))
}

/// Deletes a converted image once its story is decided; a missing one is fine.
pub fn remove_cached(sha256: &str, cache_dir: &Path) {
    if !is_sha256_hex(sha256) {
        return;
    }
    let path = cache_dir.join(format!("{sha256}.jpg"));
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("{}: removing the converted image: {e}", path.display()),
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

// ---- conversion -----------------------------------------------------------------

fn cached_jpeg(path: &Path) -> Option<Prepared> {
    let file = File::open(path).ok()?;
    let bytes = file.metadata().ok()?.len();
    let (width, height) = jpeg_dimensions(&mut BufReader::new(file))?;
    Some(Prepared {
        path: path.to_path_buf(),
        content_type: "image/jpeg",
        width,
        height,
        bytes,
        converted: true,
    })
}

fn decode(mut reader: BufReader<File>, format: ImageFormat) -> image::ImageResult<DynamicImage> {
    reader.rewind()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut image_reader = ImageReader::with_format(reader, format);
    image_reader.limits(limits);
    let mut decoder = image_reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// JPEG has no transparency: transparent pixels are shown over white, as most
/// viewers show them, rather than over whatever colour they happen to hold.
fn flatten_onto_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| {
            let (c, a) = (u32::from(c), u32::from(a));
            ((c * a + 255 * (255 - a) + 127) / 255) as u8
        };
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

/// Scales down (never up) to fit the story size, keeping the aspect ratio.
/// A large reduction starts with a cheap box average down to twice the target,
/// so the bicubic pass has a bounded number of taps whatever the source size.
fn fit_story(image: RgbImage) -> RgbImage {
    let (width, height) = image.dimensions();
    let (target_width, target_height) = fit_within(width, height, STORY_WIDTH, STORY_HEIGHT);
    if (target_width, target_height) == (width, height) {
        return image;
    }
    let image = if width > target_width * 2 && height > target_height * 2 {
        image::imageops::thumbnail(&image, target_width * 2, target_height * 2)
    } else {
        image
    };
    resample(&image, target_width, target_height)
}

/// Bicubic (Catmull-Rom) resampling, rows first into an 8-bit buffer of the
/// target width, then columns. `image::imageops::resize` keeps a buffer of
/// 16 bytes per pixel at the source width (66 MB for a 2160×3840 picture);
/// this one needs 3 bytes per pixel at the target width (12 MB).
fn resample(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    const CHANNELS: usize = 3;
    let (source_width, source_height) = (image.width() as usize, image.height() as usize);
    let (width, height) = (width as usize, height as usize);
    let source = image.as_raw();

    let columns = taps(source_width, width);
    let mut rows_resampled = vec![0u8; width * source_height * CHANNELS];
    for (source_row, out_row) in source
        .chunks_exact(source_width * CHANNELS)
        .zip(rows_resampled.chunks_exact_mut(width * CHANNELS))
    {
        for (tap, out) in columns.iter().zip(out_row.chunks_exact_mut(CHANNELS)) {
            let mut sum = [0f32; CHANNELS];
            for (k, weight) in tap.weights.iter().enumerate() {
                let pixel = &source_row[(tap.start + k) * CHANNELS..][..CHANNELS];
                for c in 0..CHANNELS {
                    sum[c] += weight * f32::from(pixel[c]);
                }
            }
            for c in 0..CHANNELS {
                out[c] = to_u8(sum[c]);
            }
        }
    }

    let lines = taps(source_height, height);
    let row_len = width * CHANNELS;
    let mut out = vec![0u8; row_len * height];
    let mut sum = vec![0f32; row_len];
    for (tap, out_row) in lines.iter().zip(out.chunks_exact_mut(row_len)) {
        sum.fill(0.0);
        for (k, weight) in tap.weights.iter().enumerate() {
            let row = &rows_resampled[(tap.start + k) * row_len..][..row_len];
            for (acc, &v) in sum.iter_mut().zip(row) {
                *acc += weight * f32::from(v);
            }
        }
        for (o, &v) in out_row.iter_mut().zip(&sum) {
            *o = to_u8(v);
        }
    }
    RgbImage::from_raw(width as u32, height as u32, out).expect("the buffer has the image's size")
}

/// The source samples (first index and normalised weights) behind each of
/// `target_len` output samples.
struct Taps {
    start: usize,
    weights: Vec<f32>,
}

fn taps(source_len: usize, target_len: usize) -> Vec<Taps> {
    let ratio = source_len as f64 / target_len as f64;
    // Widening the kernel by the reduction ratio makes it a low-pass filter
    // too, so fine detail averages out instead of aliasing.
    let scale = ratio.max(1.0);
    let support = 2.0 * scale;
    (0..target_len)
        .map(|i| {
            let center = (i as f64 + 0.5) * ratio;
            let start = (center - support).floor().max(0.0) as usize;
            let end = ((center + support).ceil() as usize).min(source_len);
            let mut weights: Vec<f32> = (start..end)
                .map(|j| catmull_rom((j as f64 + 0.5 - center) / scale) as f32)
                .collect();
            // Never zero: the nearest sample is always in the window with a
            // weight above one half.
            let total: f32 = weights.iter().sum();
            for w in &mut weights {
                *w /= total;
            }
            Taps { start, weights }
        })
        .collect()
}

fn catmull_rom(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.5 * x * x * x - 2.5 * x * x + 1.0
    } else if x < 2.0 {
        -0.5 * x * x * x + 2.5 * x * x - 4.0 * x + 2.0
    } else {
        0.0
    }
}

fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// The largest size of the same aspect ratio within `max_width`×`max_height`, or
/// the size itself when it already fits.
fn fit_within(width: u32, height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    if width <= max_width && height <= max_height {
        return (width, height);
    }
    let (w, h) = (u64::from(width), u64::from(height));
    let (mw, mh) = (u64::from(max_width), u64::from(max_height));
    let scaled = if w * mh >= h * mw {
        (mw, (h * mw + w / 2) / w)
    } else {
        ((w * mh + h / 2) / h, mh)
    };
    let clamp = |v: u64, max: u64| v.clamp(1, max) as u32;
    (clamp(scaled.0, mw), clamp(scaled.1, mh))
}

fn write_jpeg_atomically(image: &RgbImage, target: &Path) -> Result<()> {
    static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: creating the image cache folder", dir.display()))?;
    let temp = dir.join(format!(
        ".{}.{}.{}.tmp",
        target.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> Result<()> {
        let file = File::create_new(&temp)?;
        let mut writer = BufWriter::new(file);
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut writer, JPEG_QUALITY)
            .encode_image(image)?;
        // Synced before the rename so a power cut never leaves an empty file
        // under the final name, which would be reused.
        writer
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        std::fs::rename(&temp, target)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.with_context(|| format!("{}: writing the converted image", target.display()))
}

// ---- header parsing ---------------------------------------------------------------

/// A JPEG's displayed size from its frame header, swapped when its EXIF
/// orientation turns it a quarter turn. Reads only the segments before the frame.
fn jpeg_dimensions<R: BufRead + Seek>(r: &mut R) -> Option<(u32, u32)> {
    const MAX_SEGMENTS: usize = 512;
    r.rewind().ok()?;
    let mut soi = [0u8; 2];
    r.read_exact(&mut soi).ok()?;
    if soi != [0xFF, 0xD8] {
        return None;
    }
    let mut orientation = Orientation::NoTransforms;
    for _ in 0..MAX_SEGMENTS {
        if read_u8(r)? != 0xFF {
            return None;
        }
        let mut marker = read_u8(r)?;
        while marker == 0xFF {
            marker = read_u8(r)?; // fill bytes
        }
        match marker {
            0x01 | 0xD0..=0xD8 => continue, // no length field
            0xD9 | 0xDA => return None,     // image end or data before any frame
            _ => {}
        }
        let length = read_u16_be(r)?.checked_sub(2)?;
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame {
            let mut frame = [0u8; 5];
            r.read_exact(&mut frame).ok()?;
            let height = u32::from(u16::from_be_bytes([frame[1], frame[2]]));
            let width = u32::from(u16::from_be_bytes([frame[3], frame[4]]));
            if width == 0 || height == 0 {
                return None;
            }
            let quarter_turn = matches!(
                orientation,
                Orientation::Rotate90
                    | Orientation::Rotate270
                    | Orientation::Rotate90FlipH
                    | Orientation::Rotate270FlipH
            );
            return Some(if quarter_turn {
                (height, width)
            } else {
                (width, height)
            });
        }
        if marker == 0xE1 {
            let mut segment = vec![0u8; usize::from(length)];
            r.read_exact(&mut segment).ok()?;
            if let Some(tiff) = segment.strip_prefix(b"Exif\0\0") {
                orientation = Orientation::from_exif_chunk(tiff).unwrap_or(orientation);
            }
        } else {
            r.seek_relative(i64::from(length)).ok()?;
        }
    }
    None
}

fn read_u8<R: Read>(r: &mut R) -> Option<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).ok()?;
    Some(b[0])
}

fn read_u16_be<R: Read>(r: &mut R) -> Option<u16> {
    let mut b = [0u8; 2];
    r.read_exact(&mut b).ok()?;
    Some(u16::from_be_bytes(b))
}

/// The duration of an MP4 or QuickTime file from `moov/mvhd`, walking box
/// headers with seeks (the media data is never read). `None` when there is no
/// such box, it is damaged, or it says the duration is unknown (0 or all ones,
/// as fragmented files do).
fn mp4_duration<R: Read + Seek>(r: &mut R, file_len: u64) -> Option<f64> {
    let mut budget = 4096; // boxes visited, so a crafted file cannot loop long
    let moov = find_box(r, 0, file_len, *b"moov", &mut budget)?;
    let mvhd = find_box(r, moov.0, moov.1, *b"mvhd", &mut budget)?;
    r.seek(SeekFrom::Start(mvhd.0)).ok()?;
    let mut version_flags = [0u8; 4];
    r.read_exact(&mut version_flags).ok()?;
    let needed = match version_flags[0] {
        0 => 4 + 16,
        1 => 4 + 28,
        _ => return None,
    };
    if mvhd.1 - mvhd.0 < needed {
        return None;
    }
    let (timescale, duration) = match version_flags[0] {
        0 => {
            // creation, modification, timescale, duration: 4 bytes each
            let mut b = [0u8; 16];
            r.read_exact(&mut b).ok()?;
            let duration = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
            (
                u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                (duration != u32::MAX).then_some(u64::from(duration))?,
            )
        }
        1 => {
            // creation and modification 8 bytes, timescale 4, duration 8
            let mut b = [0u8; 28];
            r.read_exact(&mut b).ok()?;
            let duration = u64::from_be_bytes(b[20..28].try_into().ok()?);
            (
                u32::from_be_bytes(b[16..20].try_into().ok()?),
                (duration != u64::MAX).then_some(duration)?,
            )
        }
        _ => return None,
    };
    if timescale == 0 || duration == 0 {
        return None;
    }
    Some(duration as f64 / f64::from(timescale))
}

/// The payload range (start, end) of the first box of `kind` among the boxes
/// that fill `start..end`.
fn find_box<R: Read + Seek>(
    r: &mut R,
    start: u64,
    end: u64,
    kind: [u8; 4],
    budget: &mut u32,
) -> Option<(u64, u64)> {
    let mut at = start;
    while at.checked_add(8)? <= end {
        *budget = budget.checked_sub(1)?;
        r.seek(SeekFrom::Start(at)).ok()?;
        let mut header = [0u8; 8];
        r.read_exact(&mut header).ok()?;
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let (size, header_len) = match size32 {
            0 => (end - at, 8), // to the end of the enclosing space
            1 => {
                let mut large = [0u8; 8];
                r.read_exact(&mut large).ok()?;
                (u64::from_be_bytes(large), 16)
            }
            n => (u64::from(n), 8),
        };
        let box_end = at.checked_add(size)?;
        if size < header_len || box_end > end {
            return None;
        }
        if header[4..8] == kind {
            return Some((at + header_len, box_end));
        }
        at = box_end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// A picture with detail everywhere, so scaling and encoding have work to do.
    fn gradient(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        })
    }

    fn write_image(dir: &Path, name: &str, image: DynamicImage, format: ImageFormat) -> PathBuf {
        let path = dir.join(name);
        if format == ImageFormat::Png {
            // The fastest settings: tests run unoptimised.
            use image::codecs::png::{CompressionType, FilterType, PngEncoder};
            let file = BufWriter::new(File::create(&path).unwrap());
            let encoder =
                PngEncoder::new_with_quality(file, CompressionType::Fast, FilterType::NoFilter);
            image.write_with_encoder(encoder).unwrap();
        } else {
            image.save_with_format(&path, format).unwrap();
        }
        path
    }

    fn decoded(path: &Path) -> DynamicImage {
        image::ImageReader::open(path)
            .unwrap()
            .with_guessed_format()
            .unwrap()
            .decode()
            .unwrap()
    }

    #[test]
    fn a_large_png_becomes_a_story_sized_jpeg_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let source = write_image(
            dir.path(),
            "big.png",
            DynamicImage::ImageRgb8(gradient(2160, 3840)),
            ImageFormat::Png,
        );
        let prepared = prepare_image(&source, SHA, &cache).unwrap();
        let want_path = cache.join(format!("{SHA}.jpg"));
        assert_eq!(
            prepared,
            Prepared {
                path: want_path.clone(),
                content_type: "image/jpeg",
                width: 1080,
                height: 1920,
                bytes: std::fs::metadata(&want_path).unwrap().len(),
                converted: true,
            }
        );
        let jpeg = decoded(&want_path);
        assert_eq!((jpeg.width(), jpeg.height()), (1080, 1920));
        assert_eq!(
            image::guess_format(&std::fs::read(&want_path).unwrap()).unwrap(),
            ImageFormat::Jpeg
        );
        // No temp file is left beside it.
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);

        // The second call reuses the cached file even when the source is gone.
        std::fs::remove_file(&source).unwrap();
        assert_eq!(prepare_image(&source, SHA, &cache).unwrap(), prepared);

        remove_cached(SHA, &cache);
        assert!(!want_path.exists());
        remove_cached(SHA, &cache); // already gone: no complaint
    }

    #[test]
    fn a_webp_with_transparency_is_flattened_onto_white() {
        let dir = tempfile::tempdir().unwrap();
        let mut picture = image::RgbaImage::from_pixel(300, 600, image::Rgba([0, 0, 0, 0]));
        for x in 0..150 {
            for y in 0..600 {
                picture.put_pixel(x, y, image::Rgba([200, 10, 10, 255]));
            }
        }
        let source = write_image(
            dir.path(),
            "a.webp",
            DynamicImage::ImageRgba8(picture),
            ImageFormat::WebP,
        );
        let prepared = prepare_image(&source, SHA, dir.path()).unwrap();
        assert_eq!((prepared.width, prepared.height), (300, 600)); // small: not scaled
        assert!(prepared.converted);
        let jpeg = decoded(&prepared.path).into_rgb8();
        let near = |p: &image::Rgb<u8>, want: [u8; 3]| {
            p.0.iter().zip(want).all(|(&a, b)| a.abs_diff(b) <= 12)
        };
        assert!(
            near(jpeg.get_pixel(250, 300), [255, 255, 255]),
            "{:?}",
            jpeg.get_pixel(250, 300)
        );
        assert!(
            near(jpeg.get_pixel(50, 300), [200, 10, 10]),
            "{:?}",
            jpeg.get_pixel(50, 300)
        );
    }

    #[test]
    fn a_wide_webp_is_scaled_to_the_story_width() {
        let dir = tempfile::tempdir().unwrap();
        let source = write_image(
            dir.path(),
            "wide.webp",
            DynamicImage::ImageRgb8(gradient(3000, 500)),
            ImageFormat::WebP,
        );
        let prepared = prepare_image(&source, SHA, dir.path()).unwrap();
        assert_eq!((prepared.width, prepared.height), (1080, 180));
        let jpeg = decoded(&prepared.path);
        assert_eq!((jpeg.width(), jpeg.height()), (1080, 180));
        let checks = check_image(&prepared);
        assert!(
            matches!(&checks[..], [Check::Warn(w)] if w.contains("1080×180")),
            "{checks:?}"
        );
    }

    #[test]
    fn a_jpeg_is_served_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        // Named .png: the content decides, not the name.
        let source = write_image(
            dir.path(),
            "photo.png",
            DynamicImage::ImageRgb8(gradient(1200, 2000)),
            ImageFormat::Jpeg,
        );
        let prepared = prepare_image(&source, SHA, &cache).unwrap();
        assert_eq!(
            prepared,
            Prepared {
                path: source.clone(),
                content_type: "image/jpeg",
                width: 1200,
                height: 2000,
                bytes: std::fs::metadata(&source).unwrap().len(),
                converted: false,
            }
        );
        assert!(!cache.exists());
        assert_eq!(check_image(&prepared), vec![]);
    }

    /// An APP1 segment whose EXIF says "rotate 90°" (value 6), big-endian.
    fn exif_rotate_90() -> Vec<u8> {
        let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
        tiff.extend_from_slice(&[0, 1]); // one entry
        tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]);
        tiff.extend_from_slice(&[0, 0, 0, 0]); // no next IFD
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(&tiff);
        let mut segment = vec![0xFF, 0xE1];
        segment.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        segment.extend_from_slice(&payload);
        segment
    }

    #[test]
    fn jpeg_headers() {
        let mut plain = Vec::new();
        DynamicImage::ImageRgb8(gradient(64, 32))
            .write_to(&mut Cursor::new(&mut plain), ImageFormat::Jpeg)
            .unwrap();
        assert_eq!(jpeg_dimensions(&mut Cursor::new(&plain)), Some((64, 32)));

        let mut rotated = plain[..2].to_vec();
        rotated.extend_from_slice(&exif_rotate_90());
        rotated.extend_from_slice(&plain[2..]);
        assert_eq!(jpeg_dimensions(&mut Cursor::new(&rotated)), Some((32, 64)));

        for cut in 0..plain.len().min(700) {
            let _ = jpeg_dimensions(&mut Cursor::new(&plain[..cut]));
        }
        assert_eq!(jpeg_dimensions(&mut Cursor::new(b"\xFF\xD8\xFF\xD9")), None);
        assert_eq!(jpeg_dimensions(&mut Cursor::new(b"GIF89a")), None);
    }

    #[test]
    fn damaged_or_foreign_files_are_errors_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(gradient(40, 40))
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let cases: [(&str, &[u8], &str); 4] = [
            (
                "cut.png",
                &png[..png.len() / 2],
                "could not be read as an image: ",
            ),
            (
                "text.png",
                b"hello, this is not a picture",
                "it is not a JPEG, PNG or WebP file",
            ),
            ("empty.webp", b"", "it is not a JPEG, PNG or WebP file"),
            (
                "bad.jpg",
                b"\xFF\xD8\xFF\xE0\x00",
                "the JPEG header is damaged",
            ),
        ];
        let cache = dir.path().join("cache");
        for (name, bytes, want) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let error = format!("{:#}", prepare_image(&path, SHA, &cache).unwrap_err());
            assert!(error.starts_with(&format!("{}", path.display())), "{error}");
            assert!(error.contains(want), "{name}: {error}");
        }
        let missing = dir.path().join("missing.png");
        let error = format!("{:#}", prepare_image(&missing, SHA, &cache).unwrap_err());
        assert!(error.contains("missing.png could not be read"), "{error}");
        let error = prepare_image(&missing, "../x", &cache).unwrap_err();
        assert!(error.to_string().contains("not a SHA-256"), "{error}");
        // Nothing half-written is left behind.
        assert!(!cache.exists() || std::fs::read_dir(&cache).unwrap().next().is_none());
    }

    #[test]
    fn resampling_keeps_flat_colour_and_averages_fine_detail() {
        let flat = RgbImage::from_pixel(301, 517, image::Rgb([12, 200, 255]));
        let small = resample(&flat, 97, 160);
        assert_eq!(small.dimensions(), (97, 160));
        assert!(small.pixels().all(|p| p.0 == [12, 200, 255]));

        // One-pixel black and white stripes halved: grey, not stripes.
        let stripes = RgbImage::from_fn(400, 400, |x, _| {
            image::Rgb(if x % 2 == 0 { [0; 3] } else { [255; 3] })
        });
        let halved = resample(&stripes, 200, 200);
        for x in 2..198 {
            let v = halved.get_pixel(x, 100).0[0];
            assert!((110..=145).contains(&v), "column {x}: {v}");
        }

        // A left-to-right ramp stays a ramp.
        let ramp = RgbImage::from_fn(512, 8, |x, _| image::Rgb([(x / 2) as u8; 3]));
        let reduced = resample(&ramp, 128, 2);
        let row: Vec<u8> = (0..128).map(|x| reduced.get_pixel(x, 1).0[0]).collect();
        assert!(row.windows(2).all(|w| w[0] <= w[1]), "{row:?}");
        assert!(row[0] <= 3 && row[127] >= 252, "{row:?}");
    }

    #[test]
    fn fit_within_keeps_the_aspect_ratio() {
        let cases = [
            ((1080, 1920), (1080, 1920)),
            ((500, 700), (500, 700)),
            ((2160, 3840), (1080, 1920)),
            ((1440, 2560), (1080, 1920)),
            ((4000, 3000), (1080, 810)),
            ((1000, 4000), (480, 1920)),
            ((100_000, 1), (1080, 1)),
            ((1, 100_000), (1, 1920)),
        ];
        for (size, want) in cases {
            assert_eq!(fit_within(size.0, size.1, 1080, 1920), want, "{size:?}");
        }
    }

    fn prepared(width: u32, height: u32, bytes: u64, converted: bool) -> Prepared {
        Prepared {
            path: PathBuf::from("x.jpg"),
            content_type: "image/jpeg",
            width,
            height,
            bytes,
            converted,
        }
    }

    #[test]
    fn image_checks() {
        let cases = [
            (prepared(1080, 1920, 2_000_000, false), vec![]),
            (prepared(1000, 2000, 8_000_000, true), vec![]),
            (prepared(1000, 1539, 1, false), vec![]), // just under 0.65
            (
                prepared(1080, 1920, 9_200_000, true),
                vec![Check::Refuse(
                    "the image is 9.2 MB after conversion; Instagram takes images up to 8 MB".into(),
                )],
            ),
            (
                prepared(4000, 3000, 8_500_000, false),
                vec![
                    Check::Refuse("the image is 8.5 MB; Instagram takes images up to 8 MB".into()),
                    Check::Warn(
                        "the image is 4000×3000, far from the 9:16 of a story, so Instagram will crop or frame it"
                            .into(),
                    ),
                ],
            ),
            (
                prepared(900, 1900, 1, false),
                vec![Check::Warn(
                    "the image is 900×1900, far from the 9:16 of a story, so Instagram will crop or frame it"
                        .into(),
                )],
            ),
        ];
        for (p, want) in cases {
            assert_eq!(check_image(&p), want, "{p:?}");
        }
    }

    // ---- MP4 ----

    fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    fn mvhd_v0(timescale: u32, duration: u32) -> Vec<u8> {
        let mut p = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
        p.extend_from_slice(&timescale.to_be_bytes());
        p.extend_from_slice(&duration.to_be_bytes());
        p.extend_from_slice(&[0u8; 80]); // rate, volume, matrix, next track id
        mp4_box(b"mvhd", &p)
    }

    fn mvhd_v1(timescale: u32, duration: u64) -> Vec<u8> {
        let mut p = vec![1, 0, 0, 0];
        p.extend_from_slice(&[0u8; 16]); // creation and modification times
        p.extend_from_slice(&timescale.to_be_bytes());
        p.extend_from_slice(&duration.to_be_bytes());
        p.extend_from_slice(&[0u8; 80]);
        mp4_box(b"mvhd", &p)
    }

    /// ftyp, a large mdat before the moov (as most cameras write them), and a
    /// moov holding a track box before its mvhd.
    fn mp4_file(mvhd: &[u8]) -> Vec<u8> {
        let mut file = mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41");
        file.extend_from_slice(&mp4_box(b"free", b""));
        file.extend_from_slice(&mp4_box(b"mdat", &[0xAB; 5000]));
        let mut moov_payload = mp4_box(b"trak", &mp4_box(b"tkhd", &[0u8; 84]));
        moov_payload.extend_from_slice(mvhd);
        file.extend_from_slice(&mp4_box(b"moov", &moov_payload));
        file
    }

    fn duration_of(bytes: &[u8]) -> Option<f64> {
        mp4_duration(&mut Cursor::new(bytes), bytes.len() as u64)
    }

    #[test]
    fn mvhd_durations() {
        let cases: Vec<(Vec<u8>, Option<f64>)> = vec![
            (mp4_file(&mvhd_v0(1000, 15_500)), Some(15.5)),
            (mp4_file(&mvhd_v0(600, 600 * 75)), Some(75.0)),
            (mp4_file(&mvhd_v1(90_000, 90_000 * 30)), Some(30.0)),
            (mp4_file(&mvhd_v1(1, 1 << 40)), Some((1u64 << 40) as f64)),
            // Unknown durations: fragmented (0), all ones, no timescale.
            (mp4_file(&mvhd_v0(1000, 0)), None),
            (mp4_file(&mvhd_v0(1000, u32::MAX)), None),
            (mp4_file(&mvhd_v1(1000, u64::MAX)), None),
            (mp4_file(&mvhd_v0(0, 1000)), None),
            (mp4_file(&mp4_box(b"mvhd", &[2, 0, 0, 0, 0, 0])), None),
            (mp4_file(&mp4_box(b"mvhd", &[0, 0, 0, 0, 0, 0])), None),
            (mp4_box(b"ftyp", b"isom"), None),
            (Vec::new(), None),
        ];
        for (i, (bytes, want)) in cases.into_iter().enumerate() {
            assert_eq!(duration_of(&bytes), want, "case {i}");
        }
    }

    #[test]
    fn mvhd_with_large_and_open_ended_box_sizes() {
        // A 64-bit mdat size, and a moov whose size 0 means "to the end of file".
        let mut file = mp4_box(b"ftyp", b"qt  ");
        let mdat_payload = [0u8; 100];
        file.extend_from_slice(&1u32.to_be_bytes());
        file.extend_from_slice(b"mdat");
        file.extend_from_slice(&(16 + mdat_payload.len() as u64).to_be_bytes());
        file.extend_from_slice(&mdat_payload);
        file.extend_from_slice(&0u32.to_be_bytes());
        file.extend_from_slice(b"moov");
        file.extend_from_slice(&mvhd_v0(1000, 2_000));
        assert_eq!(duration_of(&file), Some(2.0));
    }

    #[test]
    fn damaged_mp4_never_panics() {
        let good = mp4_file(&mvhd_v1(1000, 61_000));
        assert_eq!(duration_of(&good), Some(61.0));
        for cut in 0..good.len() {
            let _ = duration_of(&good[..cut]);
        }
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5_000 {
            let mut bytes = good.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = next() as u8;
            }
            let _ = duration_of(&bytes);
            // And a file that claims to be longer than it is.
            let _ = mp4_duration(&mut Cursor::new(&bytes), bytes.len() as u64 + next() % 1000);
        }
        for _ in 0..2_000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = duration_of(&bytes);
        }
    }

    #[test]
    fn video_checks() {
        let dir = tempfile::tempdir().unwrap();
        type Case = (&'static str, Vec<u8>, Vec<Check>, Option<f64>);
        let cases: Vec<Case> = vec![
            (
                "ok.mp4",
                mp4_file(&mvhd_v0(1000, 15_000)),
                vec![],
                Some(15.0),
            ),
            (
                "long.mov",
                mp4_file(&mvhd_v0(600, 600 * 75)),
                vec![Check::Refuse(
                    "the video is 75 seconds long; Instagram takes stories up to 60 seconds".into(),
                )],
                Some(75.0),
            ),
            (
                "short.mp4",
                mp4_file(&mvhd_v0(1000, 1_500)),
                vec![Check::Refuse(
                    "the video is 1.5 seconds long; Instagram needs at least 3 seconds".into(),
                )],
                Some(1.5),
            ),
            ("garbage.mp4", b"not a video at all".to_vec(), vec![], None),
        ];
        for (name, bytes, want_checks, want_seconds) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            assert_eq!(
                check_video(&path).unwrap(),
                (want_checks, want_seconds),
                "{name}"
            );
        }

        // Over 100 MB without writing 100 MB: a sparse file.
        let big = dir.path().join("big.mp4");
        let file = File::create(&big).unwrap();
        file.set_len(100_000_001).unwrap();
        assert_eq!(
            check_video(&big).unwrap(),
            (
                vec![Check::Refuse(
                    "the video is 100.0 MB; Instagram takes videos up to 100 MB".into()
                )],
                None
            )
        );

        let error = check_video(&dir.path().join("missing.mp4")).unwrap_err();
        assert!(
            format!("{error:#}").contains("missing.mp4 could not be read"),
            "{error:#}"
        );
    }

    // ---- property tests (`cargo test --lib fuzz_mp4`, `fuzz_jpeg`) ----

    use crate::fuzz_input::{self, mutations};
    use proptest::prelude::*;

    const BOX_PIECES: &[&[u8]] = &[
        b"moov",
        b"mvhd",
        b"mdat",
        b"trak",
        b"free",
        b"\0\0\0\0",
        b"\0\0\0\x01",
        b"\0\0\0\x08",
        b"\0\0\0\x10",
        b"\xff\xff\xff\xff",
        b"\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x7f\xff\xff\xff\xff\xff\xff\xf0",
        b"\x01\0\0\0",
        b"\x02\0\0\0",
        // Whole box headers that lie about their size.
        b"\0\0\0\x01moov\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\0\0\0\x01mdat\xff\xff\xff\xff\xff\xff\xff\xf0",
        b"\0\0\0\x01mvhd\0\0\0\0\0\0\0\x08",
        b"\xff\xff\xff\xffmoov",
        b"\0\0\0\0moov",
    ];

    /// A box as a kind and its payload, or one with another size field.
    #[derive(Debug, Clone)]
    enum BoxSpec {
        /// Size from the payload, written in 32 or 64 bits.
        Sized {
            kind: [u8; 4],
            large: bool,
            children: Vec<BoxSpec>,
            payload: Vec<u8>,
        },
        /// A box header with any size field at all.
        Raw {
            size: u32,
            kind: [u8; 4],
            large_size: u64,
        },
    }

    fn box_bytes(spec: &BoxSpec) -> Vec<u8> {
        match spec {
            BoxSpec::Sized {
                kind,
                large,
                children,
                payload,
            } => {
                let mut body: Vec<u8> = children.iter().flat_map(box_bytes).collect();
                body.extend_from_slice(payload);
                let mut out = Vec::new();
                if *large {
                    out.extend_from_slice(&1u32.to_be_bytes());
                    out.extend_from_slice(kind);
                    out.extend_from_slice(&(body.len() as u64 + 16).to_be_bytes());
                } else {
                    out.extend_from_slice(&(body.len() as u32 + 8).to_be_bytes());
                    out.extend_from_slice(kind);
                }
                out.extend_from_slice(&body);
                out
            }
            BoxSpec::Raw {
                size,
                kind,
                large_size,
            } => {
                let mut out = size.to_be_bytes().to_vec();
                out.extend_from_slice(kind);
                if *size == 1 {
                    out.extend_from_slice(&large_size.to_be_bytes());
                }
                out
            }
        }
    }

    fn any_kind() -> impl Strategy<Value = [u8; 4]> {
        prop_oneof![
            3 => prop::sample::select(vec![*b"moov", *b"mvhd", *b"mdat", *b"trak", *b"free", *b"ftyp"]),
            1 => any::<[u8; 4]>(),
        ]
    }

    /// Trees of boxes whose kinds are mostly the ones the parser looks for, some
    /// with mvhd-like payloads, some with lying size fields.
    fn any_boxes() -> impl Strategy<Value = Vec<BoxSpec>> {
        let payload = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            (0u8..3, prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(version, rest)| {
                let mut p = vec![version, 0, 0, 0];
                p.extend(rest);
                p
            }),
        ];
        let leaf = prop_oneof![
            4 => (any_kind(), any::<bool>(), payload).prop_map(|(kind, large, payload)| BoxSpec::Sized {
                kind,
                large,
                children: Vec::new(),
                payload,
            }),
            1 => (
                prop_oneof![Just(0u32), Just(1), 2u32..8, Just(u32::MAX), any::<u32>()],
                any_kind(),
                // Sizes near the top of u64 are the ones that overflow an offset.
                prop_oneof![any::<u64>(), Just(u64::MAX), u64::MAX - 64.., 0u64..32],
            )
                .prop_map(|(size, kind, large_size)| BoxSpec::Raw { size, kind, large_size }),
        ];
        let tree = leaf.prop_recursive(4, 32, 4, |inner| {
            (
                any_kind(),
                any::<bool>(),
                prop::collection::vec(inner, 0..4),
            )
                .prop_map(|(kind, large, children)| BoxSpec::Sized {
                    kind,
                    large,
                    children,
                    payload: Vec::new(),
                })
        });
        prop::collection::vec(tree, 0..4)
    }

    /// What `mp4_duration` may answer: nothing, or a positive, finite number.
    fn check_duration(bytes: &[u8], claimed_len: u64) -> Result<(), TestCaseError> {
        if let Some(seconds) = mp4_duration(&mut Cursor::new(bytes), claimed_len) {
            prop_assert!(seconds.is_finite() && seconds > 0.0, "{}", seconds);
        }
        Ok(())
    }

    /// An mvhd box of either version with this timescale and duration.
    fn mvhd(version_1: bool, timescale: u32, duration: u64) -> Vec<u8> {
        if version_1 {
            mvhd_v1(timescale, duration)
        } else {
            mvhd_v0(timescale, duration as u32)
        }
    }

    fn any_valid_duration() -> impl Strategy<Value = (bool, u32, u64)> {
        prop_oneof![
            (1u32.., 1u64..u64::from(u32::MAX)).prop_map(|(t, d)| (false, t, d)),
            (1u32.., 1u64..u64::MAX).prop_map(|(t, d)| (true, t, d)),
        ]
    }

    proptest! {
        #![proptest_config(fuzz_input::config(1024))]

        /// A well-formed file gives its duration, wherever its moov and mvhd sit
        /// among other boxes, and whether sizes are 32 or 64 bits.
        #[test]
        fn fuzz_mp4_valid_files_give_their_duration(
            (version_1, timescale, duration) in any_valid_duration(),
            before in any_boxes(),
            inside_before in any_boxes(),
            large_moov in any::<bool>(),
        ) {
            // Boxes before moov must not be a moov themselves: the first moov wins.
            let not_moov = |b: &BoxSpec| !matches!(b, BoxSpec::Sized { kind, .. } | BoxSpec::Raw { kind, .. } if kind == b"moov");
            let not_mvhd = |b: &BoxSpec| !matches!(b, BoxSpec::Sized { kind, .. } | BoxSpec::Raw { kind, .. } if kind == b"mvhd");
            let well_formed = |b: &BoxSpec| matches!(b, BoxSpec::Sized { .. });
            let mut file: Vec<u8> = before
                .iter()
                .filter(|b| not_moov(b) && well_formed(b))
                .flat_map(box_bytes)
                .collect();
            let mut children: Vec<BoxSpec> = inside_before
                .into_iter()
                .filter(|b| not_mvhd(b) && well_formed(b))
                .collect();
            let mvhd_bytes = mvhd(version_1, timescale, duration);
            children.push(BoxSpec::Sized {
                kind: *b"mvhd",
                large: false,
                children: Vec::new(),
                payload: mvhd_bytes[8..].to_vec(),
            });
            file.extend(box_bytes(&BoxSpec::Sized {
                kind: *b"moov",
                large: large_moov,
                children,
                payload: Vec::new(),
            }));
            prop_assert_eq!(
                duration_of(&file),
                Some(duration as f64 / f64::from(timescale))
            );
        }

        /// Arbitrary box trees (lying sizes included) and arbitrary bytes never
        /// panic, also when the file claims to be longer than it is.
        #[test]
        fn fuzz_mp4_arbitrary_boxes(boxes in any_boxes(), extra in 0u64..4096) {
            let bytes: Vec<u8> = boxes.iter().flat_map(box_bytes).collect();
            check_duration(&bytes, bytes.len() as u64)?;
            check_duration(&bytes, bytes.len() as u64 + extra)?;
        }

        #[test]
        fn fuzz_mp4_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256), extra in 0u64..4096) {
            check_duration(&bytes, bytes.len() as u64)?;
            check_duration(&bytes, bytes.len() as u64 + extra)?;
            check_duration(&bytes, u64::MAX)?;
        }

        /// Real-looking files truncated, flipped or spliced never panic.
        #[test]
        fn fuzz_mp4_mutated_files(
            (version_1, timescale, duration) in any_valid_duration(),
            changes in mutations(BOX_PIECES),
            extra in 0u64..4096,
        ) {
            let good = mp4_file(&mvhd(version_1, timescale, duration));
            let bytes = fuzz_input::mutate(&good, &changes);
            check_duration(&bytes, bytes.len() as u64)?;
            check_duration(&bytes, bytes.len() as u64 + extra)?;
        }

        /// JPEG headers, the other file header read from the media folder:
        /// arbitrary and mutated ones never panic, and a size is never zero.
        #[test]
        fn fuzz_jpeg_header_mutated(
            changes in mutations(&[b"\xff", b"\xff\xd8", b"\xff\xe1", b"\xff\xc0", b"\xff\xda", b"Exif\0\0", b"MM\0\x2a", b"II\x2a\0", b"\0\0", b"\xff\xff"]),
            rotate in any::<bool>(),
        ) {
            // A tiny baseline frame header after an optional EXIF rotation.
            let mut good = vec![0xFF, 0xD8];
            if rotate {
                good.extend_from_slice(&exif_rotate_90());
            }
            good.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, 0, 32, 0, 64, 1, 1, 0x11, 0]);
            good.extend_from_slice(&[0xFF, 0xD9]);
            let want = if rotate { (32, 64) } else { (64, 32) };
            prop_assert_eq!(jpeg_dimensions(&mut Cursor::new(&good)), Some(want));
            let bytes = fuzz_input::mutate(&good, &changes);
            if let Some((width, height)) = jpeg_dimensions(&mut Cursor::new(&bytes)) {
                prop_assert!(width > 0 && height > 0);
            }
        }

        #[test]
        fn fuzz_jpeg_header_arbitrary_bytes(tail in prop::collection::vec(any::<u8>(), 0..256)) {
            let mut bytes = vec![0xFF, 0xD8];
            bytes.extend(tail);
            if let Some((width, height)) = jpeg_dimensions(&mut Cursor::new(&bytes)) {
                prop_assert!(width > 0 && height > 0);
            }
        }
    }
}
