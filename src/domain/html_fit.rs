//! Pure: fitting texts in Telegram's HTML into Telegram's length limits. Telegram
//! counts a text after entities parsing (tags are free, `&amp;` is one character)
//! in UTF-16 code units, and refuses a longer one ("message is too long"), so a
//! long message is split into several and a caption or an edit is shortened with
//! a visible "…". A cut never falls inside a tag or an entity, and every part
//! closes the tags still open at its end and opens them again at the start of the
//! next, so each part is well-formed HTML on its own.

/// Telegram's length limits, in UTF-16 code units of the visible text (after
/// entities parsing): a message and a caption.
pub const MAX_TEXT_UNITS: usize = 4096;
pub const MAX_CAPTION_UNITS: usize = 1024;

/// The mark a shortened text ends with (one UTF-16 unit).
pub const ELLIPSIS: &str = "…";

/// One piece of a Telegram HTML text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// `<b>`, `<a href="…">`; holds the tag's name, for its end tag.
    Open(String),
    Close,
    /// A character or an entity: its UTF-16 length once parsed.
    Visible {
        units: usize,
        blank: bool,
        newline: bool,
    },
}

#[derive(Debug, Clone)]
struct Token {
    start: usize,
    end: usize,
    kind: Kind,
}

fn visible(c: char) -> Kind {
    Kind::Visible {
        units: c.len_utf16(),
        blank: c.is_whitespace(),
        newline: c == '\n',
    }
}

/// The byte length of a tag starting at `rest[0] == '<'`, up to its `>` outside
/// quotes; None when this `<` opens no tag (Telegram would refuse it anyway).
fn tag_len(rest: &str) -> Option<usize> {
    let second = rest[1..].chars().next()?;
    if !(second.is_ascii_alphabetic() || second == '/') {
        return None;
    }
    let mut quote = None;
    for (i, c) in rest.char_indices().skip(1) {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// The byte length of an entity at `rest[0] == '&'` and its UTF-16 length once
/// parsed; None for a bare `&` or a name Telegram does not know, which then
/// count as the characters they are.
fn entity(rest: &str) -> Option<(usize, usize)> {
    let end = rest.char_indices().take(12).find(|(_, c)| *c == ';')?.0;
    let name = &rest[1..end];
    let units = match name {
        "lt" | "gt" | "amp" | "quot" => 1,
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)?.len_utf16()
        }
    };
    Some((end + 1, units))
}

fn tokenize(html: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut index = 0;
    while let Some(c) = html[index..].chars().next() {
        let rest = &html[index..];
        let (len, kind) = match c {
            '<' => match tag_len(rest) {
                Some(len) if rest[1..].starts_with('/') => (len, Kind::Close),
                Some(len) => {
                    let name: String = rest[1..len]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect();
                    (len, Kind::Open(name.to_ascii_lowercase()))
                }
                None => (1, visible(c)),
            },
            '&' => match entity(rest) {
                Some((len, units)) => (
                    len,
                    Kind::Visible {
                        units,
                        blank: false,
                        newline: false,
                    },
                ),
                None => (1, visible(c)),
            },
            _ => (c.len_utf8(), visible(c)),
        };
        tokens.push(Token {
            start: index,
            end: index + len,
            kind,
        });
        index += len;
    }
    tokens
}

fn units_of(tokens: &[Token]) -> usize {
    tokens
        .iter()
        .map(|t| match t.kind {
            Kind::Visible { units, .. } => units,
            _ => 0,
        })
        .sum()
}

/// The length Telegram gives `html`: its visible text in UTF-16 code units.
pub fn visible_units(html: &str) -> usize {
    units_of(&tokenize(html))
}

/// End tags for the open tags (indices into `tokens`), innermost first.
fn closers(tokens: &[Token], open: &[usize]) -> String {
    open.iter()
        .rev()
        .filter_map(|&i| match &tokens[i].kind {
            Kind::Open(name) => Some(format!("</{name}>")),
            _ => None,
        })
        .collect()
}

/// The open tags again, outermost first, as they were written.
fn reopeners(html: &str, tokens: &[Token], open: &[usize]) -> String {
    open.iter()
        .map(|&i| &html[tokens[i].start..tokens[i].end])
        .collect()
}

fn byte_at(html: &str, tokens: &[Token], index: usize) -> usize {
    tokens.get(index).map_or(html.len(), |t| t.start)
}

