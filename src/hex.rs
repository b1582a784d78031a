//! Lowercase hexadecimal, the one spelling Storyline writes (sealed tokens,
//! link signatures, content hashes, a drawn picture in an outbox row) and the
//! only one it reads back: anything else is not ours.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lowercase hex, two digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The bytes of lowercase hex as `encode` writes it; None for anything else
/// (an odd length, a capital, any other character).
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let value = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    digits
        .chunks_exact(2)
        .map(|pair| Some(value(pair[0])? << 4 | value(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_only_lowercase_hex_decodes() {
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        assert!(
            text.starts_with("000102") && text.ends_with("feff"),
            "{text}"
        );
        assert_eq!(decode(&text), Some(all));
        assert_eq!(decode(""), Some(Vec::new()));
        for bad in ["0", "0g", "+1", "é1", "AB", "0 "] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
