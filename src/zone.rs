//! Time zones from the system's tz database (`/usr/share/zoneinfo`, Debian's
//! `tzdata`; `TZDIR` names another folder, as for glibc): a `Tz` that is `Copy`,
//! compares by name and works with chrono as a `TimeZone`.
//!
//! Why not a crate with the database compiled in: its transition tables are
//! tables of pointers, which a position-independent binary must relocate at
//! start. That was 1.3 MB of relocated data and 1 MB of relocations, a quarter of
//! the daemon's idle memory (ARCHITECTURE.md, "Time zones"). Here a zone is read
//! from its TZif file (RFC 8536) the first time it is named, kept for the life of
//! the process (a few hundred bytes each; at most the few hundred zones there
//! are), and the tz database stays current with the system's updates.
//!
//! Reading a zone is the only IO, once per zone name; everything else is pure.
//! Names are checked before they become a path: an IANA name has ASCII letters,
//! digits, `_`, `-`, `+` and `/` between parts, nothing else.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;

use chrono::{
    Datelike, FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
};

/// The longest name accepted (the longest IANA name has 32 characters).
const MAX_NAME: usize = 64;
/// A TZif file larger than this is not a time zone (the largest is ~4 KB).
const MAX_FILE: u64 = 64 * 1024;
/// The `MAX_FILE` limits keep these small; checked while reading anyway.
const MAX_TYPES: usize = 256;
const SECS_PER_DAY: i64 = 86_400;

/// One time zone, loaded once and kept: cheap to copy and to compare.
#[derive(Clone, Copy)]
pub struct Tz(&'static Zone);

struct Zone {
    name: &'static str,
    /// Transition instants (UTC seconds), ascending, and the local time type in
    /// force from each one on.
    times: &'static [i64],
    kinds: &'static [u8],
    types: &'static [LocalType],
    /// After the last transition: the rule of the file's footer, if it has one.
    rule: Option<Rule>,
}

/// A local time type: offset east of UTC in seconds, whether it is daylight
/// saving time, and its abbreviation ("CEST", "+03").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LocalType {
    offset: i32,
    is_dst: bool,
    abbr: &'static str,
}

/// A POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Fixed(LocalType),
    Yearly {
        std: LocalType,
        dst: LocalType,
        /// When DST starts (in standard time) and ends (in DST), each as a day
        /// of the year and seconds after that day's midnight.
        start: (RuleDay, i32),
        end: (RuleDay, i32),
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RuleDay {
    /// `Jn`: 1–365, February 29 never counted.
    Julian1(u16),
    /// `n`: 0–365, February 29 counted in leap years.
    Julian0(u16),
    /// `Mm.w.d`: month 1–12, week 1–5 (5: the last), weekday 0–6 (0: Sunday).
    MonthWeekDay(u8, u8, u8),
}

static UTC_ZONE: Zone = Zone {
    name: "UTC",
    times: &[],
    kinds: &[],
    types: &[LocalType {
        offset: 0,
        is_dst: false,
        abbr: "UTC",
    }],
    rule: None,
};

/// The zones read so far, by name.
static LOADED: Mutex<Vec<Tz>> = Mutex::new(Vec::new());

impl Tz {
    pub const UTC: Tz = Tz(&UTC_ZONE);

    /// The IANA name it was found by ("Europe/Berlin").
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    fn local_type_at(&self, utc: i64) -> LocalType {
        let zone = self.0;
        let first = zone.types.first().copied().unwrap_or(UTC_ZONE.types[0]);
        let Some(&last) = zone.times.last() else {
            return match zone.rule {
                Some(rule) => rule.at(utc),
                None => first,
            };
        };
        if utc >= last {
            if let Some(rule) = zone.rule {
                return rule.at(utc);
            }
        }
        let after = zone.times.partition_point(|&t| t <= utc);
        if after == 0 {
            // Before the first transition: the first type that is not DST (the
            // zone's local mean time), as RFC 8536 says.
            return zone
                .types
                .iter()
                .find(|t| !t.is_dst)
                .copied()
                .unwrap_or(first);
        }
        zone.kinds
            .get(after - 1)
            .and_then(|&kind| zone.types.get(usize::from(kind)))
            .copied()
            .unwrap_or(first)
    }

    fn offset(&self, local: LocalType) -> ZoneOffset {
        ZoneOffset { tz: *self, local }
    }
}

impl PartialEq for Tz {
    fn eq(&self, other: &Tz) -> bool {
        self.0.name == other.0.name
    }
}
impl Eq for Tz {}

impl std::hash::Hash for Tz {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl fmt::Debug for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl fmt::Display for Tz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

/// Why a name is not a time zone here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownZone(pub String);

impl fmt::Display for UnknownZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown time zone: {}", self.0)
    }
}

