//! `Secret`: a string that never prints (tokens, the app secret), below every
//! module that holds one (`config`, `instagram`, `accounts`).

use std::fmt;

/// What a `Secret` prints as.
pub const MASK: &str = "********";

/// A secret string whose Debug/Display print "********" (never the value).
///
/// Formatting is the only way a value usually reaches a log line, so masking it here
/// keeps tokens out of logs even when a whole `Config` is printed with `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The real value, for the one place that must send it (an HTTP request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}
