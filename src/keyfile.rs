//! The encryption key file: 32 random bytes, created mode 0600 on first run.
//! Later issues seal Instagram tokens with it; losing it means reconnecting
//! accounts, never a crash.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use log::{info, warn};
use ring::rand::{SecureRandom, SystemRandom};

pub const KEY_LEN: usize = 32;

/// Creates the key file if it is missing; warns if it exists but is unusable.
pub fn ensure(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            if meta.len() != KEY_LEN as u64 {
                warn!(
                    "{}: the key file is not {KEY_LEN} bytes; sealed tokens will need reconnecting",
                    path.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(e).with_context(|| format!("{}: reading the key file", path.display())),
    }
}

fn create(path: &Path) -> Result<()> {
    let mut key = [0u8; KEY_LEN];
    if SystemRandom::new().fill(&mut key).is_err() {
        bail!("the system random number generator failed");
    }
    if let Some(dir) = path.parent() {
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
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_once_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/secret.key");
        ensure(&path).unwrap();
        let first = read(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        ensure(&path).unwrap();
        assert_eq!(read(&path).unwrap(), first);
        std::fs::write(&path, b"short").unwrap();
        ensure(&path).unwrap();
        assert_eq!(read(&path), None);
    }
}