impl std::error::Error for UnknownZone {}

impl FromStr for Tz {
    type Err = UnknownZone;

    /// The zone of exactly this name, read on first use. Case matters, as in
    /// the tz database; `find` forgives case.
    fn from_str(name: &str) -> Result<Tz, UnknownZone> {
        let unknown = || UnknownZone(name.chars().take(MAX_NAME).collect());
        if name == "UTC" {
            return Ok(Tz::UTC);
        }
        if !is_zone_name(name) {
            return Err(unknown());
        }
        let mut loaded = LOADED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(tz) = loaded.iter().find(|tz| tz.0.name == name) {
            return Ok(*tz);
        }
        let bytes = read_zone_file(name).ok_or_else(unknown)?;
        let zone = parse_tzif(&bytes, name).ok_or_else(unknown)?;
        let tz = Tz(Box::leak(Box::new(zone)));
        loaded.push(tz);
        Ok(tz)
    }
}

/// The zone whose name matches `name` ignoring ASCII case ("america/new_york"),
/// with the database's own spelling.
pub fn find(name: &str) -> Option<Tz> {
    if let Ok(tz) = name.parse::<Tz>() {
        return Some(tz);
    }
    if name.eq_ignore_ascii_case("UTC") {
        return Some(Tz::UTC);
    }
    if !is_zone_name(name) {
        return None;
    }
    let mut dir = zone_dir();
    let mut spelled = Vec::new();
    for part in name.split('/') {
        let found = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .find(|entry| entry.eq_ignore_ascii_case(part))?;
        dir.push(&found);
        spelled.push(found);
    }
    spelled.join("/").parse().ok()
}

/// Every zone name in the database, sorted (for tests and lists): the TZif files
/// under the zone folder, without the `posix/` and `right/` copies.
pub fn names() -> Vec<String> {
    fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(file) = entry.file_name().into_string() else {
                continue;
            };
            let name = format!("{prefix}{file}");
            if !is_zone_name(&name) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                walk(&path, &format!("{name}/"), out);
            } else if read_zone_file(&name).is_some_and(|bytes| bytes.starts_with(b"TZif")) {
                out.push(name);
            }
        }
    }
    let mut out = Vec::new();
    walk(&zone_dir(), "", &mut out);
    out.sort();
    out
}

fn zone_dir() -> PathBuf {
    std::env::var_os("TZDIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/zoneinfo"))
}

/// An IANA-shaped name that cannot leave the zone folder: parts of ASCII
/// letters, digits, `_`, `-` and `+`, none empty, none starting with `-`; not the
/// `posix/` and `right/` copies (the latter count leap seconds), not `localtime`.
fn is_zone_name(name: &str) -> bool {
    name.len() <= MAX_NAME
        && !name.starts_with("posix/")
        && !name.starts_with("right/")
        && !matches!(name, "posix" | "right" | "localtime" | "posixrules")
        && name.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('-')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
        })
}

fn read_zone_file(name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(zone_dir().join(name)).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= MAX_FILE).then_some(bytes)
}

// ---- TZif (RFC 8536) ----------------------------------------------------------------

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

struct Counts {
    isut: usize,
    isstd: usize,
    leap: usize,
    time: usize,
    types: usize,
    chars: usize,
}

