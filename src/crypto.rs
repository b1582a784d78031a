//! Sealing secrets at rest: AES-256-GCM (ring) under the 32-byte key of
//! `[storage] key_file`, a fresh random 96-bit nonce per value.
//!
//! A sealed value is text, so it fits a TEXT column and survives a backup by
//! copy: `"v1:"` followed by the lowercase hex of nonce ‖ ciphertext ‖ tag. The
//! version prefix lets a later format (another cipher, a key id) sit beside old
//! rows. Opening never panics: a wrong key, a flipped bit or garbage is an
//! `OpenError`, and the error carries no part of the value.

use std::fmt;

use anyhow::{anyhow, Result};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// The length of the encryption key (AES-256).
pub const KEY_LEN: usize = 32;

const PREFIX: &str = "v1:";
const TAG_LEN: usize = 16;

/// Why a sealed value could not be opened. Deliberately says nothing about the
/// value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not something `seal` produced: wrong prefix, not hex, too short.
    Malformed,
    /// Well-formed, but the key is not the one it was sealed with, or the value
    /// was altered.
    WrongKeyOrTampered,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpenError::Malformed => "the sealed value is malformed",
            OpenError::WrongKeyOrTampered => {
                "the sealed value does not open with this key (another key, or altered)"
            }
        })
    }
}

impl std::error::Error for OpenError {}

fn aead_key(key: &[u8; KEY_LEN]) -> LessSafeKey {
    // A 32-byte key is always a valid AES-256 key; ring only refuses wrong lengths.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32 bytes is an AES-256 key"))
}

/// Seals `plaintext` under `key` with a fresh random nonce.
pub fn seal(key: &[u8; KEY_LEN], plaintext: &str) -> Result<String> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| anyhow!("the system random number generator failed"))?;
    let mut in_out = plaintext.as_bytes().to_vec();
    aead_key(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut in_out,
        )
        .map_err(|_| anyhow!("sealing failed"))?;
    let mut text = String::with_capacity(PREFIX.len() + 2 * (NONCE_LEN + in_out.len()));
    text.push_str(PREFIX);
    text.push_str(&crate::hex::encode(&nonce));
    text.push_str(&crate::hex::encode(&in_out));
    Ok(text)
}

/// Opens a value made by `seal` with the same key.
pub fn open(key: &[u8; KEY_LEN], sealed: &str) -> Result<String, OpenError> {
    let hex = sealed.strip_prefix(PREFIX).ok_or(OpenError::Malformed)?;
    let bytes = crate::hex::decode(hex).ok_or(OpenError::Malformed)?;
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return Err(OpenError::Malformed);
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Malformed)?;
    let mut in_out = ciphertext.to_vec();
    let plaintext = aead_key(key)
        .open_in_place(nonce, Aad::empty(), &mut in_out)
        .map_err(|_| OpenError::WrongKeyOrTampered)?;
    // Only `seal` makes values that open, and it seals UTF-8; anything else
    // would mean a forged value under our key.
    String::from_utf8(plaintext.to_vec()).map_err(|_| OpenError::WrongKeyOrTampered)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_LEN] = [7; KEY_LEN];
    const OTHER_KEY: [u8; KEY_LEN] = [8; KEY_LEN];

    /// A small deterministic generator, so a failing fuzz case can be replayed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn round_trips_and_uses_a_fresh_nonce_each_time() {
        for plaintext in ["", "IGQVJ-token", "ünïcødé ✓", &"x".repeat(5000)] {
            let a = seal(&KEY, plaintext).unwrap();
            let b = seal(&KEY, plaintext).unwrap();
            assert!(a.starts_with("v1:"), "{a}");
            assert_ne!(a, b, "two seals of one value must differ");
            assert_eq!(
                a.len(),
                3 + 2 * (NONCE_LEN + plaintext.len() + TAG_LEN),
                "{a}"
            );
            assert_eq!(open(&KEY, &a).unwrap(), plaintext);
            assert_eq!(open(&KEY, &b).unwrap(), plaintext);
            if !plaintext.is_empty() {
                assert!(!a.contains(plaintext));
            }
        }
    }

    #[test]
    fn wrong_key_tampering_and_garbage_are_errors() {
        let sealed = seal(&KEY, "the-secret-token").unwrap();
        assert_eq!(
            open(&OTHER_KEY, &sealed),
            Err(OpenError::WrongKeyOrTampered)
        );
        // Every single-bit change of the payload is caught.
        let payload = crate::hex::decode(&sealed[3..]).unwrap();
        for i in 0..payload.len() {
            for bit in 0..8 {
                let mut altered = payload.clone();
                altered[i] ^= 1 << bit;
                let mut text = String::from("v1:");
                text.push_str(&crate::hex::encode(&altered));
                assert_eq!(open(&KEY, &text), Err(OpenError::WrongKeyOrTampered));
            }
        }
        let truncated = &sealed[..sealed.len() - 2];
        for (text, expected) in [
            ("", OpenError::Malformed),
            ("v1:", OpenError::Malformed),
            ("v2:00", OpenError::Malformed),
            ("the-secret-token", OpenError::Malformed),
            (&sealed[3..], OpenError::Malformed),
            (&sealed[..sealed.len() - 1], OpenError::Malformed),
            (truncated, OpenError::WrongKeyOrTampered),
            (&sealed.to_uppercase(), OpenError::Malformed),
            (&format!("{sealed} "), OpenError::Malformed),
            (&format!("v1:{}", "00".repeat(27)), OpenError::Malformed),
            (
                &format!("v1:{}", "00".repeat(28)),
                OpenError::WrongKeyOrTampered,
            ),
        ] {
            assert_eq!(open(&KEY, text), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn errors_never_quote_the_value() {
        let sealed = seal(&KEY, "the-secret-token").unwrap();
        for error in [
            open(&OTHER_KEY, &sealed).unwrap_err(),
            open(&KEY, "the-secret-token").unwrap_err(),
        ] {
            let text = format!("{error} {error:?}");
            assert!(!text.contains("secret"), "{text}");
            assert!(!text.contains(&sealed[3..20]), "{text}");
        }
    }

    #[test]
    fn open_never_panics_on_random_input() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let alphabet: Vec<char> = "0123456789abcdefABCDEF:v1 \u{0}é✓".chars().collect();
        let valid = seal(&KEY, "token").unwrap();
        for round in 0..20_000 {
            let len = rng.below(120);
            let mut text: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            match round % 4 {
                0 => text.insert_str(0, "v1:"),
                1 => {
                    // A valid value with one character replaced.
                    let mut chars: Vec<char> = valid.chars().collect();
                    let at = rng.below(chars.len());
                    chars[at] = alphabet[rng.below(alphabet.len())];
                    text = chars.into_iter().collect();
                }
                _ => {}
            }
            if let Ok(plaintext) = open(&KEY, &text) {
                // Only an unchanged valid value may open.
                assert_eq!(text, valid, "{text:?} opened to {plaintext:?}");
            }
        }
    }
}
