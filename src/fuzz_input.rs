//! What the property tests named `fuzz_*` share (test-only): how many cases a
//! property runs, and the inputs they feed the parsers that face the outside —
//! text biased towards a parser's own alphabet, and structured mutations
//! (truncation, byte flips, insertion, deletion, duplication) of valid inputs.
//!
//! `cargo test --lib fuzz_` runs them all with a few hundred cases each; a long
//! run sets PROPTEST_CASES (the README's "Fuzzing" has the command).

use proptest::prelude::*;
use proptest::test_runner::Config;

/// `default_cases` per property, unless PROPTEST_CASES holds a number: then that
/// wins. (`Config::default()` reads PROPTEST_CASES, but setting `cases` after it
/// would override the variable, so it is only set when the variable is absent.)
/// The other PROPTEST_ variables (seed, verbosity…) keep working through the default.
pub fn config(default_cases: u32) -> Config {
    let mut config = Config::default();
    let cases_from_env = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.trim().parse::<u32>().ok());
    if cases_from_env.is_none() {
        config.cases = default_cases;
    }
    // A failure found once is kept as an ordinary unit test beside the property,
    // so no regression files are written into the source tree.
    config.failure_persistence = None;
    config
}

/// Text of up to `max_len` characters, mostly from `alphabet` (the characters
/// the parser cares about) and sometimes any character at all.
pub fn text_from(alphabet: &'static str, max_len: usize) -> impl Strategy<Value = String> {
    let chars: Vec<char> = alphabet.chars().collect();
    prop::collection::vec(
        prop_oneof![4 => prop::sample::select(chars), 1 => any::<char>()],
        0..=max_len,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// A positive id as the database hands them out: short ones, any, and the
/// largest (uniform alone would almost always give 19 digits).
pub fn positive_id() -> impl Strategy<Value = i64> {
    prop_oneof![1i64..=9, 1..=i64::MAX, i64::MAX - 9..=i64::MAX]
}

/// One change to a byte string. A position is taken modulo the length, so it fits
/// any input and shrinks towards the start.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Drops everything from this position on.
    Truncate(usize),
    /// XORs one byte with a non-zero mask (one bit or many).
    Flip(usize, u8),
    /// Puts these bytes in before this position.
    Insert(usize, Vec<u8>),
    /// Removes up to this many bytes from this position.
    Delete(usize, usize),
    /// Repeats up to this many bytes from this position right after themselves.
    Duplicate(usize, usize),
}

/// One to four mutations; insertions take random bytes or a piece of `dictionary`
/// (tokens of the format: delimiters, keywords, extreme numbers).
pub fn mutations(dictionary: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<Mutation>> {
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..8),
        prop::sample::select(dictionary).prop_map(<[u8]>::to_vec),
    ];
    let mask = prop_oneof![(0u8..8).prop_map(|bit| 1u8 << bit), 1u8..=255];
    let mutation = prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), mask).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        (any::<usize>(), piece).prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Duplicate(at, len)),
    ];
    prop::collection::vec(mutation, 1..=4)
}

/// `bytes` with the mutations applied in order.
pub fn mutate(bytes: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    for mutation in mutations {
        // Insertion may go at the very end, so it picks among len + 1 places;
        // the others need a byte to work on.
        let len = bytes.len();
        match mutation {
            Mutation::Insert(at, piece) => {
                let at = at % (len + 1);
                bytes.splice(at..at, piece.iter().copied());
            }
            _ if len == 0 => {}
            Mutation::Truncate(at) => bytes.truncate(at % len),
            Mutation::Flip(at, mask) => bytes[at % len] ^= mask,
            Mutation::Delete(at, count) => {
                let start = at % len;
                let end = start.saturating_add(*count).min(len);
                bytes.drain(start..end);
            }
            Mutation::Duplicate(at, count) => {
                let start = at % len;
                let end = start.saturating_add(*count).min(len);
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
        }
    }
    bytes
}

/// Text mutated as bytes; a mutation that breaks UTF-8 leaves U+FFFD behind, as a
/// lossy reader would.
pub fn mutate_text(text: &str, mutations: &[Mutation]) -> String {
    String::from_utf8_lossy(&mutate(text.as_bytes(), mutations)).into_owned()
}

/// One character changed: replaced, removed, or inserted.
#[derive(Debug, Clone)]
pub enum CharEdit {
    Replace(usize, char),
    Remove(usize),
    Insert(usize, char),
}

/// A single-character edit; new characters come mostly from `alphabet`.
pub fn char_edit(alphabet: &'static str) -> impl Strategy<Value = CharEdit> {
    let chars: Vec<char> = alphabet.chars().collect();
    let new_char = prop_oneof![4 => prop::sample::select(chars), 1 => any::<char>()];
    prop_oneof![
        (any::<usize>(), new_char.clone()).prop_map(|(at, c)| CharEdit::Replace(at, c)),
        any::<usize>().prop_map(CharEdit::Remove),
        (any::<usize>(), new_char).prop_map(|(at, c)| CharEdit::Insert(at, c)),
    ]
}

/// `text` with the edit applied at a character boundary.
pub fn edit_chars(text: &str, edit: &CharEdit) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let len = chars.len();
    match edit {
        CharEdit::Insert(at, c) => chars.insert(at % (len + 1), *c),
        _ if len == 0 => {}
        CharEdit::Replace(at, c) => chars[at % len] = *c,
        CharEdit::Remove(at) => {
            chars.remove(at % len);
        }
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_do_what_they_say() {
        let first = 0;
        let data = b"abcdef";
        let cases: Vec<(Mutation, &[u8])> = vec![
            (Mutation::Truncate(first), b""),
            (Mutation::Flip(first, 0x20), b"Abcdef"),
            (Mutation::Insert(first, b"xy".to_vec()), b"xyabcdef"),
            (Mutation::Delete(first, 2), b"cdef"),
            (Mutation::Delete(first, 100), b""),
            (Mutation::Duplicate(first, 3), b"abcabcdef"),
        ];
        for (mutation, want) in cases {
            assert_eq!(
                mutate(data, std::slice::from_ref(&mutation)),
                want,
                "{mutation:?}"
            );
        }
        // Nothing but insertion can change an empty input.
        assert_eq!(mutate(b"", &[Mutation::Flip(first, 1)]), b"");
        assert_eq!(mutate(b"", &[Mutation::Insert(first, b"z".to_vec())]), b"z");
        assert_eq!(edit_chars("é1", &CharEdit::Replace(first, 'x')), "x1");
        assert_eq!(edit_chars("é1", &CharEdit::Remove(first)), "1");
        assert_eq!(edit_chars("", &CharEdit::Insert(first, 'q')), "q");
    }

    #[test]
    fn the_environment_decides_the_case_count_when_set() {
        // The variable is process-wide, so this only checks the branch it is in.
        let want = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.trim().parse::<u32>().ok())
            .unwrap_or(17);
        assert_eq!(config(17).cases, want);
    }
}