impl Counts {
    /// The length of the data block after a header, with `time_size`-byte times.
    fn block_len(&self, time_size: usize) -> Option<usize> {
        [
            self.time.checked_mul(time_size + 1)?,
            self.types.checked_mul(6)?,
            self.chars,
            self.leap.checked_mul(time_size + 4)?,
            self.isstd,
            self.isut,
        ]
        .into_iter()
        .try_fold(0usize, usize::checked_add)
    }
}

fn header(r: &mut Reader) -> Option<(u8, Counts)> {
    if r.take(4)? != b"TZif" {
        return None;
    }
    let version = r.take(1)?[0];
    r.take(15)?;
    let mut count = || r.u32().and_then(|n| usize::try_from(n).ok());
    let counts = Counts {
        isut: count()?,
        isstd: count()?,
        leap: count()?,
        time: count()?,
        types: count()?,
        chars: count()?,
    };
    Some((version, counts))
}

/// A zone from a TZif file; `None` for anything that is not a well-formed one
/// (and for files that count leap seconds, which civil time does not).
fn parse_tzif(bytes: &[u8], name: &str) -> Option<Zone> {
    let mut r = Reader { bytes };
    let (version, mut counts) = header(&mut r)?;
    let mut time_size = 4;
    if version >= b'2' {
        // Skip the 32-bit block; the 64-bit one after the second header is the same data.
        r.take(counts.block_len(4)?)?;
        counts = header(&mut r)?.1;
        time_size = 8;
    }
    if counts.leap != 0 || counts.types == 0 || counts.types > MAX_TYPES {
        return None;
    }
    // The whole block must be there before anything is allocated for it.
    if counts.block_len(time_size)? > r.bytes.len() {
        return None;
    }
    let times: Vec<i64> = r
        .take(counts.time.checked_mul(time_size)?)?
        .chunks_exact(time_size)
        .map(|b| match *b {
            [a, b, c, d] => i64::from(i32::from_be_bytes([a, b, c, d])),
            [a, b, c, d, e, f, g, h] => i64::from_be_bytes([a, b, c, d, e, f, g, h]),
            _ => 0,
        })
        .collect();
    if times.windows(2).any(|pair| pair[0] >= pair[1]) {
        return None;
    }
    let kinds = r.take(counts.time)?.to_vec();
    if kinds.iter().any(|&k| usize::from(k) >= counts.types) {
        return None;
    }
    let raw_types: Vec<(i32, bool, usize)> = r
        .take(counts.types * 6)?
        .chunks_exact(6)
        .map(|b| {
            (
                i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                b[4] == 1,
                usize::from(b[5]),
            )
        })
        .collect();
    let chars = r.take(counts.chars)?;
    r.take(counts.isstd.checked_add(counts.isut)?)?;
    let mut types = Vec::with_capacity(raw_types.len());
    for (offset, is_dst, at) in raw_types {
        // RFC 8536 allows a little more; no zone uses a day or more, nor does chrono.
        if !is_offset(offset) {
            return None;
        }
        let tail = chars.get(at..)?;
        let end = tail.iter().position(|&b| b == 0)?;
        let abbr = std::str::from_utf8(&tail[..end]).ok()?;
        types.push(LocalType {
            offset,
            is_dst,
            abbr: leak_str(abbr),
        });
    }
    let rule = if version >= b'2' {
        let footer = r.bytes.strip_prefix(b"\n")?;
        let end = footer.iter().position(|&b| b == b'\n')?;
        let text = std::str::from_utf8(&footer[..end]).ok()?;
        if text.is_empty() {
            None
        } else {
            Some(parse_rule(text)?)
        }
    } else {
        None
    };
    Some(Zone {
        name: leak_str(name),
        times: Box::leak(times.into_boxed_slice()),
        kinds: Box::leak(kinds.into_boxed_slice()),
        types: Box::leak(types.into_boxed_slice()),
        rule,
    })
}

