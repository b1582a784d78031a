//! Part `web/` (an adapter): the HTTP server. It carries the OAuth pages that
//! `bot::oauth` implements (`OAuthPages`) and never decides about a chat itself.
//!
//! The web page: signed media links for the Graph API (`/media/<id>?exp=…&sig=…`),
//! `/healthz`, and the Instagram connection pages `/oauth/start` and
//! `/oauth/callback` (see `route`).
//!
//! The server faces the internet (Instagram must reach it), so every resource a
//! client can hold is bounded. One thread (`web-read`) owns every connection
//! whose request has not fully arrived: the sockets are non-blocking and
//! multiplexed with poll(2), each buffers its head up to a fixed size and must
//! finish it within a deadline, and at most `MAX_CONNECTIONS` are open (when
//! full, the oldest is closed to take the new one). An idle or trickling client
//! therefore costs a socket and a few hundred bytes, never a thread. Only a
//! complete request goes to the small pool of workers, which do the database,
//! file and OAuth work and write the response with a write timeout; if they are
//! all busy and the queue is full, the request is answered 503. HTTP is parsed
//! here, in a hundred lines, one request per connection, because tiny_http
//! gives a thread to each connection with no read timeout (see ARCHITECTURE.md,
//! "Why not tiny_http").
//!
//! Nothing with a query string is logged: the signature in it is a credential.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use log::{debug, info, warn};
use rusqlite::{Connection, OpenFlags};

use crate::db;
use crate::domain::markup::escape_html;
use crate::media::convert;
use crate::signing::UrlSigner;

/// Threads that answer complete requests; slow and idle clients never reach them.
const WORKERS: usize = 3;
/// Complete requests waiting for a worker; one more is answered 503.
const QUEUE: usize = 32;
/// Connections the reader holds at once (requests still arriving, refusals
/// being sent); a new one beyond this closes the oldest.
const MAX_CONNECTIONS: usize = 512;
/// File descriptors left for the rest of the daemon (database, media, log,
/// HTTP clients) when the connection limit is fitted to RLIMIT_NOFILE.
const RESERVED_FDS: usize = 128;
/// The whole request head (and a small body) must arrive within this, however
/// it trickles in; a client that sends nothing is closed after it too.
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// One socket write of a worker may stall this long before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// A refusal is sent, and what the client still sends read and dropped, for at
/// most this: closing a socket with unread input resets the connection, and
/// the client could lose the refusal.
const LINGER: Duration = Duration::from_secs(1);
const MAX_DRAIN_BYTES: usize = 1024 * 1024;
const MAX_TARGET_BYTES: usize = 2 * 1024;
const MAX_HEAD_BYTES: usize = 8 * 1024;
const MAX_BODY_BYTES: u64 = 16 * 1024;
/// Connections the kernel keeps waiting to be accepted (net.core.somaxconn caps it).
const BACKLOG: libc::c_int = 1024;
/// Connections accepted in one turn of the reader, so that a flood of new ones
/// does not starve those already open.
const ACCEPT_BATCH: usize = 64;
/// How often the reader looks at the shutdown flag when nothing happens: once a
/// second keeps an idle Pi's wake-ups few, well inside the 3 s the daemon gives
/// its threads to stop.
const SHUTDOWN_POLL: Duration = Duration::from_secs(1);
/// When accept() fails for want of file descriptors and nothing can be closed.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// At most one warning this often that the connection table is full (or the
/// workers busy): an attack must not flood the log.
const WARNING_EVERY: Duration = Duration::from_secs(60);

/// What the workers share. `last_poll_unix` is set by the poller after each
/// successful getUpdates (0 = never).
pub struct WebState {
    pub signer: UrlSigner,
    pub media_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub db_path: PathBuf,
    pub started: Instant,
    pub last_poll_unix: Arc<AtomicI64>,
    /// `[telegram] poll_timeout_secs`: no poll for three of them is a problem.
    pub poll_timeout_secs: u64,
    /// The Instagram connection pages; None serves them as not found.
    pub oauth: Option<Box<dyn OAuthPages>>,
}

/// The Instagram connection pages. The web page only carries them: what they
/// mean (states, the code exchange, the chat's message) is `bot::oauth`'s, which
/// implements this and is handed in by the runtime, so this adapter knows no handler.
pub trait OAuthPages: Send + Sync {
    /// `/oauth/start?state=…`; `target` is the request target (path and query).
    fn start(&self, target: &str) -> Page;
    /// `/oauth/callback?code=…&state=…` (or Instagram's `error=…`).
    fn callback(&self, target: &str) -> Page;
}

/// What an OAuth page answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// A small HTML page: a status, a title and one paragraph (escaped here).
    Html {
        status: u16,
        title: String,
        message: String,
    },
    /// A 302 to this address.
    Redirect(String),
}

