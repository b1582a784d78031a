//! The `/insights` chart, drawn in-process as a PNG: per category two
//! horizontal bars, average reach (scaled to the largest) and completion
//! (0–100 %), with a title, a legend, the category names and the values in a
//! small bitmap font of our own (5×7 ASCII glyphs; anything else is "?").
//!
//! No font files and no drawing crate: the picture is a few rectangles and
//! text runs, rendered one pixel row at a time straight into the PNG encoder
//! (a palette of six colours, one byte a pixel), so drawing it holds one
//! 800-byte row and the encoder's buffers, never the whole picture; the PNG
//! itself is 2–4 KB. Horizontal bars leave the names room to be read on a
//! phone; a chart shows at most `MAX_ROWS` categories and counts the rest in a
//! last line.

use std::io::Write;

use anyhow::{Context, Result};

use crate::domain::insights::CategoryResults;

pub const CHART_WIDTH: u32 = 800;
pub const CHART_HEIGHT: u32 = 500;

/// One category of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRow {
    pub label: String,
    /// The average reach; its bar is scaled to the largest of the chart.
    pub reach: Option<f64>,
    /// 0..=1.
    pub completion: Option<f64>,
}

impl From<&CategoryResults> for ChartRow {
    fn from(results: &CategoryResults) -> ChartRow {
        ChartRow {
            label: results.category.clone(),
            reach: results.average_reach,
            completion: results.average_completion,
        }
    }
}

/// Palette indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Ink {
    Paper = 0,
    Text = 1,
    Muted = 2,
    Reach = 3,
    Completion = 4,
    Axis = 5,
}

/// RGB per `Ink`: white paper, near-black and grey text, a blue and an amber
/// that stay apart for colour-blind eyes, a light grey axis.
static PALETTE: [u8; 18] = [
    255, 255, 255, // paper
    33, 33, 33, // text
    110, 110, 110, // muted
    37, 99, 235, // reach
    245, 158, 11, // completion
    210, 210, 210, // axis
];

const MARGIN: u32 = 16;
/// A glyph is 5×7 dots; a character takes 6 dots across with its space.
const GLYPH_WIDTH: u32 = 5;
const GLYPH_HEIGHT: u32 = 7;
/// Letters drawn `DESCENT` dots lower than the others.
const DESCENDERS: &[u8] = b"gpqy";
const DESCENT: u32 = 2;
const ADVANCE: u32 = 6;
/// Dots are drawn 2×2 pixels (3×3 in the title): 10×14-pixel letters, readable
/// on a phone when the chart is shown 400 points wide.
const TEXT_SCALE: u32 = 2;
const TITLE_SCALE: u32 = 3;

const TITLE: &str = "Reach and completion per category";
const TITLE_Y: u32 = MARGIN;
const LEGEND_Y: u32 = TITLE_Y + GLYPH_HEIGHT * TITLE_SCALE + 14;
/// Where the rows start and end, with room for the "+N more" line.
const ROWS_TOP: u32 = LEGEND_Y + GLYPH_HEIGHT * TEXT_SCALE + 20;
const ROWS_BOTTOM: u32 = CHART_HEIGHT - MARGIN - GLYPH_HEIGHT * TEXT_SCALE - 8;
/// A row is never less high than this, nor higher than `MAX_PITCH`.
const MIN_PITCH: u32 = 40;
const MAX_PITCH: u32 = 72;
pub const MAX_ROWS: usize = ((ROWS_BOTTOM - ROWS_TOP) / MIN_PITCH) as usize;

/// Category names are cut to this many characters ("..." included).
const LABEL_CHARS: usize = 15;
/// Bars start right of the names; values go right of the bars.
const BAR_X: u32 = MARGIN + LABEL_CHARS as u32 * ADVANCE * TEXT_SCALE + 12;
const VALUE_CHARS: u32 = 5;
const VALUE_GAP: u32 = 6;
const BAR_MAX: u32 = CHART_WIDTH - MARGIN - VALUE_CHARS * ADVANCE * TEXT_SCALE - VALUE_GAP - BAR_X;
const BAR_GAP: u32 = 2;