fn is_offset(seconds: i32) -> bool {
    seconds.unsigned_abs() < 86_400
}

fn leak_str(text: &str) -> &'static str {
    Box::leak(text.to_string().into_boxed_str())
}

// ---- POSIX TZ rules ---------------------------------------------------------------

/// Parses a TZ string as TZif footers hold them (POSIX, with RFC 8536's
/// extensions: hours up to 167 and negative in rule times).
fn parse_rule(text: &str) -> Option<Rule> {
    let mut s = text.as_bytes();
    let std_abbr = abbreviation(&mut s)?;
    let std_offset = -signed_seconds(&mut s, 24)?;
    if !is_offset(std_offset) {
        return None;
    }
    let std = LocalType {
        offset: std_offset,
        is_dst: false,
        abbr: leak_str(std_abbr),
    };
    if s.is_empty() {
        return Some(Rule::Fixed(std));
    }
    let dst_abbr = abbreviation(&mut s)?;
    let dst_offset = if s.first().is_some_and(|&b| b != b',') {
        -signed_seconds(&mut s, 24)?
    } else {
        std_offset + 3600
    };
    if !is_offset(dst_offset) {
        return None;
    }
    let dst = LocalType {
        offset: dst_offset,
        is_dst: true,
        abbr: leak_str(dst_abbr),
    };
    s = s.strip_prefix(b",")?;
    let start = rule_when(&mut s)?;
    s = s.strip_prefix(b",")?;
    let end = rule_when(&mut s)?;
    if !s.is_empty() {
        return None;
    }
    Some(Rule::Yearly {
        std,
        dst,
        start,
        end,
    })
}

fn abbreviation<'a>(s: &mut &'a [u8]) -> Option<&'a str> {
    let (abbr, rest) = if let Some(quoted) = s.strip_prefix(b"<") {
        let end = quoted.iter().position(|&b| b == b'>')?;
        let abbr = &quoted[..end];
        if !abbr
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-'))
        {
            return None;
        }
        (abbr, &quoted[end + 1..])
    } else {
        let end = s
            .iter()
            .position(|b| !b.is_ascii_alphabetic())
            .unwrap_or(s.len());
        s.split_at(end)
    };
    if abbr.len() < 3 {
        return None;
    }
    *s = rest;
    std::str::from_utf8(abbr).ok()
}

/// `[+-]hh[:mm[:ss]]` in seconds, hours at most `max_hours`.
fn signed_seconds(s: &mut &[u8], max_hours: i32) -> Option<i32> {
    let sign = match s.first() {
        Some(b'-') => {
            *s = &s[1..];
            -1
        }
        Some(b'+') => {
            *s = &s[1..];
            1
        }
        _ => 1,
    };
    let hours = number(s, 3)?;
    if hours > max_hours {
        return None;
    }
    let mut seconds = hours * 3600;
    for unit in [60, 1] {
        let Some(rest) = s.strip_prefix(b":") else {
            break;
        };
        *s = rest;
        let part = number(s, 2)?;
        if part > 59 {
            return None;
        }
        seconds += part * unit;
    }
    Some(sign * seconds)
}

fn number(s: &mut &[u8], max_digits: usize) -> Option<i32> {
    let digits = s
        .iter()
        .take(max_digits)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return None;
    }
    let value = s[..digits]
        .iter()
        .fold(0i32, |n, &b| n * 10 + i32::from(b - b'0'));
    *s = &s[digits..];
    Some(value)
}