impl Page {
    pub fn html(status: u16, title: &str, message: &str) -> Page {
        Page::Html {
            status,
            title: title.to_string(),
            message: message.to_string(),
        }
    }
}

/// Binds `listen` and serves until `shutdown` is set. Returns the bound address
/// (useful with port 0) and the threads: the reader and the workers.
pub fn start(
    listen: SocketAddr,
    state: WebState,
    shutdown: Arc<AtomicBool>,
) -> Result<(SocketAddr, Vec<JoinHandle<()>>)> {
    let listener = TcpListener::bind(listen)
        .with_context(|| format!("the web server cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    listener
        .set_nonblocking(true)
        .context("the web server's listening socket")?;
    // std listens with a backlog of 128; Linux takes a second listen() as a
    // new backlog, so that a burst of connections waits for the reader rather
    // than being dropped and retried a second later.
    // SAFETY: listen() on a socket this function owns; it only changes the backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        debug!(
            "web: enlarging the listen backlog: {}",
            io::Error::last_os_error()
        );
    }
    let capacity = connection_capacity();
    let state = Arc::new(state);
    let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(QUEUE);
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    let mut threads = Vec::with_capacity(WORKERS + 1);
    for n in 1..=WORKERS {
        let mut worker = Worker {
            state: state.clone(),
            conn: None,
        };
        let jobs = jobs_rx.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("web-{n}"))
                .spawn(move || worker.run(&jobs))?,
        );
    }
    let reader = Reader {
        listener,
        conns: Vec::new(),
        accepted: 0,
        capacity,
        jobs: jobs_tx,
        shutdown,
        accept_paused_until: None,
        full_warned: None,
        busy_warned: None,
    };
    threads.push(
        std::thread::Builder::new()
            .name("web-read".into())
            .spawn(move || reader.run())?,
    );
    debug!("web: listening on {local}, {capacity} connections, {WORKERS} workers");
    Ok((local, threads))
}

/// `MAX_CONNECTIONS`, or fewer if the file descriptor limit is too low for it
/// and cannot be raised (systemd's default soft limit is 1024; the unit sets more).
fn connection_capacity() -> usize {
    let others = QUEUE + WORKERS + RESERVED_FDS;
    let limit = raise_fd_limit(MAX_CONNECTIONS + others);
    let capacity = limit.saturating_sub(others).clamp(16, MAX_CONNECTIONS);
    if capacity < MAX_CONNECTIONS {
        warn!(
            "web: the open file limit is {limit}, so the web page holds at most {capacity} \
             connections (LimitNOFILE= in the systemd unit raises it)"
        );
    }
    capacity
}

/// Raises the soft RLIMIT_NOFILE to `wanted` if it is lower and the hard limit
/// allows; returns the soft limit in force.
fn raise_fd_limit(wanted: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit, which `limit` is.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        debug!(
            "web: reading the open file limit: {}",
            io::Error::last_os_error()
        );
        return wanted;
    }
    let as_usize = |value: libc::rlim_t| usize::try_from(value).unwrap_or(usize::MAX);
    let soft = as_usize(limit.rlim_cur);
    if soft >= wanted {
        return soft;
    }
    let raised = wanted.min(as_usize(limit.rlim_max));
    let Ok(raised_rlim) = libc::rlim_t::try_from(raised) else {
        return soft;
    };
    let new = libc::rlimit {
        rlim_cur: raised_rlim,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit, which `new` is.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
        debug!(
            "web: raising the open file limit from {soft} to {raised}: {}",
            io::Error::last_os_error()
        );
        return soft;
    }
    raised
}

/// A complete request and the connection to answer it on.
struct Job {
    stream: TcpStream,
    request: Request,
}

// ---- reader -----------------------------------------------------------------------

/// Owns the listening socket and every connection until its request is whole.
struct Reader {
    listener: TcpListener,
    conns: Vec<Conn>,
    /// Serial number of the next connection accepted.
    accepted: u64,
    capacity: usize,
    jobs: SyncSender<Job>,
    shutdown: Arc<AtomicBool>,
    /// Set while accept() fails for want of file descriptors.
    accept_paused_until: Option<Instant>,
    /// When it last warned that the table was full, or the workers busy.
    full_warned: Option<Instant>,
    busy_warned: Option<Instant>,
}

struct Conn {
    stream: TcpStream,
    /// The order it was accepted in: the oldest is closed first when the table is full.
    serial: u64,
    deadline: Instant,
    phase: Phase,
}