/// `html` shortened to at most `limit` visible units: cut where the text no longer
/// fits, ending in "…", its open tags closed. Unchanged when it fits.
pub fn truncate(html: &str, limit: usize) -> String {
    let tokens = tokenize(html);
    if units_of(&tokens) <= limit {
        return html.to_string();
    }
    if limit == 0 {
        return String::new();
    }
    let budget = limit - ELLIPSIS.chars().map(char::len_utf16).sum::<usize>();
    let mut units = 0;
    let mut open = Vec::new();
    let mut cut = tokens.len();
    for (i, token) in tokens.iter().enumerate() {
        match &token.kind {
            Kind::Open(_) => open.push(i),
            Kind::Close => {
                open.pop();
            }
            Kind::Visible { units: u, .. } => {
                if units + u > budget {
                    cut = i;
                    break;
                }
                units += u;
            }
        }
    }
    // Neither a tag opened just before the cut nor the blank before "…" is worth keeping.
    while cut > 0 {
        match &tokens[cut - 1].kind {
            Kind::Open(_) => {
                open.pop();
            }
            Kind::Visible { blank: true, .. } => {}
            _ => break,
        }
        cut -= 1;
    }
    format!(
        "{}{ELLIPSIS}{}",
        &html[..byte_at(html, &tokens, cut)],
        closers(&tokens, &open)
    )
}

/// `html` as parts of at most `limit` visible units each, in order: cut at the end
/// of the last line that fits, or, for a line longer than `limit`, at the last
/// character that fits. Tags open at a cut are closed at the end of the part and
/// opened again at the start of the next. Parts with nothing but blanks are left
/// out; a text that fits is one part.
pub fn split(html: &str, limit: usize) -> Vec<String> {
    let tokens = tokenize(html);
    if limit == 0 || units_of(&tokens) <= limit {
        return vec![html.to_string()];
    }
    let mut parts = Vec::new();
    let mut start = 0;
    let mut open_at_start: Vec<usize> = Vec::new();
    while start < tokens.len() {
        let mut open = open_at_start.clone();
        let mut units = 0;
        let mut last_line_end: Option<(usize, Vec<usize>)> = None;
        let mut index = start;
        let mut overflow = false;
        while index < tokens.len() {
            match &tokens[index].kind {
                Kind::Open(_) => open.push(index),
                Kind::Close => {
                    open.pop();
                }
                Kind::Visible {
                    units: u, newline, ..
                } => {
                    // A newline is where a part may end, even the one that does not fit.
                    if *newline && index > start {
                        last_line_end = Some((index, open.clone()));
                    }
                    // A single character longer than the limit still goes out (alone).
                    if units + u > limit && units > 0 {
                        overflow = true;
                        break;
                    }
                    units += u;
                }
            }
            index += 1;
        }
        if !overflow {
            push_part(
                &mut parts,
                html,
                &tokens,
                &open_at_start,
                start,
                index,
                &open,
            );
            break;
        }
        // The newline at a line cut is dropped: each part ends a line, the next starts one.
        let (cut, next, open_at_cut) = match last_line_end {
            Some((newline, open)) => (newline, newline + 1, open),
            None => (index, index, open),
        };
        // A tag opened right before the cut goes to the next part whole.
        let mut end = cut;
        let mut open_in_part = open_at_cut.clone();
        while end > start && matches!(tokens[end - 1].kind, Kind::Open(_)) {
            end -= 1;
            open_in_part.pop();
        }
        push_part(
            &mut parts,
            html,
            &tokens,
            &open_at_start,
            start,
            end,
            &open_in_part,
        );
        open_at_start = open_at_cut;
        start = next;
    }
    parts
}

fn push_part(
    parts: &mut Vec<String>,
    html: &str,
    tokens: &[Token],
    open_at_start: &[usize],
    start: usize,
    end: usize,
    open_at_end: &[usize],
) {
    let has_text = tokens[start..end]
        .iter()
        .any(|t| matches!(t.kind, Kind::Visible { blank: false, .. }));
    if !has_text {
        return;
    }
    parts.push(format!(
        "{}{}{}",
        reopeners(html, tokens, open_at_start),
        &html[byte_at(html, tokens, start)..byte_at(html, tokens, end)],
        closers(tokens, open_at_end)
    ));
}

/// A piece of a text put together from parts, some of which may be shortened to
/// make the whole fit (see `fit_pieces`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub html: String,
    /// None: kept whole. Some: shortened, lowest `order` first, down to `keep`
    /// visible units at least (its "…" included). Such a piece must close every
    /// tag it opens.
    pub shrink: Option<Shrink>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shrink {
    pub order: u8,
    pub keep: usize,
}