fn rule_when(s: &mut &[u8]) -> Option<(RuleDay, i32)> {
    let day = if let Some(rest) = s.strip_prefix(b"M") {
        *s = rest;
        let month = number(s, 2)?;
        *s = s.strip_prefix(b".")?;
        let week = number(s, 1)?;
        *s = s.strip_prefix(b".")?;
        let weekday = number(s, 1)?;
        if !(1..=12).contains(&month) || !(1..=5).contains(&week) || weekday > 6 {
            return None;
        }
        RuleDay::MonthWeekDay(month as u8, week as u8, weekday as u8)
    } else if let Some(rest) = s.strip_prefix(b"J") {
        *s = rest;
        let day = number(s, 3)?;
        if !(1..=365).contains(&day) {
            return None;
        }
        RuleDay::Julian1(day as u16)
    } else {
        let day = number(s, 3)?;
        if day > 365 {
            return None;
        }
        RuleDay::Julian0(day as u16)
    };
    let time = match s.strip_prefix(b"/") {
        Some(rest) => {
            *s = rest;
            signed_seconds(s, 167)?
        }
        None => 7200,
    };
    Some((day, time))
}

impl RuleDay {
    /// The day in `year`, as days since 1970-01-01.
    fn days_since_epoch(self, year: i32) -> Option<i64> {
        let date = match self {
            RuleDay::Julian1(n) => {
                let jan1 = NaiveDate::from_ymd_opt(year, 1, 1)?;
                let mut ordinal = i64::from(n) - 1;
                if jan1.leap_year() && n >= 60 {
                    ordinal += 1;
                }
                jan1.checked_add_days(chrono::Days::new(ordinal as u64))?
            }
            RuleDay::Julian0(n) => NaiveDate::from_ymd_opt(year, 1, 1)?
                .checked_add_days(chrono::Days::new(u64::from(n)))?,
            RuleDay::MonthWeekDay(month, week, weekday) => {
                let first = NaiveDate::from_ymd_opt(year, u32::from(month), 1)?;
                let first_weekday = i64::from(first.weekday().num_days_from_sunday());
                let mut day =
                    (i64::from(weekday) - first_weekday).rem_euclid(7) + 7 * (i64::from(week) - 1);
                let length = i64::from(days_in_month(year, month)?);
                while day >= length {
                    day -= 7;
                }
                first.checked_add_days(chrono::Days::new(day as u64))?
            }
        };
        Some((date - NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days())
    }
}

fn days_in_month(year: i32, month: u8) -> Option<u32> {
    let first = NaiveDate::from_ymd_opt(year, u32::from(month), 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, u32::from(month) + 1, 1)?
    };
    u32::try_from((next - first).num_days()).ok()
}

impl Rule {
    fn at(&self, utc: i64) -> LocalType {
        match *self {
            Rule::Fixed(local) => local,
            Rule::Yearly {
                std,
                dst,
                start,
                end,
            } => {
                let local_year = |offset: i32| {
                    chrono::DateTime::from_timestamp(utc + i64::from(offset), 0).map(|at| at.year())
                };
                let Some(year) = local_year(std.offset) else {
                    return std;
                };
                // The transitions of this year; a rule whose instants cannot be
                // computed (far outside chrono's range) keeps standard time.
                let instant = |(day, time): (RuleDay, i32), offset: i32| {
                    day.days_since_epoch(year)
                        .map(|days| days * SECS_PER_DAY + i64::from(time) - i64::from(offset))
                };
                let (Some(starts), Some(ends)) =
                    (instant(start, std.offset), instant(end, dst.offset))
                else {
                    return std;
                };
                let in_dst = if starts < ends {
                    starts <= utc && utc < ends
                } else {
                    // Southern hemisphere: DST spans the new year.
                    !(ends <= utc && utc < starts)
                };
                if in_dst {
                    dst
                } else {
                    std
                }
            }
        }
    }
}

// ---- chrono ----------------------------------------------------------------------

/// The offset of a `Tz` at some instant; shows as its abbreviation ("CEST").
#[derive(Clone, Copy)]
pub struct ZoneOffset {
    tz: Tz,
    local: LocalType,
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        // Offsets are checked to be within a day when a zone is read.
        FixedOffset::east_opt(self.local.offset).unwrap_or_else(|| chrono::Utc.fix())
    }
}

impl fmt::Debug for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.local.abbr)
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.local.abbr)
    }
}