enum Phase {
    /// The request head is arriving.
    Head(HeadReader),
    /// The head is complete and `rest` bytes of body are still to be read and
    /// dropped (no route reads a body, but an unread one would reset the connection).
    Body { request: Request, rest: u64 },
    /// A refusal is being sent (`out[sent..]` is left); then what the client
    /// still sends is read and dropped until the deadline.
    Refusing {
        out: Vec<u8>,
        sent: usize,
        drained: usize,
    },
}

/// What a turn of the reader decided for one connection.
enum Next {
    Keep,
    Close,
    /// The request (in `Phase::Body`, its body read) goes to a worker.
    Serve,
    Refuse(Response),
}

impl Reader {
    fn run(mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(self.capacity + 1);
        let mut scratch = vec![0u8; MAX_HEAD_BYTES];
        while !self.shutdown.load(Ordering::Relaxed) {
            let now = Instant::now();
            self.expire(now);
            let accepting = self.accept_paused_until.is_none_or(|until| now >= until);
            if accepting {
                self.accept_paused_until = None;
            }
            fds.clear();
            fds.push(pollfd(
                self.listener.as_raw_fd(),
                if accepting { libc::POLLIN } else { 0 },
            ));
            fds.extend(
                self.conns
                    .iter()
                    .map(|conn| pollfd(conn.stream.as_raw_fd(), conn.events())),
            );
            let wake = self
                .conns
                .iter()
                .map(|conn| conn.deadline)
                .chain(self.accept_paused_until)
                .min()
                .map_or(SHUTDOWN_POLL, |at| {
                    at.saturating_duration_since(now).min(SHUTDOWN_POLL)
                });
            // Rounded up, so that a deadline less than a millisecond away does not spin.
            let timeout_ms = wake.as_micros().div_ceil(1000) as libc::c_int;
            let nfds = fds.len() as libc::nfds_t;
            // SAFETY: `fds` is a live, exclusively borrowed array of `nfds` pollfd.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), nfds, timeout_ms) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!("web: waiting for connections: {e}");
                    std::thread::sleep(ACCEPT_PAUSE);
                }
                continue;
            }
            if ready == 0 {
                continue;
            }
            let now = Instant::now();
            // Backwards, so that swap_remove only moves connections already seen.
            for i in (0..self.conns.len()).rev() {
                if fds[i + 1].revents == 0 {
                    continue;
                }
                let next = self.conns[i].step(fds[i + 1].revents, &mut scratch);
                self.apply(i, next, now);
            }
            if fds[0].revents != 0 {
                self.accept(now);
            }
        }
        debug!("web: stopped reading requests");
    }

    /// Connections past their deadline: a request still arriving is answered
    /// 408, a refusal still lingering is closed.
    fn expire(&mut self, now: Instant) {
        for i in (0..self.conns.len()).rev() {
            if self.conns[i].deadline > now {
                continue;
            }
            let next = match self.conns[i].phase {
                Phase::Refusing { .. } => Next::Close,
                _ => Next::Refuse(text(408, "request timeout")),
            };
            self.apply(i, next, now);
        }
    }

    fn apply(&mut self, i: usize, next: Next, now: Instant) {
        match next {
            Next::Keep => {}
            Next::Close => {
                self.conns.swap_remove(i);
            }
            Next::Refuse(response) => {
                debug!("web: refused a request → {}", response.status);
                let conn = &mut self.conns[i];
                conn.phase = Phase::Refusing {
                    out: response_bytes(response, false),
                    sent: 0,
                    drained: 0,
                };
                conn.deadline = now + LINGER;
            }
            Next::Serve => {
                let conn = self.conns.swap_remove(i);
                let Phase::Body { request, .. } = conn.phase else {
                    return;
                };
                let job = Job {
                    stream: conn.stream,
                    request,
                };
                match self.jobs.try_send(job) {
                    Ok(()) => {}
                    Err(TrySendError::Full(job)) => {
                        if once_a_while(&mut self.busy_warned, now) {
                            warn!("web: all workers are busy; answering 503");
                        }
                        let mut response = text(503, "busy, try again");
                        response.headers.push(("Retry-After", "5".into()));
                        self.conns.push(Conn {
                            stream: job.stream,
                            serial: conn.serial,
                            deadline: now + LINGER,
                            phase: Phase::Refusing {
                                out: response_bytes(response, false),
                                sent: 0,
                                drained: 0,
                            },
                        });
                    }
                    Err(TrySendError::Disconnected(_)) => {}
                }
            }
        }
    }

    /// Takes what the listening socket has waiting, closing the oldest
    /// connection for each one beyond the capacity.
    fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPT_BATCH {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = stream.set_nonblocking(true) {
                        debug!("web: configuring a connection: {e}");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    if self.conns.len() >= self.capacity {
                        self.close_oldest(now);
                    }
                    self.accepted += 1;
                    self.conns.push(Conn {
                        stream,
                        serial: self.accepted,
                        deadline: now + HEAD_DEADLINE,
                        phase: Phase::Head(HeadReader::default()),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_out_of_descriptors(&e) => {
                    if self.conns.is_empty() {
                        warn!("web: accepting a connection: {e}");
                        self.accept_paused_until = Some(now + ACCEPT_PAUSE);
                        return;
                    }
                    self.close_oldest(now);
                }
                // The client gave up before it was accepted, and the like.
                Err(e) => debug!("web: accepting a connection: {e}"),
            }
        }
    }

    fn close_oldest(&mut self, now: Instant) {
        let oldest = self
            .conns
            .iter()
            .enumerate()
            .min_by_key(|(_, conn)| conn.serial)
            .map(|(i, _)| i);
        if let Some(i) = oldest {
            self.conns.swap_remove(i);
        }
        if once_a_while(&mut self.full_warned, now) {
            warn!(
                "web: {} connections are open; closing the oldest for each new one",
                self.capacity
            );
        }
    }
}

