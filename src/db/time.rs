//! How the store writes and reads a point in time: RFC 3339 UTC text to the
//! second with "Z" ("2026-12-02T13:45:00Z"). The format lives here and nowhere
//! else; the store's functions take and return `DateTime<Utc>`.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::Row;

/// A time as a column holds it, for binding (`params![Timestamp(now)]`) and for
/// reading (`time_at`, `optional_time_at`).
///
/// Why a newtype inside the store while its functions speak `DateTime<Utc>`: the
/// rest of the program computes with chrono (windows, locks, expiries), so the
/// boundary speaks chrono and callers need no conversions; but this crate cannot
/// implement `ToSql`/`FromSql` for chrono's type (the orphan rule), and rusqlite's
/// own `chrono` feature writes "2026-12-02 13:45:00+00:00", which is neither what
/// existing databases hold nor comparable with it. SQL compares these texts
/// (`locked_until <= ?3`, `expires_at > ?2`), so every time must be written in
/// one format: the one `timestamp` writes, to the second (a fraction is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timestamp(pub DateTime<Utc>);

/// The stored text of a time. For the store, and for tests that build rows
/// with SQL; the rest of the program hands the store a `DateTime<Utc>`
/// (`tests/boundaries.rs` checks).
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A stored time. Reads any RFC 3339 text (as the store always has), not only
/// the form `timestamp` writes.
fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(timestamp(self.0)))
    }
}

impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        parse_timestamp(text)
            .map(Timestamp)
            .ok_or_else(|| FromSqlError::Other(format!("not a time: {text:?}").into()))
    }
}

/// Column `i` as a time: NULL or text that is not a time is a row error.
pub(crate) fn time_at(row: &Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    Ok(row.get::<_, Timestamp>(i)?.0)
}

/// Column `i` as a time or NULL: text that is not a time is a row error.
pub(crate) fn optional_time_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    Ok(row.get::<_, Option<Timestamp>>(i)?.map(|t| t.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rusqlite::{params, Connection};

    fn read(conn: &Connection, stored: Option<&str>) -> rusqlite::Result<Option<DateTime<Utc>>> {
        conn.query_row("SELECT ?1", [stored], |r| optional_time_at(r, 0))
    }

    #[test]
    fn a_time_is_written_as_it_always_was_and_read_back() {
        let conn = Connection::open_in_memory().unwrap();
        let t = Utc.with_ymd_and_hms(2026, 12, 2, 13, 45, 0).unwrap();
        let with_fraction = t + chrono::Duration::milliseconds(789);
        let stored: String = conn
            .query_row("SELECT ?1", [Timestamp(with_fraction)], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, "2026-12-02T13:45:00Z");
        assert_eq!(timestamp(with_fraction), stored);
        // The lock "for good" that existing rows hold.
        assert_eq!(timestamp(crate::db::queue::FOREVER), "9999-12-31T00:00:00Z");
        let back = conn
            .query_row("SELECT ?1", [Timestamp(t)], |r| time_at(r, 0))
            .unwrap();
        assert_eq!(back, t);
        // Text compares as time: what the SQL of the store relies on.
        let earlier: bool = conn
            .query_row(
                "SELECT ?1 < ?2",
                params![Timestamp(t), Timestamp(t + chrono::Duration::seconds(1))],
                |r| r.get(0),
            )
            .unwrap();
        assert!(earlier);
    }

    #[test]
    fn a_stored_time_that_is_not_one_is_a_row_error_and_null_is_none() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(read(&conn, None).unwrap(), None);
        assert_eq!(
            read(&conn, Some("2026-12-02T14:45:00+01:00")).unwrap(),
            Some(Utc.with_ymd_and_hms(2026, 12, 2, 13, 45, 0).unwrap())
        );
        for bad in [
            "",
            "yesterday",
            "2026-12-02 13:45:00",
            "2026-13-02T13:45:00Z",
        ] {
            let err = read(&conn, Some(bad)).unwrap_err();
            assert!(
                matches!(err, rusqlite::Error::FromSqlConversionFailure(0, _, _)),
                "{bad:?}: {err:?}"
            );
        }
        let null = conn.query_row("SELECT NULL", [], |r| time_at(r, 0));
        assert!(null.is_err(), "a time that must be there");
        let number = conn.query_row("SELECT 1764683100", [], |r| time_at(r, 0));
        assert!(number.is_err(), "a number is not a stored time");
    }
}