impl TimeZone for Tz {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Tz {
        offset.tz
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<ZoneOffset> {
        match self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN)) {
            MappedLocalTime::None => self.offset_from_local_datetime(
                &local.and_time(NaiveTime::MIN + chrono::Duration::hours(12)),
            ),
            found => found,
        }
    }

    /// The offsets under which `local` exists: none in a gap (spring forward),
    /// two in a fold (fall back; the earlier instant first), else one. Exact: every
    /// offset the zone ever uses is tried.
    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<ZoneOffset> {
        let seconds = local.and_utc().timestamp();
        let zone = self.0;
        let rule_types = match zone.rule {
            Some(Rule::Fixed(one)) => [Some(one), None],
            Some(Rule::Yearly { std, dst, .. }) => [Some(std), Some(dst)],
            None => [None, None],
        };
        let mut found: Vec<(i64, LocalType)> = Vec::with_capacity(2);
        for candidate in zone
            .types
            .iter()
            .copied()
            .chain(rule_types.into_iter().flatten())
        {
            let utc = seconds - i64::from(candidate.offset);
            let actual = self.local_type_at(utc);
            if actual.offset == candidate.offset && !found.iter().any(|(at, _)| *at == utc) {
                found.push((utc, actual));
            }
        }
        found.sort_by_key(|(at, _)| *at);
        match found.as_slice() {
            [] => MappedLocalTime::None,
            [(_, one)] => MappedLocalTime::Single(self.offset(*one)),
            [(_, earlier), .., (_, later)] => {
                MappedLocalTime::Ambiguous(self.offset(*earlier), self.offset(*later))
            }
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        self.offset(self.local_type_at(utc.and_utc().timestamp()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn tz(name: &str) -> Tz {
        name.parse().unwrap()
    }

    fn local(tz: Tz, text: &str) -> MappedLocalTime<chrono::DateTime<Tz>> {
        let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        tz.from_local_datetime(&naive)
    }

    #[test]
    fn berlin_keeps_summer_and_winter_time() {
        let berlin = tz("Europe/Berlin");
        let winter = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).unwrap();
        assert_eq!(
            winter.with_timezone(&berlin).format("%H:%M %Z").to_string(),
            "13:00 CET"
        );
        assert_eq!(
            summer.with_timezone(&berlin).format("%H:%M %Z").to_string(),
            "14:00 CEST"
        );
        // Far beyond the file's transitions: the footer's rule.
        let later = Utc.with_ymd_and_hms(2090, 7, 15, 12, 0, 0).unwrap();
        assert_eq!(
            later.with_timezone(&berlin).format("%H:%M %Z").to_string(),
            "14:00 CEST"
        );
        let later = Utc.with_ymd_and_hms(2090, 12, 15, 12, 0, 0).unwrap();
        assert_eq!(
            later.with_timezone(&berlin).format("%H:%M %Z").to_string(),
            "13:00 CET"
        );
    }

    #[test]
    fn gaps_and_folds_are_told() {
        let berlin = tz("Europe/Berlin");
        // 2026-03-29 02:30 does not exist in Berlin; 2026-10-25 02:30 exists twice.
        assert!(matches!(
            local(berlin, "2026-03-29 02:30"),
            MappedLocalTime::None
        ));
        match local(berlin, "2026-10-25 02:30") {
            MappedLocalTime::Ambiguous(first, second) => {
                assert_eq!(first.to_rfc3339(), "2026-10-25T02:30:00+02:00");
                assert_eq!(second.to_rfc3339(), "2026-10-25T02:30:00+01:00");
            }
            other => panic!("{other:?}"),
        }
        let single = local(berlin, "2026-06-01 09:00").single().unwrap();
        assert_eq!(single.to_rfc3339(), "2026-06-01T09:00:00+02:00");
        // The same in a rule far in the future, and in the southern hemisphere.
        assert!(matches!(
            local(berlin, "2090-03-26 02:30"),
            MappedLocalTime::None
        ));
        let sydney = tz("Australia/Sydney");
        assert!(matches!(
            local(sydney, "2090-04-02 02:30"),
            MappedLocalTime::Ambiguous(..)
        ));
        let jan = local(sydney, "2090-01-10 12:00").single().unwrap();
        assert_eq!(jan.offset().fix().local_minus_utc(), 11 * 3600);
        let jul = local(sydney, "2090-07-10 12:00").single().unwrap();
        assert_eq!(jul.offset().fix().local_minus_utc(), 10 * 3600);
    }

    #[test]
    fn agrees_with_the_file_transitions_where_the_footer_takes_over() {
        // Every hour of 2030–2040 in four zones: the rule must continue the table.
        for name in [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Sydney",
            "America/Santiago",
        ] {
            let zone = tz(name);
            let last = *zone.0.times.last().unwrap();
            let table_only = Tz(Box::leak(Box::new(Zone {
                name: zone.0.name,
                times: zone.0.times,
                kinds: zone.0.kinds,
                types: zone.0.types,
                rule: None,
            })));
            let rule = zone.0.rule.unwrap();
            // In the table's last two years, rule and table agree.
            let mut at = last - 2 * 365 * SECS_PER_DAY;
            while at < last {
                assert_eq!(
                    rule.at(at).offset,
                    table_only.local_type_at(at).offset,
                    "{name} at {at}"
                );
                at += 3600;
            }
        }
    }

    #[test]
    fn names_are_checked_before_they_become_paths() {
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "Europe//Berlin",
            "Europe/",
            "",
            "right/Europe/Berlin",
            "posix/Europe/Berlin",
            "localtime",
            "Europe/Berlin\0",
            "Europe/../../etc",
            "-rf",
            "zone.tab",
            "tzdata.zi",
        ] {
            assert!(bad.parse::<Tz>().is_err(), "{bad}");
        }
        assert!("Mars/Base".parse::<Tz>().is_err());
        assert_eq!(
            find("america/new_york").map(|tz| tz.name()),
            Some("America/New_York")
        );
        assert_eq!(find("utc"), Some(Tz::UTC));
        assert_eq!(find("mars/base"), None);
        assert_eq!(tz("Europe/Berlin"), tz("Europe/Berlin"));
        assert_eq!(tz("UTC"), Tz::UTC);
        assert_eq!(format!("{:?}", tz("Asia/Kolkata")), "Asia/Kolkata");
    }

    #[test]
    fn every_zone_of_the_database_loads_and_answers() {
        let names = names();
        assert!(names.len() > 300, "{} zones", names.len());
        for name in [
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
            "Asia/Kathmandu",
        ] {
            assert!(names.iter().any(|n| n == name), "{name}");
        }
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        for name in &names {
            let zone = tz(name);
            let shown = at.with_timezone(&zone);
            assert_eq!(shown.naive_utc(), at.naive_utc(), "{name}");
            let back = zone
                .from_local_datetime(&shown.naive_local())
                .earliest()
                .unwrap();
            assert_eq!(
                back.with_timezone(&Utc).naive_utc().date(),
                at.naive_utc().date(),
                "{name}"
            );
        }
    }

    #[test]
    fn rules_parse_as_the_footers_write_them() {
        assert_eq!(
            parse_rule("<+0330>-3:30"),
            Some(Rule::Fixed(LocalType {
                offset: 12_600,
                is_dst: false,
                abbr: "+0330"
            }))
        );
        let Some(Rule::Yearly {
            std,
            dst,
            start,
            end,
        }) = parse_rule("EST5EDT,M3.2.0,M11.1.0")
        else {
            panic!()
        };
        assert_eq!((std.offset, dst.offset), (-5 * 3600, -4 * 3600));
        assert_eq!(start, (RuleDay::MonthWeekDay(3, 2, 0), 7200));
        assert_eq!(end, (RuleDay::MonthWeekDay(11, 1, 0), 7200));
        // RFC 8536's extension: hours beyond 24 and negative in rule times.
        let Some(Rule::Yearly { start, end, .. }) = parse_rule("<-03>3<-02>,M3.5.0/-2,M10.5.0/-1")
        else {
            panic!()
        };
        assert_eq!((start.1, end.1), (-7200, -3600));
        assert!(parse_rule("EST5EDT,M3.2.0,M11.1.0/167").is_some());
        assert!(parse_rule("EST5EDT,J60,300/2").is_some());
        for bad in [
            "",
            "E5",
            "EST",
            "EST5EDT",
            "EST5EDT,M13.1.0,M11.1.0",
            "EST5EDT,M3.6.0,M11.1.0",
            "EST5EDT,J0,J365",
            "EST5EDT,M3.2.0,M11.1.0/168",
            "<EST5",
            "EST99",
            "EST5EDT,M3.2.0,M11.1.0x",
        ] {
            assert_eq!(parse_rule(bad), None, "{bad}");
        }
    }

    #[test]
    fn julian_days_count_as_the_standard_says() {
        // J60 is March 1 every year; 59 is February 29 in a leap year, March 1 else.
        let day = |d: RuleDay, year| {
            let days = d.days_since_epoch(year).unwrap();
            NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(days)
        };
        assert_eq!(day(RuleDay::Julian1(60), 2028).to_string(), "2028-03-01");
        assert_eq!(day(RuleDay::Julian1(60), 2027).to_string(), "2027-03-01");
        assert_eq!(day(RuleDay::Julian0(59), 2028).to_string(), "2028-02-29");
        assert_eq!(day(RuleDay::Julian0(59), 2027).to_string(), "2027-03-01");
        assert_eq!(
            day(RuleDay::MonthWeekDay(3, 5, 0), 2026).to_string(),
            "2026-03-29"
        );
        assert_eq!(
            day(RuleDay::MonthWeekDay(2, 5, 0), 2026).to_string(),
            "2026-02-22"
        );
    }

    mod fuzz {
        use super::super::*;
        use crate::fuzz_input::{self, mutate, mutate_text, mutations, text_from};
        use proptest::prelude::*;

        const TZIF_WORDS: &[&[u8]] = &[
            b"TZif",
            b"2",
            b"\0\0\0\x01",
            b"\xff\xff\xff\xff",
            b"\n",
            b"CET-1CEST",
        ];
        const RULE_ALPHABET: &str = "<>+-:,./0123456789JMESTCD";

        proptest! {
            #![proptest_config(fuzz_input::config(512))]

            #[test]
            fn fuzz_tzif_never_panics(edits in mutations(TZIF_WORDS)) {
                let bytes = std::fs::read(zone_dir().join("Europe/Berlin")).unwrap_or_default();
                if let Some(zone) = parse_tzif(&mutate(&bytes, &edits), "Fuzz/Zone") {
                    let tz = Tz(Box::leak(Box::new(zone)));
                    for at in [i64::MIN / 4, -1, 0, 1_800_000_000, i64::MAX / 4] {
                        let _ = tz.local_type_at(at);
                    }
                    let _ = tz.from_local_datetime(&NaiveDateTime::MIN);
                    let _ = tz.from_local_datetime(&NaiveDateTime::MAX);
                }
            }

            #[test]
            fn fuzz_rules_never_panic(text in text_from(RULE_ALPHABET, 40),
                                      edits in mutations(&[b"M3.5.0", b"/167", b"<+03>"])) {
                for text in [text.clone(), mutate_text("CET-1CEST,M3.5.0,M10.5.0/3", &edits)] {
                    if let Some(rule) = parse_rule(&text) {
                        for at in [i64::MIN / 4, 0, 1_800_000_000, i64::MAX / 4] {
                            let _ = rule.at(at);
                        }
                    }
                }
            }

            #[test]
            fn fuzz_names_never_leave_the_folder(name in text_from("./-_+Europe/Berlin\0", 40)) {
                if is_zone_name(&name) {
                    prop_assert!(!name.contains(".."));
                    prop_assert!(!name.starts_with('/'));
                }
                let _ = name.parse::<Tz>();
                let _ = find(&name);
            }
        }
    }
}