/// Whether a warning last given at `last` may be given again; if so, records `now`.
fn once_a_while(last: &mut Option<Instant>, now: Instant) -> bool {
    let due = last.is_none_or(|at| now.duration_since(at) >= WARNING_EVERY);
    if due {
        *last = Some(now);
    }
    due
}

fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn pollfd(fd: libc::c_int, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

impl Conn {
    fn events(&self) -> libc::c_short {
        match &self.phase {
            Phase::Refusing { out, sent, .. } if *sent < out.len() => libc::POLLIN | libc::POLLOUT,
            _ => libc::POLLIN,
        }
    }

    /// Reads (or writes) what poll said is ready. `scratch` holds bytes read
    /// only for the length of this call.
    fn step(&mut self, revents: libc::c_short, scratch: &mut [u8]) -> Next {
        match &mut self.phase {
            Phase::Head(head) => {
                let room = head.room().min(scratch.len());
                match read_some(&mut self.stream, &mut scratch[..room]) {
                    Ok(Some(0)) => match head.closed() {
                        RequestError::Closed => Next::Close,
                        error => refusal(error),
                    },
                    Ok(Some(n)) => match head.push(&scratch[..n]) {
                        Ok(None) => Next::Keep,
                        Ok(Some(Head { request, body_rest })) => {
                            self.phase = Phase::Body {
                                request,
                                rest: body_rest,
                            };
                            if body_rest == 0 {
                                Next::Serve
                            } else {
                                Next::Keep
                            }
                        }
                        Err(error) => refusal(error),
                    },
                    Ok(None) => Next::Keep,
                    Err(e) => {
                        debug!("web: reading a request: {e}");
                        Next::Close
                    }
                }
            }
            Phase::Body { rest, .. } => {
                let want = usize::try_from(*rest).map_or(scratch.len(), |r| r.min(scratch.len()));
                match read_some(&mut self.stream, &mut scratch[..want]) {
                    // A client that stops short is still answered, as it would be if
                    // the body were read after the head.
                    Ok(Some(0)) => Next::Serve,
                    Ok(Some(n)) => {
                        *rest = rest.saturating_sub(n as u64);
                        if *rest == 0 {
                            Next::Serve
                        } else {
                            Next::Keep
                        }
                    }
                    Ok(None) => Next::Keep,
                    Err(e) => {
                        debug!("web: reading a request body: {e}");
                        Next::Close
                    }
                }
            }
            Phase::Refusing { out, sent, drained } => {
                if *sent < out.len()
                    && revents & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) != 0
                {
                    match self.stream.write(&out[*sent..]) {
                        Ok(n) => {
                            *sent += n;
                            if *sent == out.len() {
                                *out = Vec::new();
                                *sent = 0;
                                let _ = self.stream.shutdown(Shutdown::Write);
                            }
                        }
                        Err(e) if is_transient(&e) => {}
                        Err(_) => return Next::Close,
                    }
                }
                if revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) == 0 {
                    return Next::Keep;
                }
                match read_some(&mut self.stream, scratch) {
                    Ok(Some(0)) | Err(_) => Next::Close,
                    Ok(Some(n)) => {
                        *drained += n;
                        if *drained >= MAX_DRAIN_BYTES {
                            Next::Close
                        } else {
                            Next::Keep
                        }
                    }
                    Ok(None) => Next::Keep,
                }
            }
        }
    }
}

