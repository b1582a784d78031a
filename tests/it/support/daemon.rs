//! A running `storyline run` process: signals, waits with deadlines, and a SIGKILL on
//! Drop so a failing test never leaves a daemon behind.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// How long `terminate` waits for a clean exit after SIGTERM.
const TERMINATE_DEADLINE: Duration = Duration::from_secs(15);

pub struct Daemon {
    child: Child,
}

impl Daemon {
    pub(crate) fn new(child: Child) -> Daemon {
        Daemon { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name ("TERM", "INT", "HUP", ...).
    pub fn signal(&self, name: &str) {
        let pid = self.pid();
        if let Err(e) = send_signal(pid, name) {
            panic!("sending SIG{name} to storyline (pid {pid}): {e}");
        }
    }

    /// SIGKILL, as a power cut would; waits for the process to be gone.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit; returns the status and how long it took.
    /// Panics (after a SIGKILL) if the daemon is still running after 15 s.
    pub fn terminate(mut self) -> (ExitStatus, Duration) {
        let started = Instant::now();
        self.signal("TERM");
        match self.wait_timeout(TERMINATE_DEADLINE) {
            Some(status) => (status, started.elapsed()),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "storyline (pid {}) still running {TERMINATE_DEADLINE:?} after SIGTERM",
                    self.pid()
                );
            }
        }
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => return None,
                Err(error) => panic!("wait for storyline (pid {}): {error}", self.pid()),
            }
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Signals a process with kill(2), so the tests need no `kill` program (a
/// minimal Debian has none); the error says why it failed (the process is
/// already gone, for one).
pub fn send_signal(pid: u32, name: &str) -> Result<(), String> {
    let signal = match name {
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        "KILL" => libc::SIGKILL,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "USR1" => libc::SIGUSR1,
        other => return Err(format!("unknown signal name {other:?}")),
    };
    let pid = libc::pid_t::try_from(pid).map_err(|_| format!("pid {pid} is out of range"))?;
    // SAFETY: kill(2) only sends a signal; it touches no memory of ours.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}
