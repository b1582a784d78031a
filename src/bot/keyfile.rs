//! The encryption key file: 32 random bytes, mode 0600, that seal Instagram
//! tokens in the database. A key is created only for a database that holds no
//! sealed value: a missing or unusable key beside sealed tokens (a restore that
//! forgot it) stops the start with an explanation, because a new key would
//! silently make every connected account unusable.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use log::{error, info};

use crate::domain::markup::plural;
use ring::rand::{SecureRandom, SystemRandom};

pub use crate::crypto::KEY_LEN;

/// Why the key cannot be used; the text says what was lost and what to do.
/// Callers treat it as a configuration problem (exit 2), never as a reason to
/// make a new key.
#[derive(Debug)]
pub struct KeyRefused(pub String);

impl std::fmt::Display for KeyRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyRefused {}

/// What to do when the key cannot be had.
const LOST_FOR_GOOD: &str = "If that key is lost for good, `storyline accounts forget-tokens` \
     removes the sealed tokens (the accounts stay; connect them again with /connect), and the \
     next start creates a new key.";

/// The key for a database holding `sealed` values: read and checked against
/// them, or created when the file is missing and nothing is sealed yet. A key
/// file readable by others is made 0600 (with an ERROR line saying so).
pub fn load(path: &Path, sealed: &[String]) -> Result<[u8; KEY_LEN]> {
    let shown = path.display();
    let meta =
        match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && sealed.is_empty() => {
                create(path)?;
                return read(path).ok_or_else(|| {
                    KeyRefused(format!("{shown}: the key file just created cannot be read")).into()
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyRefused(format!(
                "{shown}: the key file is missing, but the database holds {} that only that key \
                 opens. Not making a new key. Restore the key file from the backup you made with \
                 the database (same path, mode 0600). {LOST_FOR_GOOD}",
                plural(sealed.len(), "sealed Instagram token", "sealed Instagram tokens")
            ))
                .into())
            }
            Err(e) => {
                return Err(KeyRefused(format!("{shown}: cannot read the key file: {e}")).into())
            }
        };
    if !meta.is_file() || meta.len() != KEY_LEN as u64 {
        let what = if meta.is_file() {
            format!("is {}, not {KEY_LEN}", plural(meta.len(), "byte", "bytes"))
        } else {
            "is not a file".to_string()
        };
        let advice = if sealed.is_empty() {
            "Move it away and start again: a new key is made when the file is missing.".to_string()
        } else {
            format!(
                "The database holds {} that only the right key opens: \
                 restore it from your backup. {LOST_FOR_GOOD}",
                plural(
                    sealed.len(),
                    "sealed Instagram token",
                    "sealed Instagram tokens"
                )
            )
        };
        return Err(KeyRefused(format!("{shown}: the key file {what}. {advice}")).into());
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("{shown}: making the key file private (0600)"))?;
        error!(
            "{shown}: the key file was readable by others (mode {mode:04o}); made it 0600. \
             Anyone who read it can open the sealed tokens: consider reconnecting the accounts"
        );
    }
    let Some(key) = read(path) else {
        return Err(KeyRefused(format!("{shown}: cannot read the key file")).into());
    };
    let unopened = sealed
        .iter()
        .filter(|value| crate::crypto::open(&key, value).is_err())
        .count();
    if unopened > 0 {
        return Err(KeyRefused(format!(
            "{shown} does not open {unopened} of {}: it is not the \
             key they were sealed with. Restore the right key file from your backup. {LOST_FOR_GOOD}",
            plural(sealed.len(), "sealed Instagram token", "sealed Instagram tokens")
        ))
        .into());
    }
    Ok(key)
}

fn create(path: &Path) -> Result<()> {
    let mut key = [0u8; KEY_LEN];
    if SystemRandom::new().fill(&mut key).is_err() {
        bail!("the system random number generator failed");
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: creating the key folder", dir.display()))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("{}: creating the key file", path.display()))?;
    file.write_all(&key)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("{}: writing the key file", path.display()))?;
    info!("created a new encryption key at {}", path.display());
    Ok(())
}

/// Reads the key; `None` when it is missing or malformed.
pub fn read(path: &Path) -> Option<[u8; KEY_LEN]> {
    std::fs::read(path).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn refusal(result: Result<[u8; KEY_LEN]>) -> String {
        let e = result.unwrap_err();
        assert!(e.is::<KeyRefused>(), "not a refusal: {e:#}");
        e.to_string()
    }

    #[test]
    fn creates_once_with_private_mode_when_nothing_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/secret.key");
        let first = load(&path, &[]).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(load(&path, &[]).unwrap(), first);
    }

    #[test]
    fn never_replaces_a_key_that_sealed_tokens_need() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let key = load(&path, &[]).unwrap();
        let sealed = vec![crate::crypto::seal(&key, "token").unwrap()];
        assert_eq!(load(&path, &sealed).unwrap(), key);

        std::fs::remove_file(&path).unwrap();
        let text = refusal(load(&path, &sealed));
        assert!(
            text.contains("missing") && text.contains("1 sealed"),
            "{text}"
        );
        assert!(!path.exists(), "a new key was made");

        std::fs::write(&path, b"short").unwrap();
        let text = refusal(load(&path, &sealed));
        assert!(text.contains("is 5 bytes, not 32"), "{text}");
        assert_eq!(std::fs::read(&path).unwrap(), b"short");

        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(refusal(load(&path, &sealed)).contains("is not a file"));
        std::fs::remove_dir(&path).unwrap();

        std::fs::write(&path, [7u8; KEY_LEN]).unwrap();
        let text = refusal(load(&path, &sealed));
        assert!(text.contains("does not open 1 of 1"), "{text}");
    }

    #[test]
    fn a_bad_key_file_is_refused_even_with_nothing_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        std::fs::write(&path, b"short").unwrap();
        let text = refusal(load(&path, &[]));
        assert!(text.contains("Move it away"), "{text}");
        assert_eq!(std::fs::read(&path).unwrap(), b"short");
    }

    #[test]
    fn a_key_readable_by_others_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let key = load(&path, &[]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load(&path, &[]).unwrap(), key);
        assert_eq!(mode(&path), 0o600);
    }
}
