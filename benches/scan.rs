//! The media scanner's figures on a library of 10,000 files (1–200 KB, five
//! categories, pseudo-random content, about 1 GB): hashing speed of a cold scan
//! against `sha256sum` over the same files, peak memory of `storyline scan`, and
//! the time of a warm rescan that finds nothing new, through the binary and
//! in-process. Run with `cargo bench --bench scan`.
//!
//! Every run reads from a warm page cache (the files are read once before the
//! first timing), so the figures compare hashing and bookkeeping, not the disk.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use storyline::db;
use storyline::media::Scanner;

const FILES: usize = 10_000;
const CATEGORIES: [&str; 5] = ["quotes", "travel", "food", "people", "archive"];
const EXTENSIONS: [&str; 5] = ["jpg", "png", "jpeg", "webp", "mp4"];
const MIN_SIZE: u64 = 1024;
const MAX_SIZE: u64 = 200 * 1024;

/// xorshift64*: the same library on every run, without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Writes the library; returns its size in bytes.
fn generate(media: &Path) -> u64 {
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut buffer = vec![0u8; MAX_SIZE as usize];
    let mut total = 0;
    for i in 0..FILES {
        let category = CATEGORIES[i % CATEGORIES.len()];
        // A third of each category sits one folder deeper, as albums do.
        let folder = match i % 3 {
            0 => media.join(category).join(format!("album-{}", i % 4)),
            _ => media.join(category),
        };
        fs::create_dir_all(&folder).unwrap();
        let size = MIN_SIZE + rng.next() % (MAX_SIZE - MIN_SIZE + 1);
        for chunk in buffer[..size as usize].chunks_mut(8) {
            let bytes = rng.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        let extension = EXTENSIONS[i % EXTENSIONS.len()];
        put_header(extension, &mut buffer[..size as usize]);
        let name = format!("{i:05}.{extension}");
        File::create(folder.join(name))
            .unwrap()
            .write_all(&buffer[..size as usize])
            .unwrap();
        total += size;
    }
    total
}

/// Makes the start of `content` what the scanner checks for its extension (the
/// rest stays random): a JPEG, PNG or WebP signature, or an MP4's `ftyp`, an
/// empty `moov` and an `mdat` holding the rest.
fn put_header(extension: &str, content: &mut [u8]) {
    let header: Vec<u8> = match extension {
        "jpg" | "jpeg" => b"\xFF\xD8\xFF\xE0".to_vec(),
        "png" => b"\x89PNG\r\n\x1a\n".to_vec(),
        "webp" => {
            let mut riff = b"RIFF".to_vec();
            riff.extend_from_slice(&(content.len() as u32 - 8).to_le_bytes());
            riff.extend_from_slice(b"WEBP");
            riff
        }
        "mp4" => {
            let mut boxes = b"\0\0\0\x10ftypisom\0\0\0\0\0\0\0\x08moov".to_vec();
            boxes.extend_from_slice(&(content.len() as u32 - 24).to_be_bytes());
            boxes.extend_from_slice(b"mdat");
            boxes
        }
        other => panic!("no header for .{other}"),
    };
    content[..header.len()].copy_from_slice(&header);
}

/// Reads every file once so that every timed run sees a warm page cache.
fn warm_page_cache(dir: &Path, buffer: &mut [u8]) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            warm_page_cache(&entry.path(), buffer);
        } else {
            let mut file = File::open(entry.path()).unwrap();
            while file.read(buffer).unwrap() > 0 {}
        }
    }
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1_000_000.0 / elapsed.as_secs_f64()
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

enum BinaryRun {
    Done {
        elapsed: Duration,
        peak_kb: u64,
        summary: String,
    },
    /// The binary does not know `scan` yet.
    Unavailable,
    Failed(String),
}

/// Runs `storyline --config CONFIG scan`, sampling its peak RSS every 5 ms: VmHWM
/// only grows, so the last sample before it exits is the peak, give or take the
/// final 5 ms.
fn run_binary_scan(config: &Path) -> BinaryRun {
    let out = config.with_file_name("scan.out");
    let err = config.with_file_name("scan.err");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_storyline"))
        .arg("--config")
        .arg(config)
        .arg("scan")
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .expect("starting storyline");
    let pid = child.id();
    let mut peak_kb = 0;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let stdout = fs::read_to_string(&out).unwrap_or_default();
    let stderr = fs::read_to_string(&err).unwrap_or_default();
    if status.code() == Some(2) && stderr.contains("unknown command") {
        return BinaryRun::Unavailable;
    }
    if !status.success() {
        return BinaryRun::Failed(format!("{status}: {}", stderr.trim()));
    }
    BinaryRun::Done {
        elapsed,
        peak_kb,
        summary: stdout.lines().next().unwrap_or("").to_string(),
    }
}