/// One non-blocking read: the byte count (0 at the end of the stream), or None
/// if nothing is there after all.
fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match stream.read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e) if is_transient(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The answer to a request that cannot be served, or closing without one.
fn refusal(error: RequestError) -> Next {
    match error {
        RequestError::Closed => Next::Close,
        RequestError::Malformed => Next::Refuse(text(400, "bad request")),
        RequestError::TargetTooLong => Next::Refuse(text(414, "URI too long")),
        RequestError::HeadTooLarge => Next::Refuse(text(431, "request header fields too large")),
        RequestError::BodyTooLarge => Next::Refuse(text(413, "content too large")),
        RequestError::LengthRequired => Next::Refuse(text(411, "length required")),
    }
}

// ---- workers ----------------------------------------------------------------------

struct Worker {
    state: Arc<WebState>,
    /// Read-only, opened on first use and again after an error.
    conn: Option<Connection>,
}

impl Worker {
    /// Serves requests until the reader stops (and the queue is empty).
    fn run(&mut self, jobs: &Mutex<Receiver<Job>>) {
        loop {
            let job = match jobs.lock() {
                Ok(jobs) => jobs.recv(),
                Err(_) => return,
            };
            match job {
                Ok(job) => self.serve(job),
                Err(_) => return,
            }
        }
    }

    /// One request on one connection, then the connection is closed.
    fn serve(&mut self, job: Job) {
        let Job {
            mut stream,
            request,
        } = job;
        let configured = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)));
        if let Err(e) = configured {
            debug!("web: configuring a connection: {e}");
            return;
        }
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
        "/oauth/start" => only_get(request).unwrap_or_else(|| oauth_page(request, worker, true)),
        "/oauth/callback" => {
            only_get(request).unwrap_or_else(|| oauth_page(request, worker, false))
        }
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

/// A small HTML page: escaped, no scripts (the server sends a strict CSP).
pub fn page(title: &str, message: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · Storyline</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;\
         margin:3rem auto;padding:0 1rem;line-height:1.5}}h1{{font-size:1.4rem}}</style></head>\
         <body><h1>{t}</h1><p>{m}</p></body></html>",
        t = escape_html(title),
        m = escape_html(message)
    )
}

pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn html(status: u16, title: &str, message: &str) -> Response {
    Response {
        status,
        content_type: "text/html; charset=utf-8",
        headers: vec![
            ("Content-Security-Policy", PAGE_CSP.into()),
            ("Referrer-Policy", "no-referrer".into()),
        ],
        body: Body::Bytes(page(title, message).into_bytes()),
    }
}

/// `/oauth/start` and `/oauth/callback`, answered by the pages handed in.
fn oauth_page(request: &Request, worker: &mut Worker, start: bool) -> Response {
    let Some(pages) = worker.state.oauth.as_ref() else {
        return text(404, "not found");
    };
    let page = if start {
        pages.start(&request.target)
    } else {
        pages.callback(&request.target)
    };
    match page {
        Page::Html {
            status,
            title,
            message,
        } => html(status, &title, &message),
        Page::Redirect(location) => Response {
            status: 302,
            content_type: "text/plain; charset=utf-8",
            headers: vec![("Location", location)],
            body: Body::Bytes(b"redirecting to Instagram\n".to_vec()),
        },
    }
}

/// What `/healthz` looks at.
struct Health {
    uptime_secs: u64,
    last_poll_secs_ago: Option<i64>,
    poll_timeout_secs: u64,
    database_ok: bool,
    media_folder_ok: bool,
}