impl Piece {
    pub fn fixed(html: impl Into<String>) -> Piece {
        Piece {
            html: html.into(),
            shrink: None,
        }
    }

    pub fn shrinkable(html: impl Into<String>, order: u8, keep: usize) -> Piece {
        Piece {
            html: html.into(),
            shrink: Some(Shrink { order, keep }),
        }
    }
}

/// The pieces joined, within `limit` visible units: when too long, the shrinkable
/// pieces are shortened in their order (each by no more than needed and never
/// below what it keeps); should that not be enough, the joined text is cut at
/// the end as a last resort.
pub fn fit_pieces(pieces: &[Piece], limit: usize) -> String {
    let mut texts: Vec<String> = pieces.iter().map(|p| p.html.clone()).collect();
    let lengths: Vec<usize> = texts.iter().map(|t| visible_units(t)).collect();
    let mut excess = lengths.iter().sum::<usize>().saturating_sub(limit);
    let mut order: Vec<(u8, usize, usize)> = pieces
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.shrink.map(|s| (s.order, i, s.keep.max(1))))
        .collect();
    order.sort_unstable();
    for (_, i, keep) in order {
        if excess == 0 {
            break;
        }
        let length = lengths[i];
        if length <= keep {
            continue;
        }
        let target = length - excess.min(length - keep);
        let shortened = truncate(&texts[i], target);
        excess = excess.saturating_sub(length - visible_units(&shortened));
        texts[i] = shortened;
    }
    truncate(&texts.concat(), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every part must be well-formed on its own: each end tag closes the tag
    /// opened last, and nothing stays open.
    fn assert_balanced(html: &str) {
        let mut open: Vec<String> = Vec::new();
        for token in tokenize(html) {
            match token.kind {
                Kind::Open(name) => open.push(name),
                Kind::Close => {
                    let name = html[token.start + 2..token.end - 1].to_string();
                    assert_eq!(open.pop().as_deref(), Some(name.as_str()), "in {html:?}");
                }
                Kind::Visible { .. } => {}
            }
        }
        assert!(open.is_empty(), "{open:?} left open in {html:?}");
    }

    #[test]
    fn visible_length_counts_utf16_units_after_parsing() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("abc", 3),
            ("<b>abc</b>", 3),
            ("a &amp; b", 5),
            ("&lt;b&gt;", 3),
            ("&#128512;", 2),
            ("&#x41;", 1),
            ("😀", 2),
            ("é", 1),
            ("<a href=\"https://x/?a=1&amp;b=2\">link</a>", 4),
            ("a & b", 5),
            ("&nbsp;", 6),
            ("1 < 2", 5),
        ];
        for (html, want) in cases {
            assert_eq!(visible_units(html), *want, "{html:?}");
        }
    }

    #[test]
    fn truncation() {
        // (html, limit, expected)
        let cases: &[(&str, usize, &str)] = &[
            ("short", 10, "short"),
            ("exactly10!", 10, "exactly10!"),
            ("abcdefghijk", 10, "abcdefghi…"),
            ("<b>abcdefghijk</b>", 5, "<b>abcd…</b>"),
            ("ab <i>cd</i> efgh", 6, "ab <i>cd</i>…"),
            ("abc &amp;&amp; def", 6, "abc &amp;…"),
            ("abcd&amp;efg", 5, "abcd…"),
            ("ab😀cd", 4, "ab…"),
            ("ab😀cd", 5, "ab😀…"),
            ("abc <b>def</b>", 5, "abc…"),
            ("x", 0, ""),
        ];
        for (html, limit, want) in cases {
            let got = truncate(html, *limit);
            assert_eq!(&got, want, "truncate({html:?}, {limit})");
            assert!(visible_units(&got) <= *limit, "{got:?}");
            assert_balanced(&got);
        }
    }

    fn check_split(html: &str, limit: usize, want: &[&str]) {
        let parts = split(html, limit);
        assert_eq!(parts, want, "split({html:?}, {limit})");
        for part in &parts {
            assert!(visible_units(part) <= limit, "{part:?} is too long");
            assert_balanced(part);
        }
    }

    #[test]
    fn splitting_at_line_ends() {
        // (html, limit, parts)
        let cases: &[(&str, usize, &[&str])] = &[
            ("one\ntwo", 20, &["one\ntwo"]),
            ("one\ntwo\nthree", 8, &["one\ntwo", "three"]),
            ("one\ntwo\nthree", 7, &["one\ntwo", "three"]),
            ("one\ntwo\nthree", 6, &["one", "two", "three"]),
            // A tag spanning the cut is closed and opened again.
            (
                "<b>one\ntwo\nthree</b> four",
                10,
                &["<b>one\ntwo</b>", "<b>three</b> four"],
            ),
            (
                "<a href=\"https://x\">aaa\nbbb</a>",
                4,
                &[
                    "<a href=\"https://x\">aaa</a>",
                    "<a href=\"https://x\">bbb</a>",
                ],
            ),
            (
                "<b><i>aa\nbb</i>\ncc</b>",
                5,
                &["<b><i>aa\nbb</i></b>", "<b>cc</b>"],
            ),
            // A tag opened right before the cut moves to the next part.
            ("aaa<b>\nbbb</b>", 4, &["aaa", "<b>bbb</b>"]),
            // Entities count as one and are never cut.
            ("&amp;&amp;\n&lt;&gt;", 3, &["&amp;&amp;", "&lt;&gt;"]),
            // Blank lines at a cut make no empty message.
            ("aaaa\n\n\n\nbbbb", 4, &["aaaa", "bbbb"]),
            // Emoji are two units and never split.
            ("😀😀\n😀😀", 5, &["😀😀", "😀😀"]),
        ];
        for (html, limit, want) in cases {
            check_split(html, *limit, want);
        }
    }

    #[test]
    fn a_line_longer_than_the_limit_is_cut_between_characters_outside_tags() {
        let cases: &[(&str, usize, &[&str])] = &[
            ("abcdefghij", 4, &["abcd", "efgh", "ij"]),
            ("<b>abcdef</b>gh", 4, &["<b>abcd</b>", "<b>ef</b>gh"]),
            ("ab&amp;cd&amp;", 3, &["ab&amp;", "cd&amp;"]),
            ("a😀😀", 2, &["a", "😀", "😀"]),
            ("ab <i>c</i>", 3, &["ab ", "<i>c</i>"]),
        ];
        for (html, limit, want) in cases {
            check_split(html, *limit, want);
        }
    }

    #[test]
    fn splitting_keeps_every_character() {
        let mut html = String::from("📅 <b>Schedule</b> (Europe/Berlin)");
        for day in 0..14 {
            html.push_str(&format!("\n\n<b>Day {day}</b>"));
            for slot in 0..50 {
                html.push_str(&format!(
                    "\n• {slot:02}:00 quotes/a &amp; b 😀 {}.jpg",
                    "x".repeat(slot)
                ));
            }
        }
        let parts = split(&html, 4096);
        assert!(parts.len() > 1);
        for part in &parts {
            assert!(visible_units(part) <= 4096);
            assert_balanced(part);
        }
        let lines = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect()
        };
        let rejoined: Vec<String> = parts.iter().flat_map(|p| lines(p)).collect();
        assert_eq!(rejoined, lines(&html));
    }

    #[test]
    fn pieces_shrink_in_order_and_the_fixed_ones_stay() {
        let pieces = [
            Piece::fixed("<b>"),
            Piece::shrinkable("category", 2, 4),
            Piece::fixed("</b> · "),
            Piece::shrinkable("a-very-long-file-name.jpg", 1, 6),
            Piece::fixed("\n\n⚠️ Not published: "),
            Piece::shrinkable("an error text from Instagram", 0, 5),
            Piece::fixed("\n✅ Posted"),
        ];
        let whole = fit_pieces(&pieces, 1024);
        assert_eq!(
            whole,
            "<b>category</b> · a-very-long-file-name.jpg\n\n⚠️ Not published: an error text from Instagram\n✅ Posted"
        );
        let units = visible_units(&whole);
        // Five units less: only the error text gives way.
        assert_eq!(
            fit_pieces(&pieces, units - 5),
            "<b>category</b> · a-very-long-file-name.jpg\n\n⚠️ Not published: an error text from Ins…\n✅ Posted"
        );
        // More: the error text down to what it keeps, then the file name.
        let tight = fit_pieces(&pieces, units - 30);
        assert_eq!(
            tight,
            "<b>category</b> · a-very-long-file-…\n\n⚠️ Not published: an e…\n✅ Posted"
        );
        assert_eq!(visible_units(&tight), units - 30);
        // Beyond what every piece keeps, the end is cut as a last resort.
        let cramped = fit_pieces(&pieces, 10);
        assert_eq!(cramped, "<b>cat…</b> · a-…");
        assert_eq!(visible_units(&cramped), 10);
    }
}
