//! Signed, expiring media URLs: the Graph API fetches a story's file from the web
//! server, so the link must work for anyone who holds it (Instagram) and for no one
//! else, and only for a while. The HMAC key is derived from the key file with HKDF,
//! so the key that seals tokens is never used for anything else.

use std::fmt;

use ring::{hkdf, hmac};

const HKDF_INFO: &[u8] = b"storyline media url v1";
const ROUTE: &str = "/media/";
const SIG_HEX_LEN: usize = 64;
/// The longest decimal an i64 can need (without a sign).
const MAX_DECIMAL_DIGITS: usize = 19;

/// Why a media request path was refused. The web server answers all three the
/// same way; the difference is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaUrlError {
    Malformed,
    Expired,
    BadSignature,
}

impl fmt::Display for MediaUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MediaUrlError::Malformed => "the media link is malformed",
            MediaUrlError::Expired => "the media link has expired",
            MediaUrlError::BadSignature => "the media link's signature is wrong",
        })
    }
}

impl std::error::Error for MediaUrlError {}

/// Signs and checks media paths; holds only the derived key.
pub struct UrlSigner {
    key: hmac::Key,
}

impl UrlSigner {
    /// Derives the URL key from the key file's 32 bytes (HKDF-SHA256, no salt,
    /// info "storyline media url v1").
    pub fn new(key_file_bytes: &[u8; 32]) -> UrlSigner {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(key_file_bytes);
        let okm = prk
            .expand(&[HKDF_INFO], hmac::HMAC_SHA256)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        UrlSigner {
            key: hmac::Key::from(okm),
        }
    }

    /// "/media/{item_id}?exp={unix}&sig={hex}", the signature an HMAC-SHA256 over
    /// "{item_id}:{exp}" in lowercase hex.
    pub fn sign_path(&self, item_id: i64, expires_unix: i64) -> String {
        let tag = hmac::sign(&self.key, message(item_id, expires_unix).as_bytes());
        format!(
            "{ROUTE}{item_id}?exp={expires_unix}&sig={}",
            crate::hex::encode(tag.as_ref())
        )
    }

    /// The item id of a well-formed, correctly signed, unexpired request path and
    /// query, exactly as `sign_path` makes them: no other parameters, no encoding,
    /// no leading zeros. A link is valid while `now_unix` is before its expiry.
    pub fn verify(&self, path_and_query: &str, now_unix: i64) -> Result<i64, MediaUrlError> {
        let link = parse(path_and_query).ok_or(MediaUrlError::Malformed)?;
        // The signature is checked before the expiry so that "expired" is only
        // ever said of a link this server made.
        hmac::verify(
            &self.key,
            message(link.item_id, link.expires_unix).as_bytes(),
            &link.signature,
        )
        .map_err(|_| MediaUrlError::BadSignature)?;
        if now_unix >= link.expires_unix {
            return Err(MediaUrlError::Expired);
        }
        Ok(link.item_id)
    }
}

fn message(item_id: i64, expires_unix: i64) -> String {
    format!("{item_id}:{expires_unix}")
}

struct SignedLink {
    item_id: i64,
    expires_unix: i64,
    signature: [u8; 32],
}

fn parse(path_and_query: &str) -> Option<SignedLink> {
    let rest = path_and_query.strip_prefix(ROUTE)?;
    let (id, query) = rest.split_once('?')?;
    let (exp, sig) = query.split_once('&')?;
    let item_id = canonical_decimal(id)?;
    let expires_unix = canonical_decimal(exp.strip_prefix("exp=")?)?;
    let signature = lower_hex_32(sig.strip_prefix("sig=")?)?;
    (item_id > 0).then_some(SignedLink {
        item_id,
        expires_unix,
        signature,
    })
}

/// A non-negative decimal with no sign, no leading zero and no other character.
fn canonical_decimal(text: &str) -> Option<i64> {
    let well_formed = !text.is_empty()
        && text.len() <= MAX_DECIMAL_DIGITS
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if well_formed {
        text.parse().ok()
    } else {
        None
    }
}