// The layout fits: the longest value right of the longest bar, and enough rows
// for a typical library.
const _: () = assert!(
    BAR_X + BAR_MAX + VALUE_GAP + text_width(VALUE_CHARS as usize, TEXT_SCALE)
        <= CHART_WIDTH - MARGIN
);
const _: () = assert!(MAX_ROWS >= 8);

/// Something drawn: a filled rectangle or a run of text (ASCII bytes, top
/// left corner at `x`, `y`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Rect {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        ink: Ink,
    },
    Text {
        x: u32,
        y: u32,
        scale: u32,
        ink: Ink,
        text: Vec<u8>,
    },
}

/// The chart of `rows` as a PNG of `CHART_WIDTH`×`CHART_HEIGHT`, rows in the
/// order given. Values that are not numbers count as missing ("n/a").
pub fn insights_chart(rows: &[ChartRow]) -> Result<Vec<u8>> {
    let shapes = layout(rows);
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, CHART_WIDTH, CHART_HEIGHT);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(&PALETTE[..]);
    // Flat colours compress best unfiltered.
    encoder.set_filter(png::Filter::NoFilter);
    let mut writer = encoder.write_header().context("chart: starting the PNG")?;
    let mut stream = writer.stream_writer().context("chart: starting the PNG")?;
    let mut row = vec![Ink::Paper as u8; CHART_WIDTH as usize];
    for y in 0..CHART_HEIGHT {
        draw_row(&shapes, y, &mut row);
        stream.write_all(&row).context("chart: writing a row")?;
    }
    stream.finish().context("chart: finishing the PNG")?;
    writer.finish().context("chart: finishing the PNG")?;
    Ok(png)
}

/// Every shape of the chart.
fn layout(rows: &[ChartRow]) -> Vec<Shape> {
    let mut shapes = vec![text(MARGIN, TITLE_Y, TITLE_SCALE, Ink::Text, TITLE)];
    let square = GLYPH_HEIGHT * TEXT_SCALE;
    let mut x = MARGIN;
    for (ink, words) in [
        (Ink::Reach, "average reach"),
        (Ink::Completion, "completion"),
    ] {
        shapes.push(rect(x, LEGEND_Y, square, square, ink));
        x += square + 8;
        shapes.push(text(x, LEGEND_Y, TEXT_SCALE, Ink::Text, words));
        x += text_width(words.len(), TEXT_SCALE) + 28;
    }
    if rows.is_empty() {
        let words = "no numbers yet";
        let x = (CHART_WIDTH - text_width(words.len(), TEXT_SCALE)) / 2;
        shapes.push(text(
            x,
            (ROWS_TOP + ROWS_BOTTOM) / 2,
            TEXT_SCALE,
            Ink::Muted,
            words,
        ));
        return shapes;
    }

    let shown = &rows[..rows.len().min(MAX_ROWS)];
    let pitch = ((ROWS_BOTTOM - ROWS_TOP) / shown.len() as u32).clamp(MIN_PITCH, MAX_PITCH);
    let bar_height = ((pitch - 10 - BAR_GAP) / 2).min(24);
    let pair_height = 2 * bar_height + BAR_GAP;
    let largest_reach = shown.iter().filter_map(reach_of).fold(0.0, f64::max);
    shapes.push(rect(
        BAR_X - 2,
        ROWS_TOP,
        2,
        pitch * shown.len() as u32,
        Ink::Axis,
    ));
    for (i, row) in shown.iter().enumerate() {
        let top = ROWS_TOP + i as u32 * pitch + (pitch - pair_height) / 2;
        let label_y = top + pair_height.saturating_sub(GLYPH_HEIGHT * TEXT_SCALE) / 2;
        shapes.push(text(
            MARGIN,
            label_y,
            TEXT_SCALE,
            Ink::Text,
            &label_text(&row.label),
        ));
        let reach = reach_of(row).map(|reach| {
            let share = if largest_reach > 0.0 {
                reach / largest_reach
            } else {
                0.0
            };
            (share, compact_count(reach))
        });
        let completion = completion_of(row).map(|completion| {
            (
                completion,
                format!("{}%", (completion * 100.0).round() as u32),
            )
        });
        for (j, (value, ink)) in [(reach, Ink::Reach), (completion, Ink::Completion)]
            .into_iter()
            .enumerate()
        {
            let y = top + j as u32 * (bar_height + BAR_GAP);
            shapes.extend(bar(y, bar_height, value, ink));
        }
    }
    if rows.len() > shown.len() {
        let more = format!("+{} more", rows.len() - shown.len());
        shapes.push(text(MARGIN, ROWS_BOTTOM + 8, TEXT_SCALE, Ink::Muted, &more));
    }
    shapes
}

