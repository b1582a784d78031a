//! Peak memory and time of converting images, hostile and normal: PNG bombs of
//! 12000×12000 and 10000×10000 pixels (a few hundred KB on disk), 108 MP and
//! 50 MP camera JPEGs, a large WebP, and ordinary pictures. Each input goes
//! through both conversions: "story" (`prepare_image`, the JPEG Instagram
//! fetches) and "chat" (`chat_photo`, the preview Telegram is sent). Each runs
//! in a child process of this binary, which reports its own peak RSS (VmHWM)
//! once done, so one input's peak never hides another's. Run with
//! `cargo bench --bench convert`.
//!
//! The inputs are written once into Cargo's bench scratch folder and reused.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use image::{DynamicImage, ImageFormat, RgbImage};
use storyline::media::convert;

const SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// What a child does with its input: the Instagram JPEG or the chat's photo.
const MODES: [&str; 2] = ["story", "chat"];

struct Input {
    name: &'static str,
    what: &'static str,
    make: fn(&Path),
}

const INPUTS: [Input; 9] = [
    Input {
        name: "bomb.png",
        what: "12000×12000 PNG, solid colour",
        make: |p| solid_png(p, 12_000, 12_000),
    },
    Input {
        name: "bomb-100mp.png",
        what: "10000×10000 PNG, solid colour",
        make: |p| solid_png(p, 10_000, 10_000),
    },
    Input {
        name: "camera-108mp.jpg",
        what: "12000×9000 JPEG (108 MP)",
        make: |p| jpeg(p, 12_000, 9000),
    },
    Input {
        name: "camera.jpg",
        what: "8160×6120 JPEG (50 MP)",
        make: |p| jpeg(p, 8160, 6120),
    },
    Input {
        name: "large.webp",
        what: "6000×4000 WebP (lossless)",
        make: |p| save(p, 6000, 4000, ImageFormat::WebP),
    },
    Input {
        name: "wide.jpg",
        what: "9000×1500 JPEG",
        make: |p| jpeg(p, 9000, 1500),
    },
    Input {
        name: "story.png",
        what: "2160×3840 PNG",
        make: |p| save(p, 2160, 3840, ImageFormat::Png),
    },
    Input {
        name: "photo.webp",
        what: "2000×3000 WebP (lossless)",
        make: |p| save(p, 2000, 3000, ImageFormat::WebP),
    },
    Input {
        name: "phone.jpg",
        what: "3024×4032 JPEG (12 MP)",
        make: |p| jpeg(p, 3024, 4032),
    },
];

/// A picture with detail everywhere, so that coders have work to do.
fn picture(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let noise = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 32;
        image::Rgb([
            (x % 256) as u8,
            (y % 256) as u8,
            ((x / 3 + y / 5 + noise) % 256) as u8,
        ])
    })
}

fn save(path: &Path, width: u32, height: u32, format: ImageFormat) {
    DynamicImage::ImageRgb8(picture(width, height))
        .save_with_format(path, format)
        .unwrap();
}

fn jpeg(path: &Path, width: u32, height: u32) {
    let file = BufWriter::new(File::create(path).unwrap());
    image::codecs::jpeg::JpegEncoder::new_with_quality(file, 90)
        .encode_image(&picture(width, height))
        .unwrap();
}

/// Written row by row: the bomb is cheap to make and to store, costly to open.
fn solid_png(path: &Path, width: u32, height: u32) {
    let file = BufWriter::new(File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let row: Vec<u8> = [40u8, 90, 160].repeat(width as usize);
    for _ in 0..height {
        std::io::Write::write_all(&mut stream, &row).unwrap();
    }
    stream.finish().unwrap();
}

fn vm_hwm_kb() -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// In the child: one conversion, then "start_kb peak_kb millis outcome".
fn child(mode: &str, source: &Path, cache: &Path) {
    let start_kb = vm_hwm_kb();
    let started = Instant::now();
    let outcome = match mode {
        "story" => convert::prepare_image(source, SHA, cache)
            .map(|p| format!("{}×{} {} KB", p.width, p.height, p.bytes / 1000)),
        "chat" => match convert::chat_photo(source, SHA, cache) {
            Ok(convert::ChatPhoto::Original) => Ok("the original".to_string()),
            Ok(convert::ChatPhoto::Preview(path)) => {
                let (width, height) = image::image_dimensions(&path).unwrap();
                let bytes = fs::metadata(&path).unwrap().len();
                Ok(format!("preview {width}×{height} {} KB", bytes / 1000))
            }
            Err(convert::ChatPhotoError::Unshowable(reason)) => Err(anyhow::anyhow!(reason)),
            Err(convert::ChatPhotoError::Unreadable(e)) => Err(e),
        },
        other => panic!("unknown mode {other}"),
    };
    let millis = started.elapsed().as_millis();
    let outcome = match outcome {
        Ok(text) => text,
        Err(e) => format!("refused: {e:#}"),
    };
    println!("{start_kb} {} {millis} {outcome}", vm_hwm_kb());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child(&args[2], Path::new(&args[3]), Path::new(&args[4]));
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("convert-bench");
    fs::create_dir_all(&dir).unwrap();
    for input in &INPUTS {
        let path = dir.join(input.name);
        if !path.exists() {
            let partial = dir.join(format!("{}.partial", input.name));
            (input.make)(&partial);
            fs::rename(&partial, &path).unwrap();
        }
    }
    let me = std::env::current_exe().unwrap();
    println!(
        "{:<34} {:>9} {:>6} {:>10} {:>8}  outcome",
        "input", "file KB", "mode", "peak MB", "ms"
    );
    for input in &INPUTS {
        let path = dir.join(input.name);
        let file_kb = fs::metadata(&path).unwrap().len() / 1000;
        for mode in MODES {
            let cache = dir.join("cache");
            let _ = fs::remove_dir_all(&cache);
            let output = Command::new(&me)
                .args(["child", mode])
                .arg(&path)
                .arg(&cache)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let line = stdout.lines().last().unwrap_or_default().to_string();
            let mut fields = line.splitn(4, ' ');
            let (Some(start), Some(peak), Some(ms), Some(outcome)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                println!(
                    "{:<34} child failed: {} {}",
                    input.what,
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                );
                continue;
            };
            let mb = |kb: &str| kb.parse::<f64>().unwrap_or(0.0) / 1024.0;
            println!(
                "{:<34} {file_kb:>9} {mode:>6} {:>10.1} {ms:>8}  {outcome} (at start {:.1} MB)",
                input.what,
                mb(peak),
                mb(start)
            );
        }
    }
    let _ = fs::remove_dir_all(dir.join("cache"));
}
