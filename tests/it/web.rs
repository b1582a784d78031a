//! The web server in-process: signed media links (what Instagram fetches), the
//! refusals, /healthz, and the bounds a public server needs (slow clients,
//! oversized requests, a full connection table, shutdown). Driven with ureq
//! and, where a client would tidy the request up, with raw bytes over TCP. The
//! last test attacks the real daemon's page with idle and trickling sockets.

use std::io::{Cursor, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use image::{DynamicImage, ImageFormat, RgbImage};
use serde_json::Value;
use storyline::signing::UrlSigner;
use storyline::web::{self, WebState};

use crate::helpers::WAIT;
use crate::support::{describe_output, wait_until, Env};

const KEY: [u8; 32] = [3; 32];

struct Site {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    db: rusqlite::Connection,
    last_poll: Arc<AtomicI64>,
    shutdown: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    agent: ureq::Agent,
}

impl Site {
    fn start() -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("media")).unwrap();
        let db_path = dir.path().join("state/storyline.db");
        let db = storyline::db::open(&db_path).unwrap();
        let last_poll = Arc::new(AtomicI64::new(0));
        let shutdown = Arc::new(AtomicBool::new(false));
        let state = WebState {
            signer: UrlSigner::new(&KEY),
            media_dir: dir.path().join("media"),
            cache_dir: dir.path().join("state/cache"),
            db_path,
            started: Instant::now(),
            last_poll_unix: last_poll.clone(),
            poll_timeout_secs: 30,
            oauth: None,
        };
        let (addr, threads) =
            web::start("127.0.0.1:0".parse().unwrap(), state, shutdown.clone()).unwrap();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Generous: converting a photo on a loaded 2-core machine running eight
            // tests at once took over 10 s; no test measures time with this agent.
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Site {
            addr,
            dir,
            db,
            last_poll,
            shutdown,
            threads,
            agent,
        }
    }

    /// Writes a file under the media folder and indexes it; returns its id.
    fn add(&self, relative: &str, kind: &str, bytes: &[u8]) -> i64 {
        let path = self.dir.path().join("media").join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        self.index(relative, kind, &format!("{:064x}", fnv(bytes)))
    }

    fn index(&self, relative: &str, kind: &str, sha256: &str) -> i64 {
        self.db
            .query_row(
                "INSERT INTO media_items (path, category, kind, size, mtime_ns, sha256, first_seen, last_seen)
                 VALUES (?1, 'quotes', ?2, 0, 0, ?3, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')
                 RETURNING id",
                rusqlite::params![relative, kind, sha256],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn signed(&self, item_id: i64) -> String {
        UrlSigner::new(&KEY).sign_path(item_id, now() + 3600)
    }

    fn get(&self, path: &str) -> Fetched {
        let mut response = self.agent.get(self.url(path)).call().unwrap();
        Fetched::from(&mut response)
    }

    fn stop(mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut self.threads);
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for thread in threads {
                thread.join().unwrap();
            }
            let _ = done_tx.send(());
        });
        done_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the web server stops within 5 s of the shutdown flag");
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }
}

struct Fetched {
    status: u16,
    content_type: String,
    content_length: Option<u64>,
    body: Vec<u8>,
}

