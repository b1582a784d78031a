//! Part `http/` (an adapter's plumbing): the one way Storyline builds an HTTP
//! client, for the Telegram and Instagram adapters. Knows no API and no handler;
//! with `telegram/` and `instagram/` the only place that names `ureq`
//! (`tests/boundaries.rs` checks).
//!
//! ureq resolves the host again for every request, even when it then reuses a
//! pooled connection, and with a timeout set it does so on a thread of its own:
//! one thread started, and one DNS lookup, per Bot API call (307 threads for 300
//! commands in `cargo bench --bench daemon`). Addresses are kept for a few
//! minutes here instead, so a kept-alive connection costs no lookup.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// Each way, per pooled connection.
const BUFFER_BYTES: usize = 16 * 1024;

/// How long a looked-up address is used before it is looked up again.
const FRESH_FOR: Duration = Duration::from_secs(300);

/// An agent (one connection pool) whose calls give up after `timeout` in all and
/// `connect` to connect; HTTP errors are answers, not errors.
pub fn agent(timeout: Duration, connect: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .timeout_connect(Some(connect.min(timeout)))
        .user_agent(concat!("storyline/", env!("CARGO_PKG_VERSION")))
        // ureq's 128 KB each way per pooled connection is sized for downloads;
        // our calls stream through a smaller buffer (it holds a response's
        // headers, and a request body goes through it in pieces).
        .input_buffer_size(BUFFER_BYTES)
        .output_buffer_size(BUFFER_BYTES)
        .build();
    ureq::Agent::with_parts(
        config,
        DefaultConnector::default(),
        KeptAddresses::default(),
    )
}

/// ureq's resolver (a lookup on a thread that the call's timeout bounds), with
/// each host's addresses kept for `FRESH_FOR`.
#[derive(Default)]
struct KeptAddresses {
    lookup: DefaultResolver,
    known: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

impl fmt::Debug for KeptAddresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeptAddresses").finish_non_exhaustive()
    }
}

impl KeptAddresses {
    fn known(&self) -> MutexGuard<'_, HashMap<String, (Instant, ResolvedSocketAddrs)>> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Resolver for KeptAddresses {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or_default(),
            uri.authority().map_or("", |a| a.as_str())
        );
        if let Some((at, addrs)) = self.known().get(&key) {
            if at.elapsed() < FRESH_FOR {
                return Ok(addrs.clone());
            }
        }
        let addrs = self.lookup.resolve(uri, config, timeout)?;
        let mut known = self.known();
        // A handful of hosts in practice; a long-lived odd one is not kept forever.
        known.retain(|_, (at, _)| at.elapsed() < FRESH_FOR);
        known.insert(key, (Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};

    /// No deadline: the lookup runs on the test's thread.
    fn timeout() -> NextTimeout {
        NextTimeout::default()
    }

    fn addresses(addr: &str) -> ResolvedSocketAddrs {
        let resolver = KeptAddresses::default();
        let mut addrs = resolver.empty();
        addrs.push(addr.parse::<SocketAddr>().unwrap());
        addrs
    }

    #[test]
    fn a_kept_address_is_used_until_it_is_stale() {
        let resolver = KeptAddresses::default();
        let config = Config::default();
        let uri: Uri = "http://127.0.0.1:8081/x".parse().unwrap();
        // What the cache says wins over a lookup while it is fresh...
        resolver.known().insert(
            "http://127.0.0.1:8081".to_string(),
            (Instant::now(), addresses("10.9.8.7:8081")),
        );
        let kept = resolver.resolve(&uri, &config, timeout()).unwrap();
        assert_eq!(kept[0], "10.9.8.7:8081".parse::<SocketAddr>().unwrap());
        // ...and once stale, the host is looked up again.
        let Some(long_ago) = Instant::now().checked_sub(FRESH_FOR * 2) else {
            return; // a machine up for less than ten minutes cannot say
        };
        resolver.known().insert(
            "http://127.0.0.1:8081".to_string(),
            (long_ago, addresses("10.9.8.7:8081")),
        );
        let looked_up = resolver.resolve(&uri, &config, timeout()).unwrap();
        assert_eq!(
            looked_up[0],
            "127.0.0.1:8081".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn addresses_are_kept_per_scheme_host_and_port() {
        let resolver = KeptAddresses::default();
        let config = Config::default();
        for (uri, port) in [
            ("http://127.0.0.1:8081/x", 8081),
            ("http://127.0.0.1:8082/y", 8082),
            ("http://127.0.0.1:8081/z", 8081),
        ] {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(
                resolver.resolve(&uri, &config, timeout()).unwrap()[0].port(),
                port
            );
        }
        assert_eq!(resolver.known().len(), 2);
    }

    /// Bodies many times the buffers go through both ways.
    #[test]
    fn bodies_larger_than_the_buffers_go_through() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 8192];
            // Head and a 200 KB body, by its Content-Length.
            let body_len = loop {
                let read = stream.read(&mut buf).unwrap();
                assert!(read > 0, "the request ended early");
                request.extend_from_slice(&buf[..read]);
                let text = String::from_utf8_lossy(&request).to_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap();
                    if request.len() >= end + 4 + length {
                        break length;
                    }
                }
            };
            let answer = "y".repeat(300_000);
            stream
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                        answer.len()
                    )
                    .as_bytes(),
                )
                .unwrap();
            stream.write_all(answer.as_bytes()).unwrap();
            body_len
        });
        let agent = agent(Duration::from_secs(10), Duration::from_secs(5));
        let sent = "x".repeat(200_000);
        let mut answer = agent.post(&url).send(sent.as_str()).unwrap();
        let text = answer
            .body_mut()
            .with_config()
            .limit(1_000_000)
            .read_to_string()
            .unwrap();
        assert_eq!(text.len(), 300_000);
        assert_eq!(server.join().unwrap(), 200_000);
    }

    /// The agent's calls go through: twenty on one kept-alive connection.
    #[test]
    fn the_agent_calls_through_kept_addresses() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            for _ in 0..20 {
                if stream.read(&mut buf).unwrap_or(0) == 0 {
                    return false;
                }
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .unwrap();
            }
            true
        });
        let agent = agent(Duration::from_secs(5), Duration::from_secs(5));
        for _ in 0..20 {
            let mut answer = agent.get(&url).call().unwrap();
            assert_eq!(answer.body_mut().read_to_string().unwrap(), "ok");
        }
        assert!(server.join().unwrap(), "the connection was not kept alive");
    }
}
