//! Media as Instagram and Telegram take it. The Graph API fetches images as
//! JPEG only, so a PNG or WebP story is converted (pure Rust) and scaled down to
//! fit 1080×1920, and cached by content until the story is decided. A photo
//! beyond Telegram's limits for the chat gets a smaller JPEG preview in the same
//! cache (kept: nothing prunes previews yet). Also the checks of what Instagram
//! would refuse, made before a container is created so the chat hears a plain
//! reason instead of an API error.
//!
//! Memory stays bounded whatever a file claims. Headers are read first with
//! bounded reads (a video is never loaded). Pictures are decoded one at a time: a
//! PNG row by row, a JPEG at 1/2 to 1/8 of its size by the decoder itself, and
//! the rows are scaled as they arrive. What would still need more than
//! `DECODE_BUDGET_BYTES` at once (a large WebP, an interlaced PNG, a progressive
//! JPEG) is refused with the reason. A conversion peaks under 64 MB
//! (`cargo bench --bench convert`).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use anyhow::{anyhow, bail, Context, Result};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use crate::db::media::MediaItem;
use crate::telegram::{self, FileSource};

/// The size a story is shown at; larger images are scaled down to fit it.
pub const STORY_WIDTH: u32 = 1080;
pub const STORY_HEIGHT: u32 = 1920;
const JPEG_QUALITY: u8 = 90;

/// The long side of the preview a chat gets instead of a photo Telegram would
/// refuse (the size Telegram itself keeps photos at).
const PREVIEW_SIDE: u32 = 2560;
const PREVIEW_QUALITY: u8 = 85;

// Instagram's limits for stories, in decimal megabytes as its documentation
// states them; the smaller reading errs on the side of telling the chat.
const MAX_IMAGE_BYTES: u64 = 8_000_000;
const MAX_VIDEO_BYTES: u64 = 100_000_000;
const MAX_VIDEO_SECONDS: f64 = 60.0;
const MIN_VIDEO_SECONDS: f64 = 3.0;
const MIN_ASPECT: f64 = 0.5;
const MAX_ASPECT: f64 = 0.65;

/// What a decoder may hold at once (a whole WebP, an interlaced PNG, a
/// progressive JPEG's coefficients, a JPEG decoded at reduced size), or the
/// decoded picture and the scaled result together. With the process's own few
/// MB and the JPEG encoder's rows, a conversion stays under 64 MB; a
/// 12000×12000 PNG took 438 MB before.
const DECODE_BUDGET_BYTES: u64 = 48 * 1024 * 1024;
/// Larger pictures are refused in any format: even row by row, scaling one
/// takes a Pi too long. 108 MP camera photos fit.
const MAX_SOURCE_PIXELS: u64 = 120_000_000;
/// The largest side of a JPEG; a longer PNG row is refused before any buffer
/// of its width is allocated.
const MAX_SOURCE_SIDE: u32 = 65_535;
/// The largest side the WebP format can state.
const MAX_WEBP_SIDE: u32 = 16_383;

/// One picture is decoded at a time, whoever asks (web workers, the publisher,
/// the core loop), so their peaks never add up.
static DECODING: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    DECODING.lock().unwrap_or_else(PoisonError::into_inner)
}

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

/// The photo a chat is shown for an image story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatPhoto {
    /// The file itself: Telegram takes it as it is.
    Original,
    /// A smaller JPEG in the cache, for a file Telegram would refuse.
    Preview(PathBuf),
}

/// Why a chat photo could not be had.
#[derive(Debug)]
pub enum ChatPhotoError {
    /// Nothing Telegram would show can be made of the file (damaged, not a
    /// picture, too large to open, or too long and thin): the reason, in words
    /// for the chat.
    Unshowable(String),
    /// The file could not be read just now.
    Unreadable(anyhow::Error),
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
    let (mut reader, format) = open_image(source)?;
    match format {
        Some(ImageFormat::Jpeg) => {
            let (width, height) = jpeg_dimensions(&mut reader).ok_or_else(|| {
                anyhow!(Failure::Damaged("the JPEG header is damaged".into()).describe(source))
            })?;
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
            let _one = one_at_a_time();
            // Another thread may have converted the same content meanwhile.
            if let Some(prepared) = cached_jpeg(&cached) {
                return Ok(prepared);
            }
            let image = decode_fitted(reader, format, |w, h| {
                fit_within(w, h, STORY_WIDTH, STORY_HEIGHT)
            })
            .map_err(|failure| anyhow!(failure.describe(source)))?;
            write_jpeg_atomically(&image, &cached, JPEG_QUALITY)?;
            cached_jpeg(&cached).ok_or_else(|| {
                anyhow!(
                    "{}: the converted image cannot be read back",
                    cached.display()
                )
            })
        }
        _ => Err(anyhow!(
            Failure::Damaged(NOT_AN_IMAGE.into()).describe(source)
        )),
    }
}

