//! The web page: signed media links for the Graph API (`/media/<id>?exp=…&sig=…`)
//! and `/healthz`; `/oauth/*` comes with the account-connection issue (see `route`).
//!
//! The server faces the internet (Instagram must reach it), so every resource a
//! client can hold is bounded: a fixed number of worker threads share the
//! listening socket, each serving one connection at a time, one request per
//! connection; the request head must arrive whole within a deadline and fit a
//! fixed size; every socket read and write has a timeout. HTTP is parsed here,
//! in a hundred lines, because tiny_http gives a thread to each connection with
//! no timeouts and reads header lines of any length, which a slow or hostile
//! client turns into threads and memory on the Pi.
//!
//! Nothing with a query string is logged: the signature in it is a credential.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use log::{debug, info, warn};
use rusqlite::{Connection, OpenFlags};

use crate::convert;
use crate::db;
use crate::signing::UrlSigner;

/// Enough for a slow client to be only slow; the others wait for it at most this.
const WORKERS: usize = 3;
/// The whole request head must arrive within this, however it trickles in.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// One socket write may stall this long before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_TARGET_BYTES: usize = 2 * 1024;
const MAX_HEAD_BYTES: usize = 8 * 1024;
const MAX_BODY_BYTES: u64 = 16 * 1024;
/// How often the watcher looks at the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);

/// What the workers share. `last_poll_unix` is set by the poller after each
/// successful getUpdates (0 = never).
pub struct WebState {
    pub signer: UrlSigner,
    pub media_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub db_path: PathBuf,
    pub started: Instant,
    pub last_poll_unix: Arc<AtomicI64>,
    /// The Instagram connection pages; None serves them as not found.
    pub oauth: Option<OAuthPages>,
}

/// What `/oauth/start` and `/oauth/callback` need: the configuration, the key
/// that seals tokens, and a way to wake the outbox for the chat's message.
pub struct OAuthPages {
    pub config: Arc<crate::config::Config>,
    pub key: Option<[u8; 32]>,
    pub wake_outbox: std::sync::mpsc::Sender<()>,
    /// The daemon's one Graph API client (clones share its agent).
    pub graph: crate::instagram::Graph,
}