/// What is wrong, in plain words (empty: healthy, 200; else 503): no successful
/// poll for three poll timeouts (counted from start before the first), the
/// database failing, the media folder gone.
fn health_problems(health: &Health) -> Vec<String> {
    let mut problems = Vec::new();
    let limit = 3 * health.poll_timeout_secs.max(1);
    match health.last_poll_secs_ago {
        Some(ago) if ago.unsigned_abs() > limit => problems.push(format!(
            "telegram: no successful poll for {ago} s (limit {limit} s)"
        )),
        None if health.uptime_secs > limit => problems.push(format!(
            "telegram: no successful poll since start {} s ago (limit {limit} s)",
            health.uptime_secs
        )),
        _ => {}
    }
    if !health.database_ok {
        problems.push("database: cannot be read".to_string());
    }
    if !health.media_folder_ok {
        problems.push("media: the media folder is missing".to_string());
    }
    problems
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
    let uptime_secs = worker.state.started.elapsed().as_secs();
    let problems = health_problems(&Health {
        uptime_secs,
        last_poll_secs_ago,
        poll_timeout_secs: worker.state.poll_timeout_secs,
        database_ok,
        media_folder_ok: worker.state.media_dir.is_dir(),
    });
    let body = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": uptime_secs,
        "database_ok": database_ok,
        "last_poll_secs_ago": last_poll_secs_ago,
        "problems": problems,
    });
    Response {
        status: if problems.is_empty() { 200 } else { 503 },
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
    let (path, content_type) = if item.kind == crate::domain::status::MediaKind::Image {
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

#[derive(Debug, Clone, PartialEq, Eq)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestError {
    /// The client closed without sending a request.
    Closed,
    Malformed,
    TargetTooLong,
    HeadTooLarge,
    BodyTooLarge,
    LengthRequired,
}

/// A complete request head: the request, and how many bytes of its body have
/// not arrived with the head.
#[derive(Debug)]
struct Head {
    request: Request,
    body_rest: u64,
}

/// A request head as it arrives, in pieces of any size, never more than
/// `MAX_HEAD_BYTES`. Memory grows with what the client sent, not before.
#[derive(Debug, Default)]
struct HeadReader {
    buf: Vec<u8>,
    /// Whether the request line has ended.
    line_ended: bool,
}

impl HeadReader {
    /// How many more bytes `push` takes.
    fn room(&self) -> usize {
        MAX_HEAD_BYTES - self.buf.len()
    }

    /// Adds bytes that arrived (beyond `room` they are ignored). Returns the
    /// head once it is complete, and an error as soon as the bytes so far
    /// cannot become a request this server accepts.
    fn push(&mut self, bytes: &[u8]) -> Result<Option<Head>, RequestError> {
        let bytes = &bytes[..bytes.len().min(self.room())];
        // The end of the head may straddle the previous piece.
        let from = self.buf.len().saturating_sub(3);
        let needed = self.buf.len() + bytes.len();
        if needed > self.buf.capacity() {
            let grown = needed.max(self.buf.capacity() * 2).min(MAX_HEAD_BYTES);
            self.buf.reserve_exact(grown - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
        self.line_ended |= bytes.contains(&b'\n');
        if let Some(at) = find_head_end(&self.buf[from..]) {
            let end = from + at;
            let (request, body_len) = parse_head(&self.buf[..end])?;
            let already = (self.buf.len() - end - 4) as u64;
            return Ok(Some(Head {
                request,
                body_rest: body_len.saturating_sub(already),
            }));
        }
        // A request line that does not end is cut off without waiting for it.
        if !self.line_ended && self.buf.len() > MAX_TARGET_BYTES + 32 {
            return Err(RequestError::TargetTooLong);
        }
        if self.room() == 0 {
            return Err(if self.line_ended {
                RequestError::HeadTooLarge
            } else {
                RequestError::TargetTooLong
            });
        }
        Ok(None)
    }

    /// What it means that the client closed before the head was complete.
    fn closed(&self) -> RequestError {
        if self.buf.is_empty() {
            RequestError::Closed
        } else {
            RequestError::Malformed
        }
    }
}

/// The request and the body length of a head (without its blank line): one
/// request line "METHOD /target HTTP/1.x", then "Name: value" lines.
fn parse_head(head: &[u8]) -> Result<(Request, u64), RequestError> {
    let head = std::str::from_utf8(head).map_err(|_| RequestError::Malformed)?;
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
    let request = Request {
        method: method.to_string(),
        target: target.to_string(),
    };
    Ok((request, body_len))
}

/// Where the blank line that ends the head starts.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
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
        503 => "Service Unavailable",
        _ => "",
    }
}

fn respond(stream: &mut TcpStream, response: Response, head_only: bool) {
    if let Err(e) = write_response(stream, response, head_only) {
        debug!("web: writing a response: {e}");
    }
    let _ = stream.shutdown(Shutdown::Write);
}

fn write_response(
    stream: &mut TcpStream,
    mut response: Response,
    head_only: bool,
) -> io::Result<()> {
    let (file, len) = match std::mem::replace(&mut response.body, Body::Bytes(Vec::new())) {
        Body::File(file, len) => (file, len),
        bytes => {
            response.body = bytes;
            return stream.write_all(&response_bytes(response, head_only));
        }
    };
    let head = head_bytes(&response, len);
    stream.write_all(&head)?;
    if head_only {
        return Ok(());
    }
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

/// A response with its body in memory, as the bytes to send (a file body is
/// left out: only a worker streams files).
fn response_bytes(response: Response, head_only: bool) -> Vec<u8> {
    let body = match &response.body {
        Body::Bytes(bytes) => bytes.as_slice(),
        Body::File(..) => &[],
    };
    let mut out = head_bytes(&response, body.len() as u64);
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

fn head_bytes(response: &Response, length: u64) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: {}\r\nContent-Length: {length}\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        Utc::now().format("%a, %d %b %Y %H:%M:%S GMT"),
        response.content_type,
    );
    for (name, value) in &response.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_problems_are_a_late_poll_a_failing_database_and_a_missing_media_folder() {
        let healthy = Health {
            uptime_secs: 1000,
            last_poll_secs_ago: Some(89),
            poll_timeout_secs: 30,
            database_ok: true,
            media_folder_ok: true,
        };
        assert!(health_problems(&healthy).is_empty());
        let starting = Health {
            uptime_secs: 90,
            last_poll_secs_ago: None,
            ..healthy
        };
        assert!(health_problems(&starting).is_empty());
        let never = Health {
            uptime_secs: 91,
            last_poll_secs_ago: None,
            ..starting
        };
        assert_eq!(
            health_problems(&never),
            ["telegram: no successful poll since start 91 s ago (limit 90 s)"]
        );
        let broken = Health {
            uptime_secs: 1000,
            last_poll_secs_ago: Some(91),
            poll_timeout_secs: 30,
            database_ok: false,
            media_folder_ok: false,
        };
        assert_eq!(
            health_problems(&broken),
            [
                "telegram: no successful poll for 91 s (limit 90 s)",
                "database: cannot be read",
                "media: the media folder is missing"
            ]
        );
    }

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

    /// Feeds `bytes` to a HeadReader in pieces of the given sizes (as the reader
    /// thread would, never more than `room`) until it decides; returns what it
    /// decided (None: still waiting) and the reader.
    fn feed(bytes: &[u8], sizes: &[usize]) -> (Option<Result<Head, RequestError>>, HeadReader) {
        let mut reader = HeadReader::default();
        let mut at = 0;
        let mut sizes = sizes.iter().copied().cycle();
        while at < bytes.len() {
            let n = sizes
                .next()
                .unwrap_or(usize::MAX)
                .clamp(1, reader.room())
                .min(bytes.len() - at);
            let pushed = reader.push(&bytes[at..at + n]);
            at += n;
            match pushed {
                Ok(None) => {}
                Ok(Some(head)) => return (Some(Ok(head)), reader),
                Err(e) => return (Some(Err(e)), reader),
            }
        }
        (None, reader)
    }

    fn head_of(bytes: &[u8], sizes: &[usize]) -> Result<Head, RequestError> {
        feed(bytes, sizes).0.expect("the head is complete")
    }

    #[test]
    fn a_head_in_any_pieces_is_the_same_request() {
        let bytes =
            b"GET /media/7?exp=1&sig=ab HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel";
        // The body that came with the head's last piece is counted; the rest
        // is read after it.
        for (sizes, body_rest) in [(&[1][..], 5), (&[4], 3), (&[3], 5), (&[usize::MAX], 2)] {
            let head = head_of(bytes, sizes).unwrap();
            assert_eq!(head.request.method, "GET");
            assert_eq!(head.request.target, "/media/7?exp=1&sig=ab");
            assert_eq!(head.body_rest, body_rest, "{sizes:?}");
        }
        // Before the blank line it is still waiting, and holds what it was sent.
        let (decided, reader) = feed(&bytes[..bytes.len() - 6], &[1]);
        assert!(decided.is_none());
        assert_eq!(reader.buf.len(), bytes.len() - 6);
        assert_eq!(HeadReader::default().closed(), RequestError::Closed);
        assert_eq!(reader.closed(), RequestError::Malformed);
    }

    #[test]
    fn heads_beyond_the_limits_are_refused_as_soon_as_they_are() {
        // A request line that does not end: refused after MAX_TARGET_BYTES and a little.
        let line = vec![b'a'; 10_000];
        let (decided, reader) = feed(&line, &[100]);
        assert_eq!(decided.unwrap().unwrap_err(), RequestError::TargetTooLong);
        assert!(reader.buf.len() <= MAX_TARGET_BYTES + 32 + 100);
        // Header lines that do not end: refused when the buffer is full, never beyond.
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(20_000, b'b');
        let (decided, reader) = feed(&big, &[4096]);
        assert_eq!(decided.unwrap().unwrap_err(), RequestError::HeadTooLarge);
        assert_eq!(reader.buf.len(), MAX_HEAD_BYTES);
        assert!(reader.buf.capacity() <= MAX_HEAD_BYTES);
        for (head, want) in [
            (
                &b"GET / HTTP/1.1\r\nContent-Length: 16385\r\n\r\n"[..],
                RequestError::BodyTooLarge,
            ),
            (
                b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                RequestError::LengthRequired,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
                RequestError::Malformed,
            ),
            (b"GET  / HTTP/1.1\r\n\r\n", RequestError::Malformed),
            (b"get / HTTP/1.1\r\n\r\n", RequestError::Malformed),
            (
                b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
                RequestError::Malformed,
            ),
            (b"GET /\xff HTTP/1.1\r\n\r\n", RequestError::Malformed),
        ] {
            assert_eq!(
                head_of(head, &[7]).unwrap_err(),
                want,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    /// Property test of the request-head parser: run alone with
    /// `cargo test --lib fuzz_http_head`; PROPTEST_CASES sets the case count.
    mod fuzz_http_head {
        use super::*;
        use proptest::prelude::*;

        fn config() -> ProptestConfig {
            let cases = std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2_000);
            // A failing input is printed, not saved to a file in the tree.
            ProptestConfig {
                cases,
                failure_persistence: None,
                ..ProptestConfig::default()
            }
        }

        /// What holds of every outcome, whatever the client sent.
        fn check_bounds(decided: &Option<Result<Head, RequestError>>, reader: &HeadReader) {
            assert!(reader.buf.len() <= MAX_HEAD_BYTES);
            assert!(reader.buf.capacity() <= MAX_HEAD_BYTES);
            if let Some(Ok(head)) = decided {
                let Request { method, target } = &head.request;
                assert!(!method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()));
                assert!(target.starts_with('/') && target.len() <= MAX_TARGET_BYTES);
                assert!(target.bytes().all(|b| b.is_ascii_graphic()));
                assert!(head.body_rest <= MAX_BODY_BYTES);
            }
        }

        /// A valid head: its bytes (with `body_sent` bytes of body after it),
        /// the request and the body length it announces.
        fn valid_head() -> impl Strategy<Value = (Vec<u8>, Request, u64, usize)> {
            let header = ("[A-Za-z][A-Za-z0-9-]{0,20}", "[ -~]{0,60}").prop_filter(
                "not a length header",
                |(name, _): &(String, String)| {
                    !name.eq_ignore_ascii_case("content-length")
                        && !name.eq_ignore_ascii_case("transfer-encoding")
                },
            );
            (
                "[A-Z]{1,10}",
                "/[!-~]{0,2047}",
                prop_oneof![Just("HTTP/1.0"), Just("HTTP/1.1")],
                prop::collection::vec(header, 0..20),
                prop::option::of((0..=MAX_BODY_BYTES, 0usize..3, any::<bool>())),
                0usize..2048,
            )
                .prop_map(|(method, target, version, headers, length, body_sent)| {
                    let mut head = format!("{method} {target} {version}\r\n");
                    for (name, value) in &headers {
                        head.push_str(&format!("{name}:{value}\r\n"));
                    }
                    let mut body_len = 0;
                    let mut sent = 0;
                    if let Some((len, case, padded)) = length {
                        let name = ["Content-Length", "content-length", "CONTENT-LENGTH"][case];
                        let pad = if padded { " " } else { "" };
                        head.push_str(&format!("{name}:{pad}{len}{pad}\r\n"));
                        body_len = len;
                        sent = body_sent.min(len as usize);
                    }
                    head.push_str("\r\n");
                    let mut bytes = head.into_bytes();
                    bytes.resize(bytes.len() + sent, b'x');
                    (bytes, Request { method, target }, body_len, sent)
                })
        }

        fn sizes() -> impl Strategy<Value = Vec<usize>> {
            prop::collection::vec(prop_oneof![1usize..8, 8usize..600, Just(usize::MAX)], 1..8)
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn arbitrary_bytes_never_panic(
                bytes in prop::collection::vec(any::<u8>(), 0..12_000),
                sizes in sizes(),
            ) {
                let (decided, reader) = feed(&bytes, &sizes);
                check_bounds(&decided, &reader);
            }

            #[test]
            fn mutated_valid_heads_never_panic(
                (bytes, ..) in valid_head(),
                mutations in prop::collection::vec((any::<usize>(), 0u8..3, any::<u8>()), 1..8),
                sizes in sizes(),
            ) {
                let mut bytes = bytes;
                for (at, kind, byte) in mutations {
                    let at = at % (bytes.len() + 1);
                    match kind {
                        0 if at < bytes.len() => bytes[at] = byte,
                        1 => bytes.insert(at, byte),
                        _ if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        _ => {}
                    }
                }
                let (decided, reader) = feed(&bytes, &sizes);
                check_bounds(&decided, &reader);
            }

            #[test]
            fn valid_heads_round_trip(
                (bytes, request, body_len, sent) in valid_head(),
                sizes in sizes(),
            ) {
                prop_assert!(bytes.len() <= MAX_HEAD_BYTES);
                let (decided, reader) = feed(&bytes, &sizes);
                check_bounds(&decided, &reader);
                let head = decided.expect("a complete head").expect("a valid head");
                prop_assert_eq!(&head.request, &request);
                // It decided on the piece that completed the head; the body
                // bytes that came with that piece are counted.
                let head_len = bytes.len() - sent;
                prop_assert!(reader.buf.len() >= head_len);
                prop_assert_eq!(find_head_end(&reader.buf), Some(head_len - 4));
                let with_head = (reader.buf.len() - head_len) as u64;
                prop_assert_eq!(head.body_rest, body_len - with_head);
            }
        }
    }
}