impl Fetched {
    fn from(response: &mut ureq::http::Response<ureq::Body>) -> Fetched {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let content_type = header("content-type").unwrap_or_default();
        let content_length = header("content-length").map(|v| v.parse().unwrap());
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap();
        Fetched {
            status: response.status().as_u16(),
            content_type,
            content_length,
            body,
        }
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A stand-in digest: the server only uses it to name the cache file.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let picture = RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(picture)
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

/// Sends `request` as it is and returns everything the server answers.
fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may refuse before the whole request is written.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_of(answer: &str) -> &str {
    answer.get(9..12).unwrap_or(answer)
}

#[test]
fn a_signed_jpeg_link_returns_the_file_as_it_is() {
    let site = Site::start();
    let jpeg = encoded(300, 500, ImageFormat::Jpeg);
    let id = site.add("quotes/morning.jpg", "image", &jpeg);
    let got = site.get(&site.signed(id));
    assert_eq!(got.status, 200);
    assert_eq!(got.content_type, "image/jpeg");
    assert_eq!(got.content_length, Some(jpeg.len() as u64));
    assert!(got.body == jpeg, "the exact bytes");

    let mut head = site.agent.head(site.url(&site.signed(id))).call().unwrap();
    let head = Fetched::from(&mut head);
    assert_eq!(
        (head.status, head.content_length, head.body.len()),
        (200, Some(jpeg.len() as u64), 0)
    );
    site.stop();
}

#[test]
fn a_png_is_served_as_a_story_sized_jpeg() {
    let site = Site::start();
    let id = site.add(
        "quotes/big.png",
        "image",
        &encoded(1200, 2400, ImageFormat::Png),
    );
    let got = site.get(&site.signed(id));
    assert_eq!(got.status, 200);
    assert_eq!(got.content_type, "image/jpeg");
    assert_eq!(got.content_length, Some(got.body.len() as u64));
    let picture = image::load_from_memory_with_format(&got.body, ImageFormat::Jpeg).unwrap();
    assert_eq!((picture.width(), picture.height()), (960, 1920));
    // The second fetch is served from the cache, byte for byte the same.
    assert!(site.get(&site.signed(id)).body == got.body);
    site.stop();
}

#[test]
fn videos_are_streamed_with_their_type() {
    let site = Site::start();
    let mp4 = vec![7u8; 300_000];
    let mp4_id = site.add("travel/a.mp4", "video", &mp4);
    let mov_id = site.add("travel/b.mov", "video", b"moov");
    let got = site.get(&site.signed(mp4_id));
    assert_eq!(
        (got.status, got.content_type.as_str(), got.content_length),
        (200, "video/mp4", Some(300_000))
    );
    assert!(got.body == mp4);
    let got = site.get(&site.signed(mov_id));
    assert_eq!(
        (got.status, got.content_type.as_str(), got.text()),
        (200, "video/quicktime", "moov")
    );
    site.stop();
}

#[test]
fn bad_links_are_refused_without_detail() {
    let site = Site::start();
    let id = site.add("quotes/a.jpg", "image", &encoded(10, 10, ImageFormat::Jpeg));
    let good = site.signed(id);
    let signer = UrlSigner::new(&KEY);
    let sig = good.rsplit_once("sig=").unwrap().1;
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    let forbidden = [
        signer.sign_path(id, now() - 1),                           // expired
        format!("/media/{id}?exp={}&sig={flipped}", now() + 3600), // tampered signature
        format!("/media/{id}?exp={}&sig={sig}", now() + 7200),     // tampered expiry
        UrlSigner::new(&[4; 32]).sign_path(id, now() + 3600),      // another key
        format!("/media/{id}"),                                    // no signature
        format!("{good}&extra=1"),
    ];
    for path in forbidden {
        let got = site.get(&path);
        assert_eq!((got.status, got.text()), (403, "forbidden\n"), "{path}");
    }
    assert_eq!(site.get(&good).status, 200);
    site.stop();
}

#[test]
fn unknown_inactive_and_outside_files_are_not_found() {
    let site = Site::start();
    let jpeg = encoded(10, 10, ImageFormat::Jpeg);
    let inactive = site.add("quotes/old.jpg", "image", &jpeg);
    site.db
        .execute(
            "UPDATE media_items SET is_active = 0 WHERE id = ?1",
            [inactive],
        )
        .unwrap();
    std::fs::write(site.dir.path().join("secret.jpg"), &jpeg).unwrap();
    std::os::unix::fs::symlink(
        site.dir.path().join("secret.jpg"),
        site.dir.path().join("media/quotes/link.jpg"),
    )
    .unwrap();
    let symlink = site.index("quotes/link.jpg", "image", &"1".repeat(64));
    let escaping = site.index("../secret.jpg", "image", &"2".repeat(64));
    let absolute = site.index(
        site.dir.path().join("secret.jpg").to_str().unwrap(),
        "image",
        &"3".repeat(64),
    );
    let vanished = site.index("quotes/gone.jpg", "image", &"4".repeat(64));
    let folder = site.index("quotes", "image", &"5".repeat(64));
    for id in [
        9999, inactive, symlink, escaping, absolute, vanished, folder,
    ] {
        let got = site.get(&site.signed(id));
        assert_eq!((got.status, got.text()), (404, "not found\n"), "item {id}");
    }
    site.stop();
}

#[test]
fn traversal_in_the_request_is_refused() {
    let site = Site::start();
    std::fs::write(site.dir.path().join("secret"), b"top secret").unwrap();
    let cases = [
        ("/media/../secret", "404"),
        ("/media/..%2fsecret", "404"),
        ("/media/%2e%2e/secret", "404"),
        ("/media/1/../../secret", "404"),
        ("/media/1/..%2f..%2fsecret?exp=1&sig=0", "404"),
        ("/media/1?exp=1&sig=../../secret", "403"),
        ("/../secret", "404"),
        ("/%2e%2e/secret", "404"),
        ("/media", "404"),
        ("/", "404"),
        ("/oauth/start", "404"),
        ("/healthz/", "404"),
    ];
    for (target, want) in cases {
        let answer = raw(
            site.addr,
            format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
        assert_eq!(status_of(&answer), want, "{target}: {answer}");
        assert!(!answer.contains("top secret"));
    }
    site.stop();
}

#[test]
fn healthz_reports_version_uptime_database_and_last_poll() {
    let site = Site::start();
    let health = |site: &Site| -> Value {
        let got = site.get("/healthz");
        assert_eq!(
            (got.status, got.content_type.as_str()),
            (200, "application/json")
        );
        serde_json::from_slice(&got.body).unwrap()
    };
    let first = health(&site);
    assert_eq!(first["version"], env!("CARGO_PKG_VERSION"));
    assert!(first["uptime_secs"].as_u64().unwrap() < 60, "{first}");
    assert_eq!(first["database_ok"], true);
    assert_eq!(first["last_poll_secs_ago"], Value::Null);

    site.last_poll.store(now() - 5, Ordering::Relaxed);
    let polled = health(&site)["last_poll_secs_ago"].as_i64().unwrap();
    assert!((5..30).contains(&polled), "{polled}");

    // HEAD answers the same without a body; other methods are refused.
    let answer = raw(site.addr, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "{answer}");
    let answer = raw(
        site.addr,
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert_eq!(status_of(&answer), "405", "{answer}");
    assert!(answer.contains("\r\nAllow: GET, HEAD\r\n"), "{answer}");
    site.stop();
}

#[test]
fn healthz_says_when_the_database_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let shutdown = Arc::new(AtomicBool::new(false));
    let state = WebState {
        signer: UrlSigner::new(&KEY),
        media_dir: dir.path().to_path_buf(),
        cache_dir: dir.path().join("cache"),
        db_path: dir.path().join("missing.db"),
        started: Instant::now(),
        last_poll_unix: Arc::new(AtomicI64::new(0)),
        poll_timeout_secs: 30,
        oauth: None,
    };
    let (addr, threads) =
        web::start("127.0.0.1:0".parse().unwrap(), state, shutdown.clone()).unwrap();
    let answer = raw(addr, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert!(answer.contains("\"database_ok\":false"), "{answer}");
    assert!(
        !dir.path().join("missing.db").exists(),
        "a read-only server creates nothing"
    );
    shutdown.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn a_silent_client_does_not_hold_up_others_and_is_cut_off() {
    let site = Site::start();
    let mut silent = TcpStream::connect(site.addr).unwrap();
    let mut trickling = TcpStream::connect(site.addr).unwrap();
    trickling.write_all(b"GET /hea").unwrap();

    let started = Instant::now();
    assert_eq!(site.get("/healthz").status, 200);
    // Well within the 5 s a silent client is given.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Both are answered 408 and closed once the head deadline passes.
    for stream in [&mut silent, &mut trickling] {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
    }
    site.stop();
}

#[test]
fn oversized_and_malformed_requests_are_refused() {
    let site = Site::start();
    let long = format!("/media/1?{}", "a".repeat(3000));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            format!("GET {long} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
            "414",
        ),
        // A request line that never ends is cut off without waiting for it.
        (format!("GET /{}", "a".repeat(10_000)).into_bytes(), "414"),
        (
            format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(20_000)).into_bytes(),
            "431",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nContent-Length: 20000\r\n\r\n".to_vec(),
            "413",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            "411",
        ),
        (
            b"GET /healthz HTTP/1.1\r\nContent-Length: x\r\n\r\n".to_vec(),
            "400",
        ),
        (b"GET /healthz\r\n\r\n".to_vec(), "400"),
        (b"GET http://x/healthz HTTP/1.1\r\n\r\n".to_vec(), "400"),
        (b"GET /healthz HTTP/2.0\r\n\r\n".to_vec(), "400"),
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            "400",
        ),
        // A small body is read and ignored.
        (
            b"GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            "200",
        ),
    ];
    for (request, want) in cases {
        let answer = raw(site.addr, &request);
        assert_eq!(
            status_of(&answer),
            want,
            "{:?}: {answer}",
            String::from_utf8_lossy(&request[..request.len().min(60)])
        );
    }
    // The server still serves after all that.
    assert_eq!(site.get("/healthz").status, 200);
    site.stop();
}

#[test]
fn binding_a_taken_address_names_it() {
    let site = Site::start();
    let state = WebState {
        signer: UrlSigner::new(&KEY),
        media_dir: site.dir.path().into(),
        cache_dir: site.dir.path().into(),
        db_path: site.dir.path().join("x.db"),
        started: Instant::now(),
        last_poll_unix: Arc::new(AtomicI64::new(0)),
        poll_timeout_secs: 30,
        oauth: None,
    };
    let error = web::start(site.addr, state, Arc::new(AtomicBool::new(true))).unwrap_err();
    assert!(
        format!("{error:#}").contains(&site.addr.to_string()),
        "{error:#}"
    );
    site.stop();
}

/// Raises this test process's soft open-file limit to `wanted` (the hard limit
/// permitting): the tests below hold hundreds of sockets.
fn allow_open_files(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write one rlimit, which `limit` is.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    let wanted = libc::rlim_t::try_from(wanted).unwrap();
    if limit.rlim_cur < wanted {
        limit.rlim_cur = wanted.min(limit.rlim_max);
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    }
    assert!(
        limit.rlim_cur >= wanted,
        "this test needs {wanted} open files; `ulimit -Hn` allows {}",
        limit.rlim_max
    );
}

/// Waits (up to `within`) for the server to close `stream`: the end of the
/// stream or a reset, after whatever it answered. Panics if it stays open.
fn wait_for_close(stream: &mut TcpStream, within: Duration) {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut sink = [0u8; 512];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the server still holds the connection after {within:?}")
            }
            Err(_) => return, // reset
        }
    }
}