/// Binds `listen` and serves until `shutdown` is set. Returns the bound address
/// (useful with port 0) and the threads: the workers and the watcher that wakes
/// them for shutdown.
pub fn start(
    listen: SocketAddr,
    state: WebState,
    shutdown: Arc<AtomicBool>,
) -> Result<(SocketAddr, Vec<JoinHandle<()>>)> {
    let listener = TcpListener::bind(listen)
        .with_context(|| format!("the web server cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    let state = Arc::new(state);
    let mut threads = Vec::with_capacity(WORKERS + 1);
    for n in 1..=WORKERS {
        let mut worker = Worker {
            listener: listener.try_clone()?,
            state: state.clone(),
            conn: None,
            shutdown: shutdown.clone(),
        };
        threads.push(
            std::thread::Builder::new()
                .name(format!("web-{n}"))
                .spawn(move || worker.run())?,
        );
    }
    threads.push(
        std::thread::Builder::new()
            .name("web-watch".into())
            .spawn(move || watch_for_shutdown(local, &shutdown))?,
    );
    debug!("web: listening on {local} with {WORKERS} workers");
    Ok((local, threads))
}

/// Workers block in accept(), which a flag cannot interrupt: once the flag is
/// set, one connection per worker wakes them, and each sees the flag.
fn watch_for_shutdown(local: SocketAddr, shutdown: &AtomicBool) {
    while !shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(SHUTDOWN_POLL);
    }
    let mut wake = local;
    if wake.ip().is_unspecified() {
        wake.set_ip(match wake {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    for _ in 0..WORKERS {
        if let Err(e) = TcpStream::connect_timeout(&wake, Duration::from_secs(1)) {
            debug!("web: waking a worker to stop: {e}");
        }
    }
}

struct Worker {
    listener: TcpListener,
    state: Arc<WebState>,
    /// Read-only, opened on first use and again after an error.
    conn: Option<Connection>,
    shutdown: Arc<AtomicBool>,
}

impl Worker {
    fn run(&mut self) {
        loop {
            let accepted = self.listener.accept();
            if self.shutdown.load(Ordering::Relaxed) {
                return;
            }
            match accepted {
                Ok((stream, _)) => self.serve(stream),
                Err(e) => {
                    // Out of file descriptors and the like: do not spin.
                    warn!("web: accepting a connection: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// One request on one connection, then the connection is closed.
    fn serve(&mut self, mut stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        if let Err(e) = stream.set_write_timeout(Some(WRITE_TIMEOUT)) {
            debug!("web: configuring a connection: {e}");
            return;
        }
        let deadline = Instant::now() + HEAD_DEADLINE;
        let response = match read_request(&mut stream, deadline) {
            Ok(request) => {
                let response = route(&request, self);
                let line = format!(
                    "web: {} {} → {}",
                    request.method,
                    request.path(),
                    response.status
                );
                if request.path().starts_with("/media") || response.status >= 500 {
                    info!("{line}");
                } else {
                    debug!("{line}");
                }
                respond(&mut stream, response, request.method == "HEAD");
                return;
            }
            Err(RequestError::Closed) => return,
            Err(RequestError::Io(e)) => {
                debug!("web: reading a request: {e}");
                return;
            }
            Err(RequestError::TimedOut) => text(408, "request timeout"),
            Err(RequestError::Malformed) => text(400, "bad request"),
            Err(RequestError::TargetTooLong) => text(414, "URI too long"),
            Err(RequestError::HeadTooLarge) => text(431, "request header fields too large"),
            Err(RequestError::BodyTooLarge) => text(413, "content too large"),
            Err(RequestError::LengthRequired) => text(411, "length required"),
        };
        debug!("web: refused a request → {}", response.status);
        respond(&mut stream, response, false);
        drain_before_closing(&mut stream);
    }

    fn db(&mut self) -> Result<&Connection> {
        if self.conn.is_none() {
            let path = &self.state.db_path;
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .with_context(|| format!("{}: opening the database to read", path.display()))?;
            conn.busy_timeout(Duration::from_secs(2))?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_ref().expect("opened above"))
    }
}

// ---- routes ---------------------------------------------------------------------

/// Every route of the web page. The OAuth flow adds its arms here
/// (`/oauth/start`, `/oauth/callback`); until then `/oauth/*` is not found.
fn route(request: &Request, worker: &mut Worker) -> Response {
    let path = request.path();
    match path {
        "/healthz" => only_get(request).unwrap_or_else(|| healthz(worker)),
        "/oauth/start" => only_get(request).unwrap_or_else(|| oauth_start(request, worker)),
        "/oauth/callback" => only_get(request).unwrap_or_else(|| oauth_callback(request, worker)),
        _ if is_media_path(path) => only_get(request).unwrap_or_else(|| media(request, worker)),
        _ => text(404, "not found"),
    }
}

/// "/media/<digits>": the shape of a media link, whose query is then checked.
/// Any other path under /media is simply not found.
fn is_media_path(path: &str) -> bool {
    path.strip_prefix("/media/")
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// The answer to a method other than GET and HEAD, if it is one.
fn only_get(request: &Request) -> Option<Response> {
    if request.method == "GET" || request.method == "HEAD" {
        return None;
    }
    let mut response = text(405, "method not allowed");
    response.headers.push(("Allow", "GET, HEAD".into()));
    Some(response)
}

fn html(status: u16, title: &str, message: &str) -> Response {
    Response {
        status,
        content_type: "text/html; charset=utf-8",
        headers: vec![
            ("Content-Security-Policy", crate::oauth::PAGE_CSP.into()),
            ("Referrer-Policy", "no-referrer".into()),
        ],
        body: Body::Bytes(crate::oauth::page(title, message).into_bytes()),
    }
}

/// `/oauth/start?state=…`: a 302 to Instagram's authorize page for a live state.
fn oauth_start(request: &Request, worker: &mut Worker) -> Response {
    let state = worker.state.clone();
    let Some(pages) = state.oauth.as_ref() else {
        return text(404, "not found");
    };
    let Ok(app) = crate::oauth::app(&pages.config) else {
        return html(
            404,
            "Not available",
            "Connecting Instagram is not configured on this Storyline.",
        );
    };
    let oauth_state = crate::oauth::query_param(&request.target, "state").unwrap_or_default();
    let found = worker.db().and_then(|conn| {
        crate::oauth::authorize_url(&pages.config, &app, conn, &oauth_state, crate::clock::now())
    });
    match found {
        Ok(Some(location)) => Response {
            status: 302,
            content_type: "text/plain; charset=utf-8",
            headers: vec![("Location", location)],
            body: Body::Bytes(b"redirecting to Instagram\n".to_vec()),
        },
        Ok(None) => html(
            400,
            "Link expired",
            "This link was already used or has expired. Send /connect in Telegram for a new one.",
        ),
        Err(e) => {
            warn!("web: /oauth/start: {e:#}");
            html(
                500,
                "Something went wrong",
                "Storyline could not read its database. Try again in a moment.",
            )
        }
    }
}

/// `/oauth/callback?code=…&state=…`: finishes the connection and tells the chat.
fn oauth_callback(request: &Request, worker: &mut Worker) -> Response {
    let Some(pages) = worker.state.oauth.as_ref() else {
        return text(404, "not found");
    };
    let state = crate::oauth::query_param(&request.target, "state").unwrap_or_default();
    let code = crate::oauth::query_param(&request.target, "code");
    let denied = crate::oauth::query_param(&request.target, "error_description")
        .or_else(|| crate::oauth::query_param(&request.target, "error"));
    let outcome = (|| -> Result<crate::oauth::Finished> {
        let mut conn = db::open_without_migrating(&worker.state.db_path)?;
        match (code, denied) {
            (Some(code), _) => crate::oauth::finish(
                &mut conn,
                &pages.config,
                &pages.graph,
                pages.key.as_ref(),
                &state,
                &code,
                crate::clock::now(),
            ),
            (None, denied) => {
                crate::oauth::cancel(&conn, &state, denied.as_deref(), crate::clock::now())
            }
        }
        .and_then(|finished| {
            crate::oauth::tell_chat(&mut conn, &pages.config, &finished, crate::clock::now())?;
            Ok(finished)
        })
    })();
    let _ = pages.wake_outbox.send(());
    match outcome {
        Ok(crate::oauth::Finished::Connected { username, .. }) => html(
            200,
            "Instagram connected",
            &format!("@{username} is connected to Storyline. You can close this tab and go back to Telegram."),
        ),
        Ok(crate::oauth::Finished::Failed { reason, .. }) => {
            crate::oauth::log_failure(&reason);
            html(400, "Not connected", &reason)
        }
        Err(e) => {
            warn!("web: /oauth/callback: {e:#}");
            html(500, "Something went wrong", "Storyline could not finish the connection. Send /connect in Telegram to try again.")
        }
    }
}

fn healthz(worker: &mut Worker) -> Response {
    let database_ok = match worker.db().and_then(db::last_update_id) {
        Ok(_) => true,
        Err(e) => {
            debug!("web: health check: {e:#}");
            worker.conn = None;
            false
        }
    };
    let last_poll = worker.state.last_poll_unix.load(Ordering::Relaxed);
    let last_poll_secs_ago = (last_poll > 0).then(|| (Utc::now().timestamp() - last_poll).max(0));
    let body = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": worker.state.started.elapsed().as_secs(),
        "database_ok": database_ok,
        "last_poll_secs_ago": last_poll_secs_ago,
    });
    Response {
        status: 200,
        content_type: "application/json",
        headers: Vec::new(),
        body: Body::Bytes(body.to_string().into_bytes()),
    }
}

/// A signed link to an active media item: the file itself for a video or a
/// JPEG, the converted JPEG for a PNG or WebP. Refusals say nothing more than
/// "forbidden" or "not found"; the log says why.
fn media(request: &Request, worker: &mut Worker) -> Response {
    let item_id = match worker
        .state
        .signer
        .verify(&request.target, crate::clock::now().timestamp())
    {
        Ok(id) => id,
        Err(e) => {
            info!("web: {} refused: {e}", request.path());
            return text(403, "forbidden");
        }
    };
    let item = match worker
        .db()
        .and_then(|conn| db::media::item_by_id(conn, item_id))
    {
        Ok(Some(item)) if item.is_active => item,
        Ok(_) => return text(404, "not found"),
        Err(e) => {
            warn!("web: looking up media item {item_id}: {e:#}");
            worker.conn = None;
            return text(500, "internal error");
        }
    };
    let state = &worker.state;
    let Some(source) = file_inside(&state.media_dir, &item.path) else {
        warn!(
            "web: media item {item_id} ({}) is not a file inside the media folder",
            item.path
        );
        return text(404, "not found");
    };
    let (path, content_type) = if item.kind == "image" {
        match convert::prepare_image(&source, &item.sha256, &state.cache_dir) {
            Ok(prepared) => (prepared.path, prepared.content_type),
            Err(e) => {
                warn!("web: media item {item_id}: {e:#}");
                return text(500, "internal error");
            }
        }
    } else {
        let content_type = video_content_type(&source);
        (source, content_type)
    };
    match open_regular_file(&path) {
        Ok((file, len)) => Response {
            status: 200,
            content_type,
            headers: Vec::new(),
            body: Body::File(file, len),
        },
        Err(e) => {
            warn!("web: media item {item_id}: {}: {e}", path.display());
            text(404, "not found")
        }
    }
}

/// `relative` resolved under `media_dir` with every symlink followed, if that
/// lands on a regular file inside `media_dir`.
fn file_inside(media_dir: &Path, relative: &str) -> Option<PathBuf> {
    let root = media_dir.canonicalize().ok()?;
    let path = root.join(relative).canonicalize().ok()?;
    (path.starts_with(&root) && path != root && path.is_file()).then_some(path)
}

fn open_regular_file(path: &Path) -> io::Result<(File, u64)> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok((file, meta.len()))
}

fn video_content_type(path: &Path) -> &'static str {
    let is_mov = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mov"));
    if is_mov {
        "video/quicktime"
    } else {
        "video/mp4"
    }
}

// ---- HTTP -------------------------------------------------------------------------

struct Request {
    method: String,
    /// The request target as sent, never decoded: "/path?query".
    target: String,
}

impl Request {
    fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(&self.target, |(path, _)| path)
    }
}

#[derive(Debug)]
enum RequestError {
    /// The client closed without sending a request.
    Closed,
    Io(io::Error),
    TimedOut,
    Malformed,
    TargetTooLong,
    HeadTooLarge,
    BodyTooLarge,
    LengthRequired,
}

/// Reads a request head (and drains a small body) before `deadline`.
fn read_request(stream: &mut TcpStream, deadline: Instant) -> Result<Request, RequestError> {
    let mut buf = vec![0u8; MAX_HEAD_BYTES];
    let mut filled = 0;
    let head_end = loop {
        if let Some(end) = find_head_end(&buf[..filled]) {
            break end;
        }
        let line_open = !buf[..filled].contains(&b'\n');
        if line_open && filled > MAX_TARGET_BYTES + 32 {
            return Err(RequestError::TargetTooLong);
        }
        if filled == buf.len() {
            return Err(if line_open {
                RequestError::TargetTooLong
            } else {
                RequestError::HeadTooLarge
            });
        }
        match read_before(stream, &mut buf[filled..], deadline)? {
            0 if filled == 0 => return Err(RequestError::Closed),
            0 => return Err(RequestError::Malformed),
            n => filled += n,
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| RequestError::Malformed)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().ok_or(RequestError::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RequestError::Malformed);
    };
    let valid_method = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    let valid_target = target.starts_with('/') && target.bytes().all(|b| b.is_ascii_graphic());
    if !valid_method || !valid_target || !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err(RequestError::Malformed);
    }
    if target.len() > MAX_TARGET_BYTES {
        return Err(RequestError::TargetTooLong);
    }
    let mut body_len: u64 = 0;
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(RequestError::Malformed)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let valid = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
            body_len = value
                .parse()
                .ok()
                .filter(|_| valid)
                .ok_or(RequestError::Malformed)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(RequestError::LengthRequired);
        }
    }
    if body_len > MAX_BODY_BYTES {
        return Err(RequestError::BodyTooLarge);
    }
    // No route reads a body, but one left unread would make closing the socket
    // reset the connection, and the client could lose the response.
    let already = (filled - head_end - 4) as u64;
    let mut rest = body_len.saturating_sub(already);
    let mut sink = [0u8; 1024];
    while rest > 0 {
        let want = sink.len().min(rest as usize);
        match read_before(stream, &mut sink[..want], deadline)? {
            0 => break,
            n => rest -= n as u64,
        }
    }
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
    })
}