/// What a chat is shown for an image story. A file within Telegram's limits
/// for photos (10 MB, width and height adding up to 10,000, sides at most
/// 20:1) goes as it is; a larger one is scaled into a JPEG preview of at most
/// 2560 pixels a side in `cache_dir/{sha256}.chat.jpg` (reused while it exists).
/// A picture that needs a preview but cannot be decoded, or is so long and thin
/// that even a preview would be refused, is `Unshowable`.
pub fn chat_photo(
    source: &Path,
    sha256: &str,
    cache_dir: &Path,
) -> Result<ChatPhoto, ChatPhotoError> {
    if !is_sha256_hex(sha256) {
        return Err(ChatPhotoError::Unreadable(anyhow!(
            "{sha256:?} is not a SHA-256 digest"
        )));
    }
    let preview = cache_dir.join(format!("{sha256}.chat.jpg"));
    if cached_jpeg(&preview).is_some() {
        return Ok(ChatPhoto::Preview(preview));
    }
    let (mut reader, format) = open_image(source).map_err(ChatPhotoError::Unreadable)?;
    let unshowable = |failure: Failure| match failure {
        Failure::Io(e) => ChatPhotoError::Unreadable(anyhow!(Failure::Io(e).describe(source))),
        other => ChatPhotoError::Unshowable(other.reason()),
    };
    let dimensions = match format {
        Some(ImageFormat::Jpeg) => jpeg_dimensions(&mut reader)
            .ok_or_else(|| Failure::Damaged("the JPEG header is damaged".into())),
        Some(format @ (ImageFormat::Png | ImageFormat::WebP)) => match reader.rewind() {
            Ok(()) => ImageReader::with_format(&mut reader, format)
                .into_dimensions()
                .map_err(damaged),
            Err(e) => Err(Failure::Io(e)),
        },
        _ => Err(Failure::Damaged(NOT_AN_IMAGE.into())),
    };
    let bytes = reader
        .get_ref()
        .metadata()
        .map_err(|e| unshowable(Failure::Io(e)))?
        .len();
    let (width, height) = match dimensions {
        Ok(dimensions) => dimensions,
        // Telegram judges a file whose header cannot be read when its size
        // allows, as it did before previews; only a preview needs decoding.
        Err(Failure::Damaged(_)) if bytes <= telegram::MAX_PHOTO_BYTES => {
            return Ok(ChatPhoto::Original)
        }
        Err(failure) => return Err(unshowable(failure)),
    };
    let (long, short) = (width.max(height), width.min(height));
    if u64::from(long) > telegram::MAX_PHOTO_RATIO * u64::from(short) {
        return Err(ChatPhotoError::Unshowable(format!(
            "it is {width}×{height} pixels, more than {} times as long as it is wide, \
             and Telegram shows no photo that long",
            telegram::MAX_PHOTO_RATIO
        )));
    }
    if u64::from(width) + u64::from(height) <= telegram::MAX_PHOTO_SIDES
        && bytes <= telegram::MAX_PHOTO_BYTES
    {
        return Ok(ChatPhoto::Original);
    }
    let Some(format) = format else {
        return Err(unshowable(Failure::Damaged(NOT_AN_IMAGE.into())));
    };
    let _one = one_at_a_time();
    if cached_jpeg(&preview).is_some() {
        return Ok(ChatPhoto::Preview(preview));
    }
    let image = decode_fitted(reader, format, fit_for_chat).map_err(unshowable)?;
    write_jpeg_atomically(&image, &preview, PREVIEW_QUALITY).map_err(ChatPhotoError::Unreadable)?;
    match cached_jpeg(&preview) {
        Some(p) if p.bytes <= telegram::MAX_PHOTO_BYTES => Ok(ChatPhoto::Preview(preview)),
        Some(p) => {
            remove_file_if_present(&preview);
            Err(ChatPhotoError::Unshowable(format!(
                "even its preview is {}, more than Telegram takes",
                megabytes(p.bytes)
            )))
        }
        None => Err(ChatPhotoError::Unreadable(anyhow!(
            "{}: the preview cannot be read back",
            preview.display()
        ))),
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
/// A chat preview stays: the chat's message may still be uploading it.
pub fn remove_cached(sha256: &str, cache_dir: &Path) {
    if !is_sha256_hex(sha256) {
        return;
    }
    remove_file_if_present(&cache_dir.join(format!("{sha256}.jpg")));
}

fn remove_file_if_present(path: &Path) {
    match std::fs::remove_file(path) {
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

// ---- decoding -------------------------------------------------------------------

const NOT_AN_IMAGE: &str = "it is not a JPEG, PNG or WebP file";

/// Why a picture could not be decoded.
#[derive(Debug)]
enum Failure {
    /// Reading the file failed.
    Io(io::Error),
    /// Damaged, or not a picture that can be opened.
    Damaged(String),
    /// Opening it would take more memory or time than a Pi has for it.
    TooLarge(String),
}

impl Failure {
    /// Said about the file, for logs and for the chat's "not published" note.
    fn describe(&self, source: &Path) -> String {
        match self {
            Failure::Io(e) => format!("{} could not be read: {e}", source.display()),
            Failure::Damaged(why) => {
                format!("{} could not be read as an image: {why}", source.display())
            }
            Failure::TooLarge(why) => format!("{}: {why}", source.display()),
        }
    }

    /// Said about "it", after the file's name.
    fn reason(&self) -> String {
        match self {
            Failure::Io(e) => format!("it could not be read: {e}"),
            Failure::Damaged(why) if why == NOT_AN_IMAGE => why.clone(),
            Failure::Damaged(why) => format!("it could not be read as an image: {why}"),
            Failure::TooLarge(why) => why.clone(),
        }
    }
}

fn damaged(e: impl std::fmt::Display) -> Failure {
    Failure::Damaged(e.to_string())
}

/// A decoder's own memory limit tripped: the estimate below let through
/// something it should not have, so the answer is the same as the estimate's.
fn over_limit(width: u32, height: u32) -> Failure {
    Failure::TooLarge(format!(
        "{width}×{height} pixels needs more memory to open than Storyline allows; \
         export it smaller"
    ))
}

fn image_failure(e: image::ImageError, width: u32, height: u32) -> Failure {
    match e {
        image::ImageError::Limits(_) => over_limit(width, height),
        other => damaged(other),
    }
}

fn open_image(source: &Path) -> Result<(BufReader<File>, Option<ImageFormat>)> {
    let could_not_read = || format!("{} could not be read", source.display());
    let file = File::open(source).with_context(could_not_read)?;
    let mut reader = BufReader::new(file);
    let format = image::guess_format(reader.fill_buf().with_context(could_not_read)?).ok();
    Ok((reader, format))
}

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

/// Refuses what no budget allows: too many pixels, or a side longer than any
/// JPEG's.
fn check_size(width: u32, height: u32) -> Result<(), Failure> {
    if width == 0 || height == 0 {
        return Err(Failure::Damaged(format!(
            "it claims to be {width}×{height} pixels"
        )));
    }
    if u64::from(width) * u64::from(height) > MAX_SOURCE_PIXELS
        || width.max(height) > MAX_SOURCE_SIDE
    {
        return Err(Failure::TooLarge(format!(
            "{width}×{height} pixels is more than Storyline opens (up to {} megapixels, \
             {MAX_SOURCE_SIDE} pixels a side); export it smaller",
            MAX_SOURCE_PIXELS / 1_000_000
        )));
    }
    Ok(())
}

/// Refuses a picture whose decoding would need `bytes` at its peak, beyond
/// the budget; the hint scales the budget by the bytes it needs per pixel.
fn check_budget(width: u32, height: u32, bytes: u64, what: &str) -> Result<(), Failure> {
    if bytes <= DECODE_BUDGET_BYTES {
        return Ok(());
    }
    let per_pixel = bytes as f64 / (f64::from(width) * f64::from(height));
    Err(Failure::TooLarge(format!(
        "{width}×{height} pixels is more than Storyline opens in {what} \
         (up to about {:.1} megapixels); export it smaller",
        DECODE_BUDGET_BYTES as f64 / per_pixel / 1e6
    )))
}

/// The scaled result's bytes, twice over when turning it makes a copy.
fn output_bytes(width: u32, height: u32, orientation: Orientation) -> u64 {
    let copies = if orientation == Orientation::NoTransforms {
        1
    } else {
        2
    };
    copies * u64::from(width) * u64::from(height) * 3
}

fn quarter_turn(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The size to scale the stored (unrotated) picture to, so that once turned
/// as its EXIF orientation says it has the size `fit` gives for its displayed
/// size.
fn stored_target(
    width: u32,
    height: u32,
    orientation: Orientation,
    fit: &impl Fn(u32, u32) -> (u32, u32),
) -> (u32, u32) {
    if quarter_turn(orientation) {
        let (w, h) = fit(height, width);
        (h, w)
    } else {
        fit(width, height)
    }
}

/// Decodes the picture in `reader` and scales it down so that, as displayed,
/// it has the size `fit` gives for its displayed size. Transparent pixels are
/// shown over white.
fn decode_fitted<R: BufRead + Seek>(
    mut reader: R,
    format: ImageFormat,
    fit: impl Fn(u32, u32) -> (u32, u32),
) -> Result<RgbImage, Failure> {
    reader.rewind().map_err(Failure::Io)?;
    let (image, orientation) = match format {
        ImageFormat::Jpeg => decode_jpeg(reader, &fit)?,
        ImageFormat::Png => decode_png(reader, &fit)?,
        ImageFormat::WebP => decode_webp(reader, &fit)?,
        _ => return Err(Failure::Damaged(NOT_AN_IMAGE.into())),
    };
    if orientation == Orientation::NoTransforms {
        return Ok(image);
    }
    let mut image = DynamicImage::ImageRgb8(image);
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

/// The side the decoder scales a JPEG side to for an inverse DCT of
/// `scale`/8 (as `jpeg_decoder` rounds it).
fn idct_scaled(len: u32, scale: u32) -> u32 {
    (len * scale).div_ceil(8)
}

/// The scale `jpeg_decoder::Decoder::scale` picks for a target size: the
/// smallest of 1/8, 1/4, 1/2 that is at least as large in one direction.
fn idct_scale(width: u32, height: u32, target_width: u32, target_height: u32) -> u32 {
    [1, 2, 4]
        .into_iter()
        .find(|&s| idct_scaled(width, s) >= target_width || idct_scaled(height, s) >= target_height)
        .unwrap_or(8)
}

fn decode_jpeg<R: BufRead + Seek>(
    mut reader: R,
    fit: &impl Fn(u32, u32) -> (u32, u32),
) -> Result<(RgbImage, Orientation), Failure> {
    let header = jpeg_header(&mut reader).ok_or_else(|| damaged("the JPEG header is damaged"))?;
    let (width, height) = (header.width, header.height);
    // Huffman-coded 8-bit sequential or progressive JPEGs in grey, colour or
    // CMYK: what cameras and editors write.
    let components = header.sampling.len() as u64;
    if !matches!(header.frame_marker, 0xC0..=0xC2)
        || header.precision != 8
        || !matches!(components, 1 | 3 | 4)
    {
        return Err(damaged(
            "it is a lossless, 12-bit or arithmetic-coded JPEG, which Storyline cannot open",
        ));
    }
    check_size(width, height)?;
    let orientation = header.orientation;
    let (mut target_width, mut target_height) = stored_target(width, height, orientation, fit);
    // The decoder keeps each component's plane and then the interleaved
    // pixels, both at the reduced size; a progressive JPEG also keeps every
    // coefficient at full size until its last scan.
    let progressive = header.frame_marker == 0xC2;
    let coefficients = if progressive {
        jpeg_coefficient_bytes(&header)
    } else {
        0
    };
    let mut scale = idct_scale(width, height, target_width, target_height);
    let (scaled_width, scaled_height) = loop {
        let (scaled_width, scaled_height) = (idct_scaled(width, scale), idct_scaled(height, scale));
        // A smaller scale makes a smaller result rather than none.
        (target_width, target_height) =
            fit_within(target_width, target_height, scaled_width, scaled_height);
        let decoded = u64::from(scaled_width) * u64::from(scaled_height) * components;
        let needed = (coefficients + 2 * decoded)
            .max(decoded + output_bytes(target_width, target_height, orientation));
        if needed <= DECODE_BUDGET_BYTES || scale == 1 {
            let what = if progressive {
                "a progressive JPEG"
            } else {
                "a JPEG"
            };
            check_budget(width, height, needed, what)?;
            break (scaled_width, scaled_height);
        }
        scale /= 2;
    };

    reader.rewind().map_err(Failure::Io)?;
    let mut decoder = jpeg_decoder::Decoder::new(reader);
    decoder.set_max_decoding_buffer_size(DECODE_BUDGET_BYTES as usize);
    let request = |len: u32| u16::try_from(len.max(1)).unwrap_or(u16::MAX);
    let (decoded_width, decoded_height) = decoder
        .scale(request(target_width), request(target_height))
        .map_err(damaged)?;
    let (decoded_width, decoded_height) = (u32::from(decoded_width), u32::from(decoded_height));
    if u64::from(decoded_width) * u64::from(decoded_height)
        > u64::from(scaled_width) * u64::from(scaled_height)
    {
        return Err(over_limit(width, height));
    }
    let pixels = decoder.decode().map_err(|e| match e {
        jpeg_decoder::Error::Format(m) if m.contains("exceeds maximum allowed size") => {
            over_limit(width, height)
        }
        other => damaged(other),
    })?;
    // A progressive JPEG's coefficients go with the decoder.
    drop(decoder);
    let (decoded_width, decoded_height) = (decoded_width as usize, decoded_height as usize);
    let layout = match pixels.len() / (decoded_width * decoded_height).max(1) {
        1 => Pixels::Grey,
        3 => Pixels::Rgb,
        4 => Pixels::Cmyk,
        _ => return Err(damaged("the decoder gave pixels of an unexpected kind")),
    };
    let row_len = decoded_width * layout.bytes();
    if pixels.len() != row_len * decoded_height {
        return Err(damaged(
            "the decoder gave fewer pixels than the picture has",
        ));
    }
    let mut scaler = RowScaler::new(
        decoded_width,
        decoded_height,
        target_width as usize,
        target_height as usize,
    );
    let mut rgb = vec![0u8; decoded_width * 3];
    for row in pixels.chunks_exact(row_len) {
        layout.to_rgb(row, &mut rgb);
        scaler.push(&rgb);
    }
    Ok((scaler.finish()?, orientation))
}

/// The coefficients a progressive JPEG decoder keeps: 64 two-byte values per
/// 8×8 block of each component, blocks counted over whole MCUs.
fn jpeg_coefficient_bytes(header: &JpegHeader) -> u64 {
    let max_h = header
        .sampling
        .iter()
        .map(|s| s.0)
        .max()
        .unwrap_or(1)
        .max(1);
    let max_v = header
        .sampling
        .iter()
        .map(|s| s.1)
        .max()
        .unwrap_or(1)
        .max(1);
    let mcus_across = u64::from(header.width.div_ceil(8 * u32::from(max_h)));
    let mcus_down = u64::from(header.height.div_ceil(8 * u32::from(max_v)));
    header
        .sampling
        .iter()
        .map(|&(h, v)| mcus_across * u64::from(h) * mcus_down * u64::from(v) * 128)
        .sum()
}

fn decode_png<R: BufRead + Seek>(
    reader: R,
    fit: &impl Fn(u32, u32) -> (u32, u32),
) -> Result<(RgbImage, Orientation), Failure> {
    let limits = png::Limits {
        bytes: DECODE_BUDGET_BYTES as usize,
    };
    let mut decoder = png::Decoder::new_with_limits(reader, limits);
    // 8 bits a sample, palettes and transparency expanded.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut png_reader = decoder.read_info().map_err(|e| match e {
        png::DecodingError::LimitsExceeded => Failure::TooLarge(
            "its metadata needs more memory than Storyline allows; export it smaller".into(),
        ),
        other => damaged(other),
    })?;
    let info = png_reader.info();
    let (width, height, interlaced) = (info.width, info.height, info.interlaced);
    let orientation = info
        .exif_metadata
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    check_size(width, height)?;
    let layout = match png_reader.output_color_type() {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => Pixels::Grey,
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => Pixels::GreyAlpha,
        (png::ColorType::Rgb, png::BitDepth::Eight) => Pixels::Rgb,
        (png::ColorType::Rgba, png::BitDepth::Eight) => Pixels::Rgba,
        other => return Err(damaged(format!("unexpected pixel format {other:?}"))),
    };
    let (target_width, target_height) = stored_target(width, height, orientation, fit);
    let (width_px, height_px) = (width as usize, height as usize);
    let mut scaler = RowScaler::new(
        width_px,
        height_px,
        target_width as usize,
        target_height as usize,
    );
    let mut rgb = vec![0u8; width_px * 3];
    let png_failure = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => over_limit(width, height),
        other => damaged(other),
    };
    if interlaced {
        // Adam7 spreads every row over seven passes: the whole picture is needed.
        let size = png_reader
            .output_buffer_size()
            .ok_or_else(|| over_limit(width, height))?;
        let needed = size as u64 + output_bytes(target_width, target_height, orientation);
        check_budget(width, height, needed, "an interlaced PNG")?;
        let mut pixels = vec![0u8; size];
        png_reader.next_frame(&mut pixels).map_err(png_failure)?;
        for row in pixels.chunks_exact(width_px * layout.bytes()) {
            layout.to_rgb(row, &mut rgb);
            scaler.push(&rgb);
        }
    } else {
        while let Some(row) = png_reader.next_row().map_err(png_failure)? {
            layout.to_rgb(row.data(), &mut rgb);
            scaler.push(&rgb);
        }
    }
    Ok((scaler.finish()?, orientation))
}

fn decode_webp<R: BufRead + Seek>(
    mut reader: R,
    fit: &impl Fn(u32, u32) -> (u32, u32),
) -> Result<(RgbImage, Orientation), Failure> {
    let per_pixel = webp_bytes_per_pixel(&mut reader);
    reader.rewind().map_err(Failure::Io)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_WEBP_SIDE);
    limits.max_image_height = Some(MAX_WEBP_SIDE);
    limits.max_alloc = Some(DECODE_BUDGET_BYTES);
    let mut image_reader = ImageReader::with_format(reader, ImageFormat::WebP);
    image_reader.limits(limits.clone());
    let mut decoder = image_reader.into_decoder().map_err(damaged)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    let orientation = decoder.orientation().map_err(damaged)?;
    let (target_width, target_height) = stored_target(width, height, orientation, fit);
    let decoding = (f64::from(width) * f64::from(height) * per_pixel) as u64;
    let needed = decoding
        .max(decoder.total_bytes() + output_bytes(target_width, target_height, orientation));
    check_budget(width, height, needed, "a WebP")?;
    // A second line of defence: `image` refuses a buffer over `max_alloc`.
    limits
        .reserve(decoder.total_bytes())
        .map_err(|e| image_failure(e, width, height))?;
    let layout = match decoder.color_type() {
        image::ColorType::Rgb8 => Pixels::Rgb,
        image::ColorType::Rgba8 => Pixels::Rgba,
        other => return Err(damaged(format!("unexpected pixel format {other:?}"))),
    };
    let image = DynamicImage::from_decoder(decoder).map_err(|e| image_failure(e, width, height))?;
    let mut scaler = RowScaler::new(
        width as usize,
        height as usize,
        target_width as usize,
        target_height as usize,
    );
    let mut rgb = vec![0u8; width as usize * 3];
    for row in image
        .as_bytes()
        .chunks_exact(width as usize * layout.bytes())
    {
        layout.to_rgb(row, &mut rgb);
        scaler.push(&rgb);
    }
    Ok((scaler.finish()?, orientation))
}

/// Bytes per pixel that decoding a WebP holds at its peak, from the chunks it
/// has: the output, plus the YUV planes (1.5 bytes) of a lossy one, plus a
/// second 4-byte frame for a lossless one without alpha or a lossless-coded
/// alpha plane; an animation or a file that cannot be walked gets the worst case.
fn webp_bytes_per_pixel<R: Read + Seek>(r: &mut R) -> f64 {
    const WORST: f64 = 12.0;
    let walk = |r: &mut R| -> Option<f64> {
        r.rewind().ok()?;
        let mut riff = [0u8; 12];
        r.read_exact(&mut riff).ok()?;
        if &riff[..4] != b"RIFF" || &riff[8..] != b"WEBP" {
            return None;
        }
        let (mut lossy, mut lossless, mut alpha, mut animated) = (false, false, false, false);
        for _ in 0..64 {
            let mut chunk = [0u8; 8];
            if r.read_exact(&mut chunk).is_err() {
                break;
            }
            let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            match &chunk[..4] {
                b"VP8 " => lossy = true,
                b"VP8L" => lossless = true,
                b"ALPH" => alpha = true,
                b"ANIM" | b"ANMF" => animated = true,
                _ => {}
            }
            if lossy || lossless || animated {
                break;
            }
            r.seek_relative(i64::from(size) + i64::from(size & 1))
                .ok()?;
        }
        Some(match (lossy, lossless, alpha, animated) {
            (_, _, _, true) => WORST,
            (true, _, false, _) => 3.0 + 1.5,
            (true, _, true, _) => 4.0 + 1.5 + 5.0,
            (_, true, false, _) => 3.0 + 4.0,
            (_, true, true, _) => 4.0 + 1.0,
            _ => WORST,
        })
    };
    walk(r).unwrap_or(WORST)
}

/// How a decoder lays out 8-bit pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pixels {
    Grey,
    GreyAlpha,
    Rgb,
    Rgba,
    Cmyk,
}

impl Pixels {
    fn bytes(self) -> usize {
        match self {
            Pixels::Grey => 1,
            Pixels::GreyAlpha => 2,
            Pixels::Rgb => 3,
            Pixels::Rgba | Pixels::Cmyk => 4,
        }
    }

    /// One row as RGB. JPEG has no transparency: transparent pixels are shown
    /// over white, as most viewers show them, rather than over whatever colour
    /// they happen to hold.
    fn to_rgb(self, row: &[u8], out: &mut [u8]) {
        let over_white = |c: u8, a: u8| {
            let (c, a) = (u32::from(c), u32::from(a));
            ((c * a + 255 * (255 - a) + 127) / 255) as u8
        };
        let pixels = out.chunks_exact_mut(3);
        match self {
            Pixels::Grey => pixels.zip(row).for_each(|(o, &l)| o.fill(l)),
            Pixels::GreyAlpha => pixels
                .zip(row.chunks_exact(2))
                .for_each(|(o, p)| o.fill(over_white(p[0], p[1]))),
            Pixels::Rgb => {
                let len = out.len().min(row.len());
                out[..len].copy_from_slice(&row[..len]);
            }
            Pixels::Rgba => pixels.zip(row.chunks_exact(4)).for_each(|(o, p)| {
                for c in 0..3 {
                    o[c] = over_white(p[c], p[3]);
                }
            }),
            // As `jpeg_decoder` gives it (Adobe's inverted CMYK already undone).
            Pixels::Cmyk => pixels.zip(row.chunks_exact(4)).for_each(|(o, p)| {
                let k = 255 - u32::from(p[3]);
                for c in 0..3 {
                    o[c] = ((255 - u32::from(p[c])) * k / 255) as u8;
                }
            }),
        }
    }
}

// ---- scaling --------------------------------------------------------------------

/// Scales a picture that arrives as RGB rows, top to bottom, to a fixed size,
/// holding a few rows and the result, never the picture. Whole blocks of
/// pixels are averaged first, down to at most twice the target size, so
/// the Catmull-Rom pass that follows has few taps whatever the source size; it
/// filters each averaged row to the target width, and each target row from
/// the handful of filtered rows its window spans.
struct RowScaler {
    source_width: usize,
    source_height: usize,
    width: usize,
    height: usize,
    block_width: usize,
    block_height: usize,
    rows_in: usize,
    /// Sums of the current band of up to `block_height` rows, per block and channel.
    sums: Vec<u64>,
    band_rows: usize,
    averaged: Vec<f32>,
    columns: Vec<Taps>,
    lines: Vec<Taps>,
    /// Filtered rows still needed, the first being averaged row `window_start`.
    window: VecDeque<Vec<f32>>,
    window_start: usize,
    averaged_rows: usize,
    spare: Vec<Vec<f32>>,
    line_sum: Vec<f32>,
    out: Vec<u8>,
}

impl RowScaler {
    fn new(source_width: usize, source_height: usize, width: usize, height: usize) -> RowScaler {
        let (width, height) = (width.max(1), height.max(1));
        let block_width = source_width.div_ceil(2 * width).max(1);
        let block_height = source_height.div_ceil(2 * height).max(1);
        let blocks_across = source_width.div_ceil(block_width);
        let blocks_down = source_height.div_ceil(block_height);
        let mut out = Vec::new();
        out.reserve_exact(width * height * 3);
        RowScaler {
            source_width,
            source_height,
            width,
            height,
            block_width,
            block_height,
            rows_in: 0,
            sums: vec![0; blocks_across * 3],
            band_rows: 0,
            averaged: vec![0.0; blocks_across * 3],
            columns: taps(blocks_across, width),
            lines: taps(blocks_down, height),
            window: VecDeque::new(),
            window_start: 0,
            averaged_rows: 0,
            spare: Vec::new(),
            line_sum: vec![0.0; width * 3],
            out,
        }
    }

    fn is_identity(&self) -> bool {
        (self.source_width, self.source_height) == (self.width, self.height)
    }

    /// The next row, `source_width` RGB pixels; rows beyond the picture are ignored.
    fn push(&mut self, row: &[u8]) {
        if self.rows_in == self.source_height {
            return;
        }
        self.rows_in += 1;
        if self.is_identity() {
            self.out.extend_from_slice(&row[..self.width * 3]);
            return;
        }
        if (self.block_width, self.block_height) == (1, 1) {
            for (average, &v) in self.averaged.iter_mut().zip(row) {
                *average = f32::from(v);
            }
            self.filter_averaged_row();
            return;
        }
        for (block, sums) in row[..self.source_width * 3]
            .chunks(self.block_width * 3)
            .zip(self.sums.chunks_exact_mut(3))
        {
            for pixel in block.chunks_exact(3) {
                for c in 0..3 {
                    sums[c] += u64::from(pixel[c]);
                }
            }
        }
        self.band_rows += 1;
        if self.band_rows == self.block_height || self.rows_in == self.source_height {
            self.finish_band();
        }
    }

    fn finish_band(&mut self) {
        let last_block = (self.sums.len() / 3).saturating_sub(1);
        let last_width = self
            .source_width
            .saturating_sub(last_block * self.block_width);
        for (i, (average, sums)) in self
            .averaged
            .chunks_exact_mut(3)
            .zip(self.sums.chunks_exact(3))
            .enumerate()
        {
            let block_width = if i == last_block {
                last_width
            } else {
                self.block_width
            };
            let count = (block_width * self.band_rows).max(1) as f32;
            for c in 0..3 {
                average[c] = sums[c] as f32 / count;
            }
        }
        self.sums.fill(0);
        self.band_rows = 0;
        self.filter_averaged_row();
    }

    fn filter_averaged_row(&mut self) {
        let mut filtered = self
            .spare
            .pop()
            .unwrap_or_else(|| vec![0.0; self.width * 3]);
        for (tap, out) in self.columns.iter().zip(filtered.chunks_exact_mut(3)) {
            let (mut r, mut g, mut b) = (0f32, 0f32, 0f32);
            let pixels = self.averaged[tap.start * 3..].chunks_exact(3);
            for (weight, pixel) in tap.weights.iter().zip(pixels) {
                r += weight * pixel[0];
                g += weight * pixel[1];
                b += weight * pixel[2];
            }
            out.copy_from_slice(&[r, g, b]);
        }
        self.window.push_back(filtered);
        self.averaged_rows += 1;

        // Every target row whose window is now complete.
        let next_line = self.out.len() / (self.width * 3);
        for tap in &self.lines[next_line..] {
            if tap.start + tap.weights.len() > self.averaged_rows {
                break;
            }
            self.line_sum.fill(0.0);
            for (k, weight) in tap.weights.iter().enumerate() {
                let row = &self.window[tap.start + k - self.window_start];
                for (acc, &v) in self.line_sum.iter_mut().zip(row) {
                    *acc += weight * v;
                }
            }
            self.out.extend(self.line_sum.iter().map(|&v| to_u8(v)));
        }
        // Rows before the next target row's window are done with.
        let next_line = self.out.len() / (self.width * 3);
        let keep_from = self
            .lines
            .get(next_line)
            .map_or(self.averaged_rows, |tap| tap.start);
        while self.window_start < keep_from {
            match self.window.pop_front() {
                Some(row) => self.spare.push(row),
                None => break,
            }
            self.window_start += 1;
        }
    }

    fn finish(self) -> Result<RgbImage, Failure> {
        if self.rows_in < self.source_height {
            return Err(damaged("the picture ends early"));
        }
        RgbImage::from_raw(self.width as u32, self.height as u32, self.out)
            .ok_or_else(|| damaged("the picture ends early"))
    }
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

/// A chat preview's size: within 2560×2560, and never thinner than Telegram's
/// 20:1 because of rounding the short side down.
fn fit_for_chat(width: u32, height: u32) -> (u32, u32) {
    let (w, h) = fit_within(width, height, PREVIEW_SIDE, PREVIEW_SIDE);
    let ratio = telegram::MAX_PHOTO_RATIO as u32;
    if w >= h {
        (w, h.max(w.div_ceil(ratio)))
    } else {
        (w.max(h.div_ceil(ratio)), h)
    }
}

fn write_jpeg_atomically(image: &RgbImage, target: &Path, quality: u8) -> Result<()> {
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
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut writer, quality)
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

/// What a JPEG's frame header and the EXIF before it say.
struct JpegHeader {
    /// As stored, before any EXIF rotation.
    width: u32,
    height: u32,
    orientation: Orientation,
    /// SOF0 baseline, SOF1 extended, SOF2 progressive, or another frame type.
    frame_marker: u8,
    precision: u8,
    /// Each component's horizontal and vertical sampling factors.
    sampling: Vec<(u8, u8)>,
}

/// A JPEG's displayed size from its frame header, swapped when its EXIF
/// orientation turns it a quarter turn. Reads only the segments before the frame.
fn jpeg_dimensions<R: BufRead + Seek>(r: &mut R) -> Option<(u32, u32)> {
    let header = jpeg_header(r)?;
    Some(if quarter_turn(header.orientation) {
        (header.height, header.width)
    } else {
        (header.width, header.height)
    })
}

fn jpeg_header<R: BufRead + Seek>(r: &mut R) -> Option<JpegHeader> {
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
            let mut frame = vec![0u8; usize::from(length)];
            r.read_exact(&mut frame).ok()?;
            let (&precision, rest) = frame.split_first()?;
            let height = u32::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
            let width = u32::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
            if width == 0 || height == 0 {
                return None;
            }
            let count = usize::from(*rest.get(4)?);
            let sampling = rest
                .get(5..5 + 3 * count)?
                .chunks_exact(3)
                .map(|c| (c[1] >> 4, c[1] & 0x0F))
                .collect();
            return Some(JpegHeader {
                width,
                height,
                orientation,
                frame_marker: marker,
                precision,
                sampling,
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
        let (found, payload, box_end) = box_at(r, at, end)?;
        if found == kind {
            return Some((payload, box_end));
        }
        at = box_end;
    }
    None
}

/// The box whose header starts at `at`: its kind, where its payload starts and
/// where it ends. `None` when the header cannot be read or the box does not fit
/// in `at..end`.
fn box_at<R: Read + Seek>(r: &mut R, at: u64, end: u64) -> Option<([u8; 4], u64, u64)> {
    r.seek(SeekFrom::Start(at)).ok()?;
    let mut header = [0u8; 8];
    r.read_exact(&mut header).ok()?;
    let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let (size, header_len) = match size32 {
        0 => (end.checked_sub(at)?, 8), // to the end of the enclosing space
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
    let kind = [header[4], header[5], header[6], header[7]];
    Some((kind, at + header_len, box_end))
}

/// The boxes an MP4 or QuickTime movie may begin with: `ftyp`, or in older
/// QuickTime files the movie, its media data or padding.
const FIRST_MOVIE_BOXES: [&[u8; 4]; 7] = [
    b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot",
];

/// Why a file of `file_len` bytes is not an MP4 or QuickTime movie, if it is
/// not: its top-level boxes must begin with one a movie begins with, follow each
/// other to the end of the file (fewer than 8 stray bytes at the end pass), and
/// include the `moov` that describes the media. Only box headers are read.
/// A file with more top-level boxes than a budget allows (a long fragmented
/// recording) passes once the budget is spent.
pub fn mp4_structure_problem<R: Read + Seek>(r: &mut R, file_len: u64) -> Option<&'static str> {
    const NOT_A_MOVIE: &str = "it is not an MP4 or QuickTime movie";
    let mut first = [0u8; 8];
    if r.seek(SeekFrom::Start(0)).is_err() || r.read_exact(&mut first).is_err() {
        return Some(NOT_A_MOVIE);
    }
    if !FIRST_MOVIE_BOXES.iter().any(|kind| first[4..8] == kind[..]) {
        return Some(NOT_A_MOVIE);
    }
    let mut budget = 4096u32;
    let mut has_moov = false;
    let mut at = 0u64;
    while at.saturating_add(8) <= file_len {
        budget -= 1;
        if budget == 0 {
            return None;
        }
        let Some((kind, _, box_end)) = box_at(r, at, file_len) else {
            return Some("it is damaged: a box runs past the end of the file (cut short?)");
        };
        has_moov |= &kind == b"moov";
        at = box_end;
    }
    if !has_moov {
        return Some("it is damaged: it has no movie header (moov box)");
    }
    None
}

/// What a story's chat message carries: the file_id once Telegram has the
/// item, else the file to upload, which for a photo beyond Telegram's limits
/// is its preview (made now when not cached in `cache_dir`). `Err` is why
/// Telegram cannot be shown the photo at all.
pub fn chat_source(
    item: &MediaItem,
    path: &Path,
    cache_dir: &Path,
) -> std::result::Result<FileSource, String> {
    let upload = |path: &Path, file_name: String| FileSource::Upload {
        path: path.to_string_lossy().into_owned(),
        file_name,
    };
    if let Some(id) = &item.telegram_file_id {
        return Ok(FileSource::FileId(id.clone()));
    }
    let name = item
        .path
        .rsplit('/')
        .next()
        .unwrap_or(&item.path)
        .to_string();
    if item.kind != crate::domain::status::MediaKind::Image {
        return Ok(upload(path, name));
    }
    match chat_photo(path, &item.sha256, cache_dir) {
        Ok(ChatPhoto::Original) => Ok(upload(path, name)),
        Ok(ChatPhoto::Preview(preview)) => {
            let stem = name
                .rsplit_once('.')
                .map_or(name.as_str(), |(stem, _)| stem);
            Ok(upload(&preview, format!("{stem}.jpg")))
        }
        Err(ChatPhotoError::Unshowable(reason)) => Err(reason),
        // Sent as it is: the outbox reports what goes wrong, and the item
        // stays eligible, as it may be readable next time.
        Err(ChatPhotoError::Unreadable(e)) => {
            log::warn!("{}: {e:#}", item.path);
            Ok(upload(path, name))
        }
    }
}

/// Where converted images wait until their story is decided: beside the database.
pub fn cache_dir(config: &crate::config::Config) -> PathBuf {
    config
        .storage
        .database
        .parent()
        .map(|dir| dir.join("cache"))
        .unwrap_or_else(|| PathBuf::from("cache"))
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

    /// A whole picture through the row scaler.
    fn resample(image: &RgbImage, width: u32, height: u32) -> RgbImage {
        let mut scaler = RowScaler::new(
            image.width() as usize,
            image.height() as usize,
            width as usize,
            height as usize,
        );
        for row in image.as_raw().chunks_exact(image.width() as usize * 3) {
            scaler.push(row);
        }
        scaler.finish().unwrap()
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

    #[test]
    fn chat_previews_fit_telegram() {
        let cases = [
            ((9000, 1500), (2560, 427)),
            ((1500, 9000), (427, 2560)),
            ((8160, 6120), (2560, 1920)),
            ((2000, 2000), (2000, 2000)),
            // Exactly 20:1 stays within 20:1 although 2560/20 is 128 exactly…
            ((20_000, 1000), (2560, 128)),
            // …and rounding the short side down would make this one 20.16:1.
            ((40_000, 1999), (2560, 128)),
        ];
        for (size, want) in cases {
            let got = fit_for_chat(size.0, size.1);
            assert_eq!(got, want, "{size:?}");
            let (long, short) = (got.0.max(got.1), got.0.min(got.1));
            assert!(
                long <= 20 * short && got.0 + got.1 <= 10_000,
                "{size:?}: {got:?}"
            );
        }
    }

    /// Counts the bytes allocated on the current thread, to show that a
    /// conversion never holds the whole picture.
    mod meter {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        thread_local! {
            static LIVE: Cell<isize> = const { Cell::new(0) };
            static PEAK: Cell<isize> = const { Cell::new(0) };
        }

        pub struct Meter;

        fn add(bytes: isize) {
            let _ = LIVE.try_with(|live| {
                let now = live.get() + bytes;
                live.set(now);
                let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
            });
        }

        unsafe impl GlobalAlloc for Meter {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                let p = unsafe { System.alloc(layout) };
                if !p.is_null() {
                    add(layout.size() as isize);
                }
                p
            }
            unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
                let p = unsafe { System.alloc_zeroed(layout) };
                if !p.is_null() {
                    add(layout.size() as isize);
                }
                p
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                unsafe { System.dealloc(ptr, layout) };
                add(-(layout.size() as isize));
            }
            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                let p = unsafe { System.realloc(ptr, layout, new_size) };
                if !p.is_null() {
                    add(new_size as isize - layout.size() as isize);
                }
                p
            }
        }

        #[global_allocator]
        static METER: Meter = Meter;

        /// `f`'s result and the most bytes it had allocated at once on this thread.
        pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
            let start = LIVE.with(Cell::get);
            PEAK.with(|peak| peak.set(start));
            let result = f();
            let peak = PEAK.with(Cell::get) - start;
            (result, peak.max(0) as usize)
        }
    }

    /// A PNG of a few hundred bytes that claims `width`×`height` pixels: its
    /// header, one IDAT chunk that starts a zlib stream, and no end.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in bytes {
                crc ^= u32::from(b);
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
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, not interlaced
        chunk(&mut png, b"IHDR", &ihdr);
        chunk(&mut png, b"IDAT", &[0x78, 0x01, 0x00, 0x00, 0x00]);
        png
    }

    #[test]
    fn a_png_bomb_is_refused_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let source = dir.path().join("bomb.png");
        std::fs::write(&source, png_claiming(12_000, 12_000)).unwrap();
        let want = "12000×12000 pixels is more than Storyline opens \
                    (up to 120 megapixels, 65535 pixels a side); export it smaller";

        let (result, peak) = meter::peak_during(|| prepare_image(&source, SHA, &cache));
        let error = format!("{:#}", result.unwrap_err());
        assert_eq!(error, format!("{}: {want}", source.display()));
        assert!(peak < 1_000_000, "{peak} bytes");

        match chat_photo(&source, SHA, &cache) {
            Err(ChatPhotoError::Unshowable(reason)) => assert_eq!(reason, want),
            other => panic!("{other:?}"),
        }
        // One wider than any JPEG, few pixels as it has.
        std::fs::write(&source, png_claiming(70_000, 10)).unwrap();
        let error = format!("{:#}", prepare_image(&source, SHA, &cache).unwrap_err());
        assert!(
            error.contains("70000×10 pixels is more than Storyline opens"),
            "{error}"
        );
        assert!(!cache.exists());
    }

    #[test]
    fn a_large_png_is_scaled_row_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let source = write_image(
            dir.path(),
            "large.png",
            DynamicImage::ImageRgb8(gradient(2400, 2400)),
            ImageFormat::Png,
        );
        // Whole, it would be 17 MB of pixels; the result is 3.5 MB.
        let (prepared, peak) = meter::peak_during(|| prepare_image(&source, SHA, &cache).unwrap());
        assert_eq!((prepared.width, prepared.height), (1080, 1080));
        assert!(peak < 6_000_000, "{peak} bytes at the peak");
        // The colours survive: the top left corner is dark, as in the source.
        let jpeg = decoded(&prepared.path).into_rgb8();
        assert!(
            jpeg.get_pixel(0, 0).0.iter().all(|&c| c < 40),
            "{:?}",
            jpeg.get_pixel(0, 0)
        );
    }

    /// A WebP header (lossless, no alpha) claiming `width`×`height` pixels.
    fn webp_claiming(width: u32, height: u32) -> Vec<u8> {
        let bits = (width - 1) | ((height - 1) << 14);
        let mut vp8l = vec![0x2F];
        vp8l.extend_from_slice(&bits.to_le_bytes());
        vp8l.extend_from_slice(&[0; 16]);
        let mut webp = b"RIFF".to_vec();
        webp.extend_from_slice(&((4 + 8 + vp8l.len()) as u32).to_le_bytes());
        webp.extend_from_slice(b"WEBPVP8L");
        webp.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
        webp.extend_from_slice(&vp8l);
        webp
    }

    #[test]
    fn what_must_be_decoded_whole_is_refused_over_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let webp = dir.path().join("large.webp");
        std::fs::write(&webp, webp_claiming(6000, 4000)).unwrap();
        let error = format!("{:#}", prepare_image(&webp, SHA, &cache).unwrap_err());
        assert!(
            error.ends_with(
                "6000×4000 pixels is more than Storyline opens in a WebP \
                 (up to about 7.2 megapixels); export it smaller"
            ),
            "{error}"
        );

        // A progressive 50 MP JPEG keeps 150 MB of coefficients: a small
        // baseline JPEG whose frame header says so is refused before decoding.
        let mut jpeg = Vec::new();
        DynamicImage::ImageRgb8(gradient(64, 48))
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 1] = 0xC2;
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0x17, 0xE8, 0x1F, 0xE0]); // 6120 high, 8160 wide
        let source = dir.path().join("progressive.jpg");
        std::fs::write(&source, &jpeg).unwrap();
        match chat_photo(&source, SHA, &cache) {
            Err(ChatPhotoError::Unshowable(reason)) => assert!(
                reason.starts_with(
                    "8160×6120 pixels is more than Storyline opens in a progressive JPEG"
                ),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(!cache.exists());
    }

    #[test]
    fn photos_within_telegram_limits_go_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        for (name, format) in [("a.jpg", ImageFormat::Jpeg), ("a.png", ImageFormat::Png)] {
            let source = write_image(
                dir.path(),
                name,
                DynamicImage::ImageRgb8(gradient(400, 7000)),
                format,
            );
            assert_eq!(
                chat_photo(&source, SHA, &cache).unwrap(),
                ChatPhoto::Original,
                "{name}"
            );
        }
        assert!(!cache.exists());
    }

    #[test]
    fn a_photo_beyond_telegram_limits_gets_a_preview() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        // Sides adding up to 10,500; an EXIF quarter turn shows it upright.
        let mut jpeg = Vec::new();
        DynamicImage::ImageRgb8(RgbImage::from_pixel(9000, 1500, image::Rgb([200, 30, 30])))
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        let mut rotated = jpeg[..2].to_vec();
        rotated.extend_from_slice(&exif_rotate_90());
        rotated.extend_from_slice(&jpeg[2..]);
        let source = dir.path().join("tall.jpg");
        std::fs::write(&source, &rotated).unwrap();

        let preview = match chat_photo(&source, SHA, &cache).unwrap() {
            ChatPhoto::Preview(path) => path,
            other => panic!("{other:?}"),
        };
        assert_eq!(preview, cache.join(format!("{SHA}.chat.jpg")));
        let image = decoded(&preview).into_rgb8();
        assert_eq!(image.dimensions(), (427, 2560));
        let centre = image.get_pixel(213, 1280).0;
        assert!(
            centre
                .iter()
                .zip([200, 30, 30])
                .all(|(&a, b)| a.abs_diff(b) <= 8),
            "{centre:?}"
        );
        // Reused while it exists, even with the source gone, and kept when the
        // story's Instagram JPEG goes: the chat's upload may still be queued.
        std::fs::remove_file(&source).unwrap();
        remove_cached(SHA, &cache);
        assert_eq!(
            chat_photo(&source, SHA, &cache).unwrap(),
            ChatPhoto::Preview(preview.clone())
        );
    }

    #[test]
    fn photos_telegram_cannot_show_are_said_why() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let long = write_image(
            dir.path(),
            "long.jpg",
            DynamicImage::ImageRgb8(gradient(3000, 100)),
            ImageFormat::Jpeg,
        );
        // Telegram judges what cannot be read when it is within its limits…
        let small = dir.path().join("small.jpg");
        std::fs::write(&small, b"hello").unwrap();
        assert_eq!(
            chat_photo(&small, SHA, &cache).unwrap(),
            ChatPhoto::Original
        );
        // …but no preview can be made of it when it is not (sparse files).
        let damaged = dir.path().join("damaged.png");
        std::fs::write(&damaged, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        let text = dir.path().join("text.jpg");
        std::fs::write(&text, b"hello").unwrap();
        for path in [&damaged, &text] {
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(10_000_001)
                .unwrap();
        }
        let cases = [
            (
                &long,
                "it is 3000×100 pixels, more than 20 times as long as it is wide, \
                 and Telegram shows no photo that long",
            ),
            (&damaged, "it could not be read as an image: "),
            (&text, "it is not a JPEG, PNG or WebP file"),
        ];
        for (path, want) in cases {
            match chat_photo(path, SHA, &cache) {
                Err(ChatPhotoError::Unshowable(reason)) => {
                    assert!(reason.starts_with(want), "{}: {reason}", path.display())
                }
                other => panic!("{}: {other:?}", path.display()),
            }
        }
        match chat_photo(&dir.path().join("gone.jpg"), SHA, &cache) {
            Err(ChatPhotoError::Unreadable(e)) => {
                assert!(
                    format!("{e:#}").contains("gone.jpg could not be read"),
                    "{e:#}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rows_become_rgb_over_white() {
        let cases: [(Pixels, &[u8], [u8; 3]); 6] = [
            (Pixels::Grey, &[77], [77, 77, 77]),
            (Pixels::GreyAlpha, &[0, 0], [255, 255, 255]),
            (Pixels::GreyAlpha, &[0, 255], [0, 0, 0]),
            (Pixels::Rgba, &[255, 0, 0, 128], [255, 127, 127]),
            (Pixels::Cmyk, &[0, 0, 0, 0], [255, 255, 255]),
            (Pixels::Cmyk, &[255, 0, 255, 0], [0, 255, 0]),
        ];
        for (layout, row, want) in cases {
            let mut out = [0u8; 3];
            layout.to_rgb(row, &mut out);
            assert_eq!(out, want, "{layout:?} {row:?}");
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
    /// And the structure check (the scanner's) does not panic on the same input.
    fn check_duration(bytes: &[u8], claimed_len: u64) -> Result<(), TestCaseError> {
        if let Some(seconds) = mp4_duration(&mut Cursor::new(bytes), claimed_len) {
            prop_assert!(seconds.is_finite() && seconds > 0.0, "{}", seconds);
        }
        let _ = mp4_structure_problem(&mut Cursor::new(bytes), claimed_len);
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
            // After an ftyp, the same boxes are a movie to the scanner.
            let mut movie = mp4_box(b"ftyp", b"isom");
            movie.extend_from_slice(&file);
            prop_assert_eq!(
                mp4_structure_problem(&mut Cursor::new(&movie), movie.len() as u64),
                None
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