/// Whether the server still holds `stream` open (nothing to read, no end).
fn still_open(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let open = matches!(
        (&*stream).read(&mut [0u8; 1]),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    stream.set_nonblocking(false).unwrap();
    open
}

#[test]
fn when_full_the_oldest_connections_are_closed_for_new_ones() {
    // 532 sockets on each side of the connection, in this one process.
    allow_open_files(2048);
    let site = Site::start();
    let connect = |_| TcpStream::connect(site.addr).unwrap();
    let mut oldest: Vec<TcpStream> = (0..20).map(connect).collect();
    let newer: Vec<TcpStream> = (0..512).map(connect).collect();
    // The server holds 512: the 20 oldest are closed at once to take the newer
    // ones, long before the 5 s a silent client is given.
    for stream in &mut oldest {
        wait_for_close(stream, Duration::from_secs(2));
    }
    assert!(still_open(newer.last().unwrap()));
    let started = Instant::now();
    assert_eq!(site.get("/healthz").status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    site.stop();
}

#[test]
fn when_every_worker_is_busy_requests_beyond_the_queue_are_answered_503() {
    // What web.rs is built with: 3 workers and a queue of 32 requests.
    const WORKERS: usize = 3;
    const QUEUE: usize = 32;
    const EXTRA: usize = 8;
    let site = Site::start();
    let id = site.add("travel/big.mp4", "video", b"x");
    // 64 MB that read as zeros: more than the sockets buffer, so a worker
    // sending it to a client that does not read is stuck.
    std::fs::OpenOptions::new()
        .write(true)
        .open(site.dir.path().join("media/travel/big.mp4"))
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let request = |target: &str| {
        let mut stream = TcpStream::connect(site.addr).unwrap();
        stream
            .write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        stream
    };
    let stuck: Vec<TcpStream> = (0..WORKERS).map(|_| request(&site.signed(id))).collect();
    for stream in &stuck {
        // A worker has taken it once its answer starts to arrive.
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert!(stream.peek(&mut [0u8; 1]).unwrap() > 0);
    }
    let waiting: Vec<TcpStream> = (0..QUEUE + EXTRA).map(|_| request("/healthz")).collect();
    let answered = |stream: &TcpStream| {
        stream.set_nonblocking(true).unwrap();
        let ready = stream.peek(&mut [0u8; 1]).is_ok_and(|n| n > 0);
        stream.set_nonblocking(false).unwrap();
        ready
    };
    // No worker is free, so whatever is answered now was refused at once.
    wait_until("the requests beyond the queue to be refused", WAIT, || {
        (waiting.iter().filter(|s| answered(s)).count() >= EXTRA).then_some(())
    });
    // Once the stuck clients leave, the queued requests are served.
    drop(stuck);
    let mut statuses = Vec::new();
    for mut stream in waiting {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        if status_of(&answer) == "503" {
            assert!(answer.contains("\r\nRetry-After: 5\r\n"), "{answer}");
        }
        statuses.push(status_of(&answer).to_string());
    }
    let count = |want: &str| statuses.iter().filter(|s| *s == want).count();
    assert_eq!((count("200"), count("503")), (QUEUE, EXTRA), "{statuses:?}");
    site.stop();
}

/// A request on a fresh connection: the status and how long the whole answer took.
fn timed_get(addr: SocketAddr, target: &str) -> (String, Duration) {
    let started = Instant::now();
    let answer = raw(
        addr,
        format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    );
    (status_of(&answer).to_string(), started.elapsed())
}

/// A line of /proc/<pid>/status as a number ("VmRSS:  5120 kB" → 5120).
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// How many sockets process `pid` has open.
fn open_sockets(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

#[test]
fn idle_and_trickling_clients_do_not_hold_up_the_daemon_page() {
    const IDLE: usize = 300;
    const HALF_SENT: usize = 60;
    allow_open_files(2048);
    let env = Env::new();
    let key = [0x5a_u8; 32];
    std::fs::write(env.path().join("secret.key"), key).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.write_config_raw(&env.base_config().replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\""),
    ));
    std::fs::create_dir_all(env.media_dir().join("quotes")).unwrap();
    let jpeg = encoded(300, 500, ImageFormat::Jpeg);
    std::fs::write(env.media_dir().join("quotes/a.jpg"), &jpeg).unwrap();
    let out = env.run(&["scan"]);
    assert!(out.status.success(), "{}", describe_output(&out));
    let id: i64 = env
        .db()
        .query_row("SELECT id FROM media_items", [], |r| r.get(0))
        .unwrap();
    let media = UrlSigner::new(&key).sign_path(id, now() + 3600);
    let probes = [
        ("/healthz", "200"),
        (media.as_str(), "200"),
        ("/oauth/callback?state=bogus", "400"),
    ];
    let daemon = env.start_polling();
    let pid = daemon.pid();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_until("the web page", WAIT, || {
        (timed_get(addr, "/healthz").0 == "200").then_some(())
    });
    for (target, want) in probes {
        assert_eq!(
            timed_get(addr, target).0,
            want,
            "{target} before the attack"
        );
    }
    let rss_before_kb = proc_status(pid, "VmRSS");

    // The attack: sockets that send nothing, and heads that never end, half of
    // them trickling a byte a second.
    let attack_started = Instant::now();
    let mut attackers: Vec<TcpStream> = (0..IDLE)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    for _ in 0..HALF_SENT {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        attackers.push(stream);
    }
    let mut trickling: Vec<TcpStream> = attackers[IDLE..IDLE + HALF_SENT / 2]
        .iter()
        .map(|s| s.try_clone().unwrap())
        .collect();
    let (stop_trickling, stop) = mpsc::channel::<()>();
    let trickler = std::thread::spawn(move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(Duration::from_secs(1)) {
            for stream in &mut trickling {
                let _ = stream.write_all(b"X");
            }
        }
    });
    // The daemon holds every attacker (and its listening socket) before it is
    // asked anything.
    wait_until("the daemon to accept the attackers", WAIT, || {
        (open_sockets(pid) > IDLE + HALF_SENT).then_some(())
    });
    let attached = attack_started.elapsed();

    let mut slowest = [Duration::ZERO; 3];
    for _round in 0..3 {
        for (i, (target, want)) in probes.iter().enumerate() {
            let (status, took) = timed_get(addr, target);
            assert_eq!(status, *want, "{target} under attack");
            slowest[i] = slowest[i].max(took);
        }
    }
    let rss_kb = proc_status(pid, "VmRSS");
    let anon_kb = proc_status(pid, "RssAnon");
    let threads = proc_status(pid, "Threads");
    for (i, took) in slowest.iter().enumerate() {
        assert!(
            *took < Duration::from_secs(1),
            "{} took {took:?} under attack",
            probes[i].0
        );
    }
    // The goal is the daemon's memory under 20 MB. This debug binary maps far more
    // code than the release one (whose whole file is ~7 MB), and VmRSS counts those
    // file pages, so the bound is on what the attack can grow: the anonymous
    // memory (heap, stacks, buffers). VmRSS is printed for the record.
    eprintln!("under attack: VmRSS {rss_kb} kB, RssAnon {anon_kb} kB, {threads} threads");
    assert!(anon_kb < 20 * 1024, "RssAnon {anon_kb} kB under attack");
    // Each attacker costs its socket and a few hundred bytes, not a thread's stack.
    assert!(
        rss_kb < rss_before_kb + 2 * 1024,
        "VmRSS {rss_before_kb} kB before the attack, {rss_kb} kB under it"
    );
    // A thread per connection would make hundreds.
    assert!(threads < 32, "{threads} threads under attack");

    // Each attacker is cut off once the 5 s for a request head have passed.
    let bound = Duration::from_secs(8);
    for stream in &mut attackers {
        let left = bound.saturating_sub(attack_started.elapsed());
        wait_for_close(stream, left.max(Duration::from_millis(1)));
    }
    let dropped = attack_started.elapsed();
    let _ = stop_trickling.send(());
    trickler.join().unwrap();
    assert_eq!(timed_get(addr, "/healthz").0, "200");
    eprintln!(
        "under {IDLE} idle + {HALF_SENT} half-sent sockets (attached in {attached:?}): \
         /healthz {:?}, /media {:?}, /oauth/callback {:?} at most; VmRSS {rss_kb} kB \
         ({rss_before_kb} kB before; RssAnon {anon_kb} kB), {threads} threads; all attackers closed {dropped:?} after the attack began",
        slowest[0], slowest[1], slowest[2]
    );
    drop(daemon);
}