/// One bar and its value at its end, or "n/a" where the bar would be.
fn bar(y: u32, height: u32, value: Option<(f64, String)>, ink: Ink) -> Vec<Shape> {
    let scale = if height >= GLYPH_HEIGHT * TEXT_SCALE {
        TEXT_SCALE
    } else {
        1
    };
    let text_y = y + height.saturating_sub(GLYPH_HEIGHT * scale) / 2;
    let Some((share, words)) = value else {
        return vec![text(BAR_X + VALUE_GAP, text_y, scale, Ink::Muted, "n/a")];
    };
    // A value above 0 always shows a sliver of bar.
    let mut width = (share.clamp(0.0, 1.0) * f64::from(BAR_MAX)).round() as u32;
    if share > 0.0 {
        width = width.max(1);
    }
    vec![
        rect(BAR_X, y, width, height, ink),
        text(BAR_X + width + VALUE_GAP, text_y, scale, Ink::Text, &words),
    ]
}

fn reach_of(row: &ChartRow) -> Option<f64> {
    row.reach
        .filter(|reach| reach.is_finite())
        .map(|reach| reach.max(0.0))
}

fn completion_of(row: &ChartRow) -> Option<f64> {
    row.completion
        .filter(|completion| completion.is_finite())
        .map(|completion| completion.clamp(0.0, 1.0))
}

fn rect(x: u32, y: u32, width: u32, height: u32, ink: Ink) -> Shape {
    Shape::Rect {
        x,
        y,
        width,
        height,
        ink,
    }
}

fn text(x: u32, y: u32, scale: u32, ink: Ink, words: &str) -> Shape {
    Shape::Text {
        x,
        y,
        scale,
        ink,
        text: ascii(words),
    }
}

const fn text_width(chars: usize, scale: u32) -> u32 {
    (chars as u32 * ADVANCE).saturating_sub(ADVANCE - GLYPH_WIDTH) * scale
}

/// The characters the font has: printable ASCII; anything else is "?".
fn ascii(words: &str) -> Vec<u8> {
    words
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c as u8
            } else {
                b'?'
            }
        })
        .collect()
}

/// A category name as it fits the label column: cut to `LABEL_CHARS`
/// characters, ".." marking the cut.
fn label_text(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        return label.to_string();
    }
    let mut short: String = label.chars().take(LABEL_CHARS - 2).collect();
    short.push_str("..");
    short
}

/// A count in at most five characters: "950", "1.2k", "12k", "3.4M", ">999T".
fn compact_count(value: f64) -> String {
    let value = value.max(0.0);
    if value < 999.5 {
        return format!("{}", value.round() as u64);
    }
    for (suffix, unit) in [("k", 1e3), ("M", 1e6), ("B", 1e9), ("T", 1e12)] {
        let scaled = value / unit;
        if scaled < 9.95 {
            return format!("{scaled:.1}{suffix}");
        }
        if scaled < 999.5 {
            return format!("{scaled:.0}{suffix}");
        }
    }
    ">999T".to_string()
}