fn lower_hex_32(text: &str) -> Option<[u8; 32]> {
    // The length first: a hostile link's long value is refused before decoding.
    if text.len() != SIG_HEX_LEN {
        return None;
    }
    crate::hex::decode(text)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000;

    fn signer() -> UrlSigner {
        UrlSigner::new(&[7u8; 32])
    }

    #[test]
    fn a_signed_path_verifies_until_it_expires() {
        let s = signer();
        let path = s.sign_path(42, NOW + 3600);
        assert!(path.starts_with("/media/42?exp=1750003600&sig="), "{path}");
        assert_eq!(path.len(), "/media/42?exp=1750003600&sig=".len() + 64);
        assert_eq!(s.verify(&path, NOW), Ok(42));
        assert_eq!(s.verify(&path, NOW + 3599), Ok(42));
        assert_eq!(s.verify(&path, NOW + 3600), Err(MediaUrlError::Expired));
        assert_eq!(s.verify(&path, NOW + 999_999), Err(MediaUrlError::Expired));
    }

    #[test]
    fn the_key_is_derived_not_used_directly() {
        // HMAC with the raw key file bytes must not produce the URL signature.
        let raw = hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]);
        let raw_sig = crate::hex::encode(hmac::sign(&raw, b"42:1750003600").as_ref());
        let path = signer().sign_path(42, 1_750_003_600);
        assert!(!path.ends_with(&raw_sig));
    }

    #[test]
    fn a_link_from_another_key_is_refused() {
        let foreign = UrlSigner::new(&[8u8; 32]).sign_path(42, NOW + 3600);
        assert_eq!(
            signer().verify(&foreign, NOW),
            Err(MediaUrlError::BadSignature)
        );
    }

    #[test]
    fn tampering_is_refused() {
        let s = signer();
        let good = s.sign_path(42, NOW + 3600);
        let sig = good.rsplit_once("sig=").unwrap().1.to_string();
        let flipped_sig = {
            let mut bytes = sig.clone().into_bytes();
            bytes[10] = if bytes[10] == b'0' { b'1' } else { b'0' };
            String::from_utf8(bytes).unwrap()
        };
        let cases = [
            // Another item or a later expiry with the same signature.
            (
                format!("/media/43?exp={}&sig={sig}", NOW + 3600),
                MediaUrlError::BadSignature,
            ),
            (
                format!("/media/42?exp={}&sig={sig}", NOW + 7200),
                MediaUrlError::BadSignature,
            ),
            (
                format!("/media/42?exp={}&sig={flipped_sig}", NOW + 3600),
                MediaUrlError::BadSignature,
            ),
            // Spellings that would parse to the same numbers are not the same link.
            (
                format!("/media/042?exp={}&sig={sig}", NOW + 3600),
                MediaUrlError::Malformed,
            ),
            (
                format!("/media/+42?exp={}&sig={sig}", NOW + 3600),
                MediaUrlError::Malformed,
            ),
            (
                format!("/media/42?exp=0{}&sig={sig}", NOW + 3600),
                MediaUrlError::Malformed,
            ),
            (
                format!("/media/42?exp={}&sig={}", NOW + 3600, sig.to_uppercase()),
                MediaUrlError::Malformed,
            ),
            (
                format!("/media/42?sig={sig}&exp={}", NOW + 3600),
                MediaUrlError::Malformed,
            ),
            (format!("{good}&x=1"), MediaUrlError::Malformed),
            (format!("{good}0"), MediaUrlError::Malformed),
            (good[..good.len() - 1].to_string(), MediaUrlError::Malformed),
            (
                good.replacen("/media/", "/media//", 1),
                MediaUrlError::Malformed,
            ),
            (
                good.replacen("/media/", "/MEDIA/", 1),
                MediaUrlError::Malformed,
            ),
            (
                good.replacen("/media/", "/media/../media/", 1),
                MediaUrlError::Malformed,
            ),
            (
                good.replacen("/media/42", "/media/%34%32", 1),
                MediaUrlError::Malformed,
            ),
            (good.replacen("?", "/?", 1), MediaUrlError::Malformed),
            (good.replacen("&", "&&", 1), MediaUrlError::Malformed),
            (good.replacen("&", ";", 1), MediaUrlError::Malformed),
            (good.replacen("exp=", "exp= ", 1), MediaUrlError::Malformed),
            ("/media/42".to_string(), MediaUrlError::Malformed),
            ("/media/".to_string(), MediaUrlError::Malformed),
            (String::new(), MediaUrlError::Malformed),
        ];
        for (path, want) in cases {
            assert_eq!(s.verify(&path, NOW), Err(want), "{path}");
        }
        assert_eq!(s.verify(&good, NOW), Ok(42));
    }

    #[test]
    fn ids_and_expiries_at_the_edges() {
        let s = signer();
        let max = s.sign_path(i64::MAX, i64::MAX);
        assert_eq!(s.verify(&max, NOW), Ok(i64::MAX));
        // Zero and negative ids are never served, even if signed.
        for id in [0, -1] {
            let path = s.sign_path(id, NOW + 60);
            assert_eq!(
                s.verify(&path, NOW),
                Err(MediaUrlError::Malformed),
                "{path}"
            );
        }
        let past = s.sign_path(1, 0);
        assert_eq!(s.verify(&past, NOW), Err(MediaUrlError::Expired));
        let overflow = format!("/media/9223372036854775808?exp=1&sig={}", "0".repeat(64));
        assert_eq!(s.verify(&overflow, NOW), Err(MediaUrlError::Malformed));
    }

    /// Random mutations of a good link (and random strings) never panic and never
    /// verify unless they are the good link itself.
    #[test]
    fn fuzzed_paths_never_panic_or_pass() {
        let s = signer();
        let good = s.sign_path(7, NOW + 3600);
        let alphabet: Vec<char> = "/media?exp=&sig0123456789abcdefABCDEF%.-+ é\u{0}"
            .chars()
            .collect();
        // A small xorshift generator keeps the test deterministic and dependency-free.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for round in 0..20_000 {
            let mut text: Vec<char> = if round % 4 == 0 {
                Vec::new()
            } else {
                good.chars().collect()
            };
            for _ in 0..=next(4) {
                let c = alphabet[next(alphabet.len())];
                match next(3) {
                    0 if !text.is_empty() => {
                        let i = next(text.len());
                        text[i] = c;
                    }
                    1 if !text.is_empty() => {
                        text.remove(next(text.len()));
                    }
                    _ => text.insert(next(text.len() + 1), c),
                }
            }
            let text: String = text.into_iter().collect();
            let result = s.verify(&text, NOW);
            if text != good {
                assert_ne!(result, Ok(7), "{text:?} verified");
            }
        }
    }

    // ---- property tests (`cargo test --lib fuzz_media_url`) ----

    use crate::fuzz_input::{self, char_edit, edit_chars, mutate_text, mutations, text_from};
    use proptest::prelude::*;

    /// The characters a media path is made of, and a few that look alike.
    const URL_ALPHABET: &str = "/media?exp=&sig0123456789abcdefABCDEF%.-+ ";

    const URL_PIECES: &[&[u8]] = &[
        b"/media/",
        b"?exp=",
        b"&sig=",
        b"&",
        b"?",
        b"0",
        b"-",
        b"9223372036854775807",
        b"9223372036854775808",
        b"%2F",
        b"\xc3\xa9",
    ];

    /// The item id and expiry of a path that verified, read back from the path.
    fn id_and_expiry(path: &str) -> Option<(i64, i64)> {
        let (id, query) = path.strip_prefix("/media/")?.split_once('?')?;
        let exp = query.strip_prefix("exp=")?.split_once('&')?.0;
        Some((id.parse().ok()?, exp.parse().ok()?))
    }

    /// Expiry times: tiny, around now, any, and the largest.
    fn any_expiry() -> impl Strategy<Value = i64> {
        prop_oneof![
            0i64..=9,
            1_700_000_000i64..1_900_000_000,
            0..=i64::MAX,
            i64::MAX - 9..=i64::MAX
        ]
    }

    proptest! {
        #![proptest_config(fuzz_input::config(512))]

        /// Arbitrary text never panics and never verifies: it would need the key.
        #[test]
        fn fuzz_media_url_arbitrary_text_is_refused(
            key in any::<[u8; 32]>(),
            text in text_from(URL_ALPHABET, 160),
            now in any::<i64>(),
        ) {
            prop_assert!(UrlSigner::new(&key).verify(&text, now).is_err());
        }

        /// Whatever verifies is exactly the path the signer makes for that item
        /// and expiry (strict parsing: one spelling per link).
        #[test]
        fn fuzz_media_url_only_signed_paths_verify(
            id in fuzz_input::positive_id(),
            exp in any_expiry(),
            text in text_from(URL_ALPHABET, 160),
            use_text in any::<bool>(),
        ) {
            let s = signer();
            let path = if use_text { text } else { s.sign_path(id, exp) };
            if let Ok(verified) = s.verify(&path, i64::MIN) {
                let (id, exp) = id_and_expiry(&path).expect("a verified path has an id and expiry");
                prop_assert_eq!(verified, id);
                prop_assert_eq!(s.sign_path(id, exp), path);
            }
        }

        /// sign → verify gives the item back until the expiry, then Expired.
        #[test]
        fn fuzz_media_url_signed_paths_verify_until_expiry(
            key in any::<[u8; 32]>(),
            id in fuzz_input::positive_id(),
            exp in any_expiry(),
            now in any::<i64>(),
            // Often the second before, at, or after the expiry.
            near_expiry in proptest::option::of(-1i64..=1),
        ) {
            let now = near_expiry.map_or(now, |offset| exp.saturating_add(offset));
            let s = UrlSigner::new(&key);
            let path = s.sign_path(id, exp);
            let want = if now < exp { Ok(id) } else { Err(MediaUrlError::Expired) };
            prop_assert_eq!(s.verify(&path, now), want);
            // The same path from another key is someone else's link.
            let mut other_key = key;
            other_key[0] ^= 1;
            prop_assert_eq!(
                UrlSigner::new(&other_key).verify(&path, now),
                Err(MediaUrlError::BadSignature)
            );
        }

        /// Any single-character change to a signed path is refused, as malformed
        /// or with a bad signature — never served, never called "expired".
        #[test]
        fn fuzz_media_url_any_single_change_is_refused(
            id in fuzz_input::positive_id(),
            exp in any_expiry(),
            edit in char_edit(URL_ALPHABET),
        ) {
            let s = signer();
            let path = s.sign_path(id, exp);
            let edited = edit_chars(&path, &edit);
            if edited == path {
                // A replacement by the same character changes nothing.
                return Ok(());
            }
            let result = s.verify(&edited, i64::MIN);
            prop_assert!(
                matches!(result, Err(MediaUrlError::Malformed | MediaUrlError::BadSignature)),
                "{:?} gave {:?}", edited, result
            );
        }

        /// Another spelling of the same id or expiry (a leading zero, a sign,
        /// spaces, an escape) or of the signature (upper case) is not the link.
        #[test]
        fn fuzz_media_url_respelled_links_are_malformed(
            id in fuzz_input::positive_id(),
            exp in any_expiry(),
            which in 0usize..3,
            spelling in prop::sample::select(&["0", "00", "+", " ", "%30", "\t"][..]),
            before in any::<bool>(),
        ) {
            let s = signer();
            let path = s.sign_path(id, exp);
            let sig = path.rsplit_once("sig=").map(|(_, sig)| sig.to_string()).unwrap_or_default();
            // A digit after the number would make another number, so digits go before.
            let respell = |text: String| {
                if before || spelling.starts_with('0') {
                    format!("{spelling}{text}")
                } else {
                    format!("{text}{spelling}")
                }
            };
            let respelled = match which {
                0 => format!("/media/{}?exp={exp}&sig={sig}", respell(id.to_string())),
                1 => format!("/media/{id}?exp={}&sig={sig}", respell(exp.to_string())),
                _ => format!("/media/{id}?exp={exp}&sig={}", sig.to_uppercase()),
            };
            if respelled == path {
                // A signature without letters has no upper case.
                return Ok(());
            }
            prop_assert_eq!(s.verify(&respelled, i64::MIN), Err(MediaUrlError::Malformed), "{}", respelled);
        }

        /// Truncated, flipped, spliced or duplicated signed paths never panic and
        /// are refused unless the mutations cancelled out.
        #[test]
        fn fuzz_media_url_mutated_paths_are_refused(
            id in fuzz_input::positive_id(),
            exp in any_expiry(),
            changes in mutations(URL_PIECES),
        ) {
            let s = signer();
            let path = s.sign_path(id, exp);
            let mutated = mutate_text(&path, &changes);
            let result = s.verify(&mutated, i64::MIN);
            if mutated == path {
                prop_assert_eq!(result, Ok(id));
            } else {
                prop_assert!(
                    matches!(result, Err(MediaUrlError::Malformed | MediaUrlError::BadSignature)),
                    "{:?} gave {:?}", mutated, result
                );
            }
        }
    }
}