/// Scans in-process with a fresh `Scanner`, as the daemon's first scan does.
fn library_scan(database: &Path, media: &Path) -> (Duration, storyline::media::ScanReport) {
    let mut conn = db::open(database).unwrap();
    let started = Instant::now();
    let report = Scanner::new()
        .scan(&mut conn, media, chrono::Utc::now(), &mut |_| {})
        .unwrap();
    (started.elapsed(), report)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    let started = Instant::now();
    let total = generate(&media);
    println!(
        "library: {FILES} files in {} categories, {:.1} MB (written in {:.1} s)",
        CATEGORIES.len(),
        total as f64 / 1_000_000.0,
        started.elapsed().as_secs_f64()
    );
    warm_page_cache(&media, &mut vec![0u8; 1 << 20]);

    // The better of two runs, so a stray hiccup does not flatter the scanner.
    let sha256sum = (0..2)
        .map(|_| {
            let started = Instant::now();
            let status = Command::new("sh")
                .arg("-c")
                .arg("find \"$1\" -type f -print0 | xargs -0 sha256sum > /dev/null")
                .arg("sh")
                .arg(&media)
                .status()
                .expect("running sha256sum");
            assert!(status.success(), "sha256sum failed: {status}");
            started.elapsed()
        })
        .min()
        .unwrap();
    let sha256sum_rate = mb_per_s(total, sha256sum);
    println!(
        "sha256sum: {:.2} s, {sha256sum_rate:.0} MB/s",
        sha256sum.as_secs_f64()
    );

    let config = dir.path().join("storyline.toml");
    fs::write(
        &config,
        "[storage]\ndatabase = \"bench.db\"\n\n[media]\ndir = \"media\"\n",
    )
    .unwrap();
    match run_binary_scan(&config) {
        BinaryRun::Done {
            elapsed,
            peak_kb,
            summary,
        } => {
            let rate = mb_per_s(total, elapsed);
            println!(
                "storyline scan, cold: {:.2} s, {rate:.0} MB/s = {:.0} % of sha256sum (goal ≥ 80 %) [{summary}]",
                elapsed.as_secs_f64(),
                100.0 * rate / sha256sum_rate
            );
            println!(
                "storyline scan, cold: peak RSS {:.1} MB (goal < 16 MB)",
                peak_kb as f64 / 1024.0
            );
            match run_binary_scan(&config) {
                BinaryRun::Done {
                    elapsed, summary, ..
                } => println!(
                    "storyline scan, warm: {} ms, process start-up included (goal < 100 ms) [{summary}]",
                    elapsed.as_millis()
                ),
                BinaryRun::Unavailable => unreachable!("it ran a moment ago"),
                BinaryRun::Failed(why) => println!("storyline scan, warm: failed: {why}"),
            }
        }
        BinaryRun::Unavailable => {
            println!(
                "storyline scan: not available in this build (the binary does not know `scan` yet)"
            );
        }
        BinaryRun::Failed(why) => println!("storyline scan: failed: {why}"),
    }

    let database = dir.path().join("library.db");
    let (elapsed, report) = library_scan(&database, &media);
    assert_eq!(report.new, FILES, "the cold scan indexed every file");
    let rate = mb_per_s(report.bytes_hashed, elapsed);
    println!(
        "Scanner::scan in-process, cold: {:.2} s, {rate:.0} MB/s = {:.0} % of sha256sum",
        elapsed.as_secs_f64(),
        100.0 * rate / sha256sum_rate
    );
    let mut warm: Vec<Duration> = (0..5)
        .map(|_| {
            let (elapsed, report) = library_scan(&database, &media);
            assert_eq!(
                (report.unchanged, report.bytes_hashed),
                (FILES, 0),
                "a warm scan reads nothing"
            );
            elapsed
        })
        .collect();
    warm.sort();
    println!(
        "Scanner::scan in-process, warm: {:.1} ms median of 5 (min {:.1} ms; goal < 100 ms)",
        warm[2].as_secs_f64() * 1000.0,
        warm[0].as_secs_f64() * 1000.0
    );
}