/// Paints pixel row `y` of the chart into `row`.
fn draw_row(shapes: &[Shape], y: u32, row: &mut [u8]) {
    row.fill(Ink::Paper as u8);
    let mut paint = |from: u32, to: u32, ink: Ink| {
        let to = (to as usize).min(row.len());
        let from = (from as usize).min(to);
        row[from..to].fill(ink as u8);
    };
    for shape in shapes {
        match shape {
            Shape::Rect {
                x,
                y: top,
                width,
                height,
                ink,
            } => {
                if (*top..top.saturating_add(*height)).contains(&y) {
                    paint(*x, x.saturating_add(*width), *ink);
                }
            }
            Shape::Text {
                x,
                y: top,
                scale,
                ink,
                text,
            } => {
                let cell_height = (GLYPH_HEIGHT + DESCENT) * scale;
                if !(*top..top.saturating_add(cell_height)).contains(&y) {
                    continue;
                }
                let cell_row = (y - top) / scale;
                for (i, byte) in text.iter().enumerate() {
                    let glyph = FONT
                        .get(usize::from(byte.wrapping_sub(b' ')))
                        .unwrap_or(&FONT[usize::from(b'?' - b' ')]);
                    let descent = if DESCENDERS.contains(byte) {
                        DESCENT
                    } else {
                        0
                    };
                    let Some(dot_row) = cell_row
                        .checked_sub(descent)
                        .filter(|row| *row < GLYPH_HEIGHT)
                    else {
                        continue;
                    };
                    let dots = glyph[dot_row as usize];
                    let left = x + i as u32 * ADVANCE * scale;
                    for column in 0..GLYPH_WIDTH {
                        if dots & (1 << (GLYPH_WIDTH - 1 - column)) != 0 {
                            let from = left + column * scale;
                            paint(from, from + scale, *ink);
                        }
                    }
                }
            }
        }
    }
}

