//! The HTTP plumbing both fake servers share: a tiny_http server on a free
//! loopback port, a few worker threads handing each request to the fake's own
//! handler, the fake's state behind a mutex with a condition variable (so tests
//! and long polls can wait for a change), and a stop that wakes every waiter and
//! joins the workers. What a fake answers is its own (`fake_telegram`,
//! `fake_instagram`); how it serves is here.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Worker threads per fake: enough for a long poll, the outbox and a test's calls.
const WORKERS: usize = 4;

/// A fake's state and the means to wait for it to change.
pub struct Shared<S> {
    state: Mutex<S>,
    pub changed: Condvar,
    stopping: AtomicBool,
}

impl<S> Shared<S> {
    /// Locks the state, ignoring poisoning: a test that panicked inside a wait's
    /// predicate must not take the server down with it.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for a change (or `timeout`).
    pub fn wait<'a>(&self, state: MutexGuard<'a, S>, timeout: Duration) -> MutexGuard<'a, S> {
        match self.changed.wait_timeout(state, timeout) {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    /// Waits `duration`, cut short when the server stops.
    pub fn pause<'a>(&self, mut state: MutexGuard<'a, S>, duration: Duration) -> MutexGuard<'a, S> {
        let deadline = Instant::now() + duration;
        while !self.is_stopping() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self.wait(state, deadline - now);
        }
        state
    }

    /// Waits until `find` finds something in the state and returns it; panics after
    /// `timeout` with what `explain` says of the state then.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        find: impl Fn(&S) -> Option<T>,
        explain: impl Fn(&S) -> String,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(found) = find(&state) {
                return found;
            }
            let now = Instant::now();
            if now >= deadline {
                let why = explain(&state);
                drop(state);
                panic!("{why}");
            }
            state = self.wait(state, deadline - now);
        }
    }

    /// Whether the server is stopping (read it with the state locked, then wait:
    /// the stop sets it under the lock, so the wake-up is never missed).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// A running fake: its server, its workers and its shared state.
pub struct FakeServer<S> {
    pub shared: Arc<Shared<S>>,
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    pub url: String,
}

impl<S: Send + 'static> FakeServer<S> {
    /// Binds a free loopback port and serves each request with `handle`.
    pub fn start(
        name: &str,
        state: S,
        handle: fn(&Shared<S>, tiny_http::Request, SocketAddr),
    ) -> FakeServer<S> {
        let server = Arc::new(
            tiny_http::Server::http("127.0.0.1:0")
                .unwrap_or_else(|e| panic!("fake {name}: bind: {e}")),
        );
        let local = server
            .server_addr()
            .to_ip()
            .unwrap_or_else(|| panic!("fake {name}: not listening on an IP address"));
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
        });
        let workers = (0..WORKERS)
            .map(|worker| {
                let shared = Arc::clone(&shared);
                let server = Arc::clone(&server);
                std::thread::Builder::new()
                    .name(format!("fake-{name}-{worker}"))
                    .spawn(move || {
                        while let Ok(request) = server.recv() {
                            handle(&shared, request, local);
                        }
                    })
                    .unwrap_or_else(|e| panic!("fake {name}: spawn a worker: {e}"))
            })
            .collect();
        FakeServer {
            shared,
            server,
            workers,
            url: format!("http://{local}"),
        }
    }
}

impl<S> Drop for FakeServer<S> {
    fn drop(&mut self) {
        {
            let _state = self.shared.lock();
            self.shared.stopping.store(true, Ordering::SeqCst);
        }
        self.shared.changed.notify_all();
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// `a=1&b=x%20y` as name/value pairs, decoded (`+` is a space).
pub fn parse_urlencoded(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        decoded.push(byte);
                        index += 2;
                    }
                    Err(_) => decoded.push(b'%'),
                }
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