/// Where the blank line that ends the head starts.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

fn read_before(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<usize, RequestError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(RequestError::TimedOut);
    }
    stream
        .set_read_timeout(Some(left))
        .map_err(RequestError::Io)?;
    loop {
        match stream.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(RequestError::TimedOut)
            }
            Err(e) => return Err(RequestError::Io(e)),
        }
    }
}

struct Response {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

enum Body {
    Bytes(Vec<u8>),
    /// Streamed, never read whole; the length is the one announced.
    File(File, u64),
}

fn text(status: u16, body: &str) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        headers: Vec::new(),
        body: Body::Bytes(format!("{body}\n").into_bytes()),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "",
    }
}

fn respond(stream: &mut TcpStream, response: Response, head_only: bool) {
    if let Err(e) = write_response(stream, response, head_only) {
        debug!("web: writing a response: {e}");
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Closing a socket with unread input resets the connection, and the client may
/// then lose the refusal it was sent: read (and drop) what it is still sending,
/// for a short while.
fn drain_before_closing(stream: &mut TcpStream) {
    const LINGER: Duration = Duration::from_secs(1);
    const MAX_DRAIN_BYTES: usize = 1024 * 1024;
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < MAX_DRAIN_BYTES {
        match read_before(stream, &mut sink, deadline) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

fn write_response(stream: &mut TcpStream, response: Response, head_only: bool) -> io::Result<()> {
    let length = match &response.body {
        Body::Bytes(bytes) => bytes.len() as u64,
        Body::File(_, len) => *len,
    };
    let mut head = BufWriter::new(&mut *stream);
    write!(
        head,
        "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: {}\r\nContent-Length: {length}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        Utc::now().format("%a, %d %b %Y %H:%M:%S GMT"),
        response.content_type,
    )?;
    for (name, value) in &response.headers {
        write!(head, "{name}: {value}\r\n")?;
    }
    head.write_all(b"\r\n")?;
    if head_only {
        return head.flush();
    }
    match response.body {
        Body::Bytes(bytes) => {
            head.write_all(&bytes)?;
            head.flush()
        }
        Body::File(file, len) => {
            head.flush()?;
            drop(head);
            // File to socket: the kernel copies it (sendfile), in bounded writes.
            let sent = io::copy(&mut file.take(len), stream)?;
            if sent < len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the file shrank while it was sent ({sent} of {len} bytes)"),
                ));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str) -> Request {
        Request {
            method: "GET".into(),
            target: target.into(),
        }
    }

    #[test]
    fn media_paths() {
        for (path, want) in [
            ("/media/1", true),
            ("/media/0042", true), // the signature check refuses it
            ("/media/", false),
            ("/media", false),
            ("/media/1/", false),
            ("/media/../1", false),
            ("/media/%31", false),
            ("/mediax/1", false),
        ] {
            assert_eq!(is_media_path(path), want, "{path}");
        }
    }

    #[test]
    fn paths_drop_the_query() {
        assert_eq!(request("/media/1?exp=2&sig=3").path(), "/media/1");
        assert_eq!(request("/healthz").path(), "/healthz");
        assert_eq!(request("/?").path(), "/");
    }

    #[test]
    fn files_inside_the_media_folder_only() {
        let dir = tempfile::tempdir().unwrap();
        let media = dir.path().join("media");
        std::fs::create_dir_all(media.join("quotes")).unwrap();
        std::fs::write(media.join("quotes/a.jpg"), b"a").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), media.join("out.jpg")).unwrap();
        std::os::unix::fs::symlink(media.join("quotes/a.jpg"), media.join("in.jpg")).unwrap();
        let cases = [
            ("quotes/a.jpg", true),
            ("in.jpg", true),
            ("out.jpg", false),
            ("../secret", false),
            ("quotes/../../secret", false),
            ("quotes", false),
            ("", false),
            ("missing.jpg", false),
        ];
        for (relative, inside) in cases {
            assert_eq!(
                file_inside(&media, relative).is_some(),
                inside,
                "{relative}"
            );
        }
        let absolute = dir.path().join("secret");
        assert_eq!(file_inside(&media, absolute.to_str().unwrap()), None);
    }

    #[test]
    fn video_types_by_extension() {
        assert_eq!(video_content_type(Path::new("a/b.MOV")), "video/quicktime");
        assert_eq!(video_content_type(Path::new("a/b.mp4")), "video/mp4");
    }
}