/// Printable ASCII from space (0x20) to "~" (0x7E): each glyph seven rows of
/// five dots, the leftmost dot in bit 4. The letters with a descender
/// (`DESCENDERS`) are drawn two rows lower, so they hang below the line.
#[rustfmt::skip]
const FONT: [[u8; 7]; 95] = [
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // space
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100], // !
    [0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000], // "
    [0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010], // #
    [0b00100, 0b01111, 0b10100, 0b01110, 0b00101, 0b11110, 0b00100], // $
    [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011], // %
    [0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101], // &
    [0b00100, 0b00100, 0b01000, 0b00000, 0b00000, 0b00000, 0b00000], // '
    [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010], // (
    [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000], // )
    [0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000], // *
    [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000], // +
    [0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000], // ,
    [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000], // -
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100], // .
    [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000], // /
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110], // 0
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // 1
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111], // 2
    [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110], // 3
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010], // 4
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110], // 5
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110], // 6
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000], // 7
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110], // 8
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100], // 9
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000], // :
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b00100, 0b01000], // ;
    [0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010], // <
    [0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000], // =
    [0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000], // >
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100], // ?
    [0b01110, 0b10001, 0b00001, 0b01101, 0b10101, 0b10101, 0b01110], // @
    [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // A
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110], // B
    [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110], // C
    [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100], // D
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111], // E
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000], // F
    [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111], // G
    [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001], // H
    [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // I
    [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100], // J
    [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001], // K
    [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111], // L
    [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001], // M
    [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001], // N
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // O
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000], // P
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101], // Q
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001], // R
    [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110], // S
    [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // T
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110], // U
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // V
    [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010], // W
    [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001], // X
    [0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100], // Y
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111], // Z
    [0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110], // [
    [0b00000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00001, 0b00000], // \
    [0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110], // ]
    [0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000], // ^
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111], // _
    [0b01000, 0b00100, 0b00010, 0b00000, 0b00000, 0b00000, 0b00000], // `
    [0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111], // a
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110], // b
    [0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110], // c
    [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111], // d
    [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110], // e
    [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000], // f
    [0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b10001, 0b01110], // g
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // h
    [0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110], // i
    [0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b10010, 0b01100], // j
    [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010], // k
    [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110], // l
    [0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001], // m
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001], // n
    [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110], // o
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000], // p
    [0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b00001, 0b00001], // q
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000], // r
    [0b00000, 0b00000, 0b01110, 0b10000, 0b01110, 0b00001, 0b11110], // s
    [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110], // t
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101], // u
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100], // v
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010], // w
    [0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001], // x
    [0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b10001, 0b01110], // y
    [0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111], // z
    [0b00010, 0b00100, 0b00100, 0b01000, 0b00100, 0b00100, 0b00010], // {
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100], // |
    [0b01000, 0b00100, 0b00100, 0b00010, 0b00100, 0b00100, 0b01000], // }
    [0b00000, 0b00000, 0b01000, 0b10101, 0b00010, 0b00000, 0b00000], // ~
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoded chart: its size and its pixels as RGB.
    struct Picture {
        width: u32,
        height: u32,
        rgb: Vec<u8>,
    }

    impl Picture {
        fn decode(png: &[u8]) -> Picture {
            let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
            decoder.set_transformations(png::Transformations::EXPAND);
            let mut reader = decoder.read_info().unwrap();
            let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut rgb).unwrap();
            assert_eq!(info.color_type, png::ColorType::Rgb);
            Picture {
                width: info.width,
                height: info.height,
                rgb,
            }
        }

        fn is(&self, x: u32, y: u32, ink: Ink) -> bool {
            let at = ((y * self.width + x) * 3) as usize;
            let colour = &PALETTE[ink as usize * 3..ink as usize * 3 + 3];
            &self.rgb[at..at + 3] == colour
        }

        /// The bars of `ink`, top to bottom, as their widths in pixels (the
        /// legend's square left of the bars is not one).
        fn bars(&self, ink: Ink) -> Vec<u32> {
            let mut bars = Vec::new();
            let mut in_bar = false;
            for y in ROWS_TOP..self.height {
                let width = (BAR_X..self.width).filter(|x| self.is(*x, y, ink)).count() as u32;
                if width > 0 && !in_bar {
                    bars.push(width);
                }
                in_bar = width > 0;
            }
            bars
        }

        fn count(&self, ink: Ink) -> usize {
            (0..self.height)
                .flat_map(|y| (0..self.width).map(move |x| (x, y)))
                .filter(|(x, y)| self.is(*x, *y, ink))
                .count()
        }
    }

    fn row(label: &str, reach: Option<f64>, completion: Option<f64>) -> ChartRow {
        ChartRow {
            label: label.to_string(),
            reach,
            completion,
        }
    }

    fn chart(rows: &[ChartRow]) -> Picture {
        let png = insights_chart(rows).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let picture = Picture::decode(&png);
        assert_eq!((picture.width, picture.height), (CHART_WIDTH, CHART_HEIGHT));
        picture
    }

    #[test]
    fn bars_are_in_proportion() {
        let picture = chart(&[
            row("quotes", Some(1200.0), Some(0.5)),
            row("memes", Some(600.0), Some(1.0)),
            row("products", Some(300.0), Some(0.25)),
        ]);
        let close = |got: Vec<u32>, want: [f64; 3]| {
            assert_eq!(got.len(), 3, "{got:?}");
            for (got, want) in got.iter().zip(want) {
                let want = want * f64::from(BAR_MAX);
                assert!((f64::from(*got) - want).abs() <= 1.0, "{got} vs {want}");
            }
        };
        close(picture.bars(Ink::Reach), [1.0, 0.5, 0.25]);
        close(picture.bars(Ink::Completion), [0.5, 1.0, 0.25]);
    }

    #[test]
    fn missing_numbers_draw_no_bar() {
        let picture = chart(&[
            row("quotes", Some(10.0), None),
            row("memes", None, Some(0.7)),
            row("zero", Some(0.0), Some(0.0)),
        ]);
        assert_eq!(picture.bars(Ink::Reach), [BAR_MAX]);
        assert_eq!(picture.bars(Ink::Completion).len(), 1);
    }

    #[test]
    fn an_empty_chart_says_so() {
        let picture = chart(&[]);
        assert!(picture.bars(Ink::Reach).is_empty());
        assert!(
            picture.count(Ink::Muted) > 0,
            "the words \"no numbers yet\""
        );
        assert!(picture.count(Ink::Text) > 0, "the title");
    }

    #[test]
    fn many_rows_are_cut_and_counted() {
        let rows: Vec<ChartRow> = (0..50)
            .map(|i| {
                row(
                    &format!("category number {i}"),
                    Some(f64::from(i)),
                    Some(0.5),
                )
            })
            .collect();
        let picture = chart(&rows);
        assert_eq!(picture.bars(Ink::Completion).len(), MAX_ROWS);
        let shapes = layout(&rows);
        assert!(shapes.contains(&text(
            MARGIN,
            ROWS_BOTTOM + 8,
            TEXT_SCALE,
            Ink::Muted,
            &format!("+{} more", 50 - MAX_ROWS)
        )));
    }

    #[test]
    fn absurd_values_do_not_break_it() {
        let picture = chart(&[
            row("huge", Some(f64::MAX), Some(5.0)),
            row("infinite", Some(f64::INFINITY), Some(f64::NAN)),
            row("negative", Some(-5.0), Some(-1.0)),
            row("nan", Some(f64::NAN), Some(f64::NEG_INFINITY)),
            row("tiny", Some(1e-300), Some(1e-9)),
            row("", Some(1e300), Some(0.5)),
        ]);
        let reach = picture.bars(Ink::Reach);
        assert!(reach.iter().all(|width| *width <= BAR_MAX), "{reach:?}");
        assert_eq!(reach[0], BAR_MAX);
    }

    #[test]
    fn text_is_ascii_and_names_are_cut() {
        assert_eq!(ascii("café ☕\t~"), b"caf? ??~");
        assert_eq!(label_text("quotes"), "quotes");
        assert_eq!(label_text("exactly fifteen"), "exactly fifteen");
        assert_eq!(label_text("a-very-long-category-name"), "a-very-long-c..");
        assert_eq!(label_text("ünïcödé-names-that-are-long"), "ünïcödé-names..");
        let counts: Vec<String> = [
            0.0,
            7.4,
            999.4,
            999.6,
            1234.0,
            9960.0,
            12_345.0,
            999_499.0,
            2.5e6,
            7e11,
            1e15,
            f64::MAX,
            -3.0,
        ]
        .into_iter()
        .map(compact_count)
        .collect();
        assert_eq!(
            counts,
            [
                "0", "7", "999", "1.0k", "1.2k", "10k", "12k", "999k", "2.5M", "700B", ">999T",
                ">999T", "0"
            ]
        );
        assert!(counts.iter().all(|c| c.len() <= VALUE_CHARS as usize));
    }

    #[test]
    fn the_font_draws_every_printable_character() {
        for (i, glyph) in FONT.iter().enumerate() {
            assert!(glyph.iter().all(|row| *row < 1 << GLYPH_WIDTH), "glyph {i}");
            assert_eq!(glyph.iter().any(|row| *row != 0), i != 0, "glyph {i}");
        }
        // "I" drawn at scale 1: its top bar, then its stem.
        let shapes = [text(0, 0, 1, Ink::Text, "I")];
        let mut row = vec![0; 8];
        draw_row(&shapes, 0, &mut row);
        assert_eq!(row, [0, 1, 1, 1, 0, 0, 0, 0]);
        draw_row(&shapes, 3, &mut row);
        assert_eq!(row, [0, 0, 1, 0, 0, 0, 0, 0]);
        draw_row(&shapes, 7, &mut row);
        assert_eq!(row, [0; 8]);
        // "p" hangs below the line: its stem reaches the ninth row.
        let shapes = [text(0, 0, 1, Ink::Text, "Ip")];
        draw_row(&shapes, 8, &mut row);
        assert_eq!(row, [0, 0, 0, 0, 0, 0, 1, 0]);
        draw_row(&shapes, 0, &mut row);
        assert_eq!(row, [0, 1, 1, 1, 0, 0, 0, 0]);
        // Clipped at the right edge without a panic.
        let mut narrow = vec![0; 3];
        draw_row(
            &[
                text(1, 0, 4, Ink::Text, "WWW"),
                rect(2, 0, u32::MAX, 1, Ink::Axis),
            ],
            0,
            &mut narrow,
        );
        assert_eq!(narrow, [0, 1, 5]);
    }

    #[test]
    fn rows_from_a_report() {
        let results = CategoryResults {
            category: "quotes".to_string(),
            stories: 3,
            with_numbers: 2,
            average_reach: Some(120.0),
            average_completion: Some(0.8),
            replies: 0,
            shares: 0,
            follows: 0,
        };
        assert_eq!(
            ChartRow::from(&results),
            row("quotes", Some(120.0), Some(0.8))
        );
    }
}
