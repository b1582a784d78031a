//! A running `storyline run` process: signals, waits with deadlines, and a SIGKILL on
//! Drop so a failing test never leaves a daemon behind.

use std::process::{Child, Command, ExitStatus};
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
        assert!(send_signal(pid, name), "kill -{name} {pid} failed");
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

/// Signals a process with kill(1), since the tests have no libc; false when kill
/// failed (the process is already gone, for one).
pub fn send_signal(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|status| status.success())
}
