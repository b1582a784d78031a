//! Pure: the closed sets of words the database stores as text: a queue slot's
//! status, a publish job's state, a media item's kind, a settings prompt. Each is an enum that
//! reads and writes the very text stored before it existed (so no migration);
//! a text the program does not know, read from the database, is a conversion
//! error for that row, never a panic. The module does no IO: the core, the
//! store (`db`) and the pure modules all use it, and comparisons in code are
//! enum comparisons, so a misspelt status does not compile.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// Declares a text-backed enum with `as_str`, `parse`, `Display` and the
/// rusqlite conversions.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value for a stored text, if it is one.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::parse(text).ok_or_else(|| {
                    FromSqlError::Other(
                        format!(concat!("unknown ", stringify!($name), " {:?}"), text).into(),
                    )
                })
            }
        }
    };
}

text_enum! {
    /// `posting_queue.status`: a slot's life.
    QueueStatus {
        /// Planned, waiting for its time.
        Pending = "pending",
        /// Due: its story is on its way to the chat (or to Instagram).
        Sending = "sending",
        /// The chat has the story with its buttons.
        Sent = "sent",
        /// Posted (by people or by the API).
        Posted = "posted",
        /// Skipped (paused chat, inactive chat, or a press).
        Skipped = "skipped",
        /// Rejected by a press.
        Rejected = "rejected",
        /// Nothing could be sent or published.
        Failed = "failed",
        /// Its time passed while Storyline was not running.
        Missed = "missed",
    }
}

text_enum! {
    /// `publish_jobs.state`: where a publish stands. Only `Queued` and
    /// `Container` may start (again); `Publishing` means media_publish may have
    /// been called, so it is never retried blindly.
    JobState {
        Queued = "queued",
        Container = "container",
        Publishing = "publishing",
        Published = "published",
        Failed = "failed",
        Unknown = "unknown",
    }
}

impl JobState {
    /// Nothing was published yet: starting (over) is safe.
    pub fn may_start(self) -> bool {
        matches!(self, JobState::Queued | JobState::Container)
    }
}

text_enum! {
    /// `posting_history.method`: how a story got where it went.
    PostMethod {
        /// Someone pressed the story's button.
        Manual = "manual",
        /// Storyline published it through the Graph API.
        InstagramApi = "instagram_api",
        /// Dry run: recorded, nothing published.
        DryRun = "dry_run",
    }
}

text_enum! {
    /// `media_items.kind`.
    MediaKind {
        Image = "image",
        Video = "video",
    }
}

text_enum! {
    /// `runs.kind`: which background action a run was.
    RunKind {
        Scan = "scan",
        Publish = "publish",
        TokenRefresh = "token_refresh",
        Summary = "summary",
        Backup = "backup",
        /// Reading the insights of stories inside their 24 hours.
        Insights = "insights",
        /// The auto-tuner's weekly pass over a chat's mix.
        Tune = "tune",
    }
}

text_enum! {
    /// `story_insights.state`: where a story's insight reads stand.
    InsightState {
        /// Posted by hand: looking for it among the account's live stories.
        Matching = "matching",
        /// Its media id is known; reads are due.
        Reading = "reading",
        /// The final read is stored.
        Done = "done",
        /// No live story could be told apart as this one.
        NotMatched = "not_matched",
        /// Its 24 hours ended before a read succeeded.
        Expired = "expired",
        /// The account's token lacks instagram_business_manage_insights.
        NoPermission = "no_permission",
    }
}

text_enum! {
    /// `story_insights.result`: what the latest read said.
    InsightResult {
        Numbers = "numbers",
        /// Instagram's error #10: too few viewers to show numbers.
        NotEnoughViewers = "not_enough_viewers",
        /// An answer without data.
        Empty = "empty",
    }
}

text_enum! {
    /// `runs.outcome`: how a run ended (NULL while it runs).
    RunOutcome {
        Ok = "ok",
        Failed = "failed",
        /// Still running when the daemon stopped or died.
        Interrupted = "interrupted",
    }
}

text_enum! {
    /// `pending_inputs.field` of a `/settings` prompt: what the user's next
    /// message answers. (The set-up wizard's prompts are `wizard::Field`.)
    SettingsPrompt {
        PostsPerDay = "posts_per_day",
        Hours = "hours",
        /// The end hour, after a start alone; the start is in the stash.
        HoursEnd = "hours_end",
        Timezone = "timezone",
        Locks = "locks",
        Categories = "categories",
        /// The auto-tuner's metric, step and bounds (or off).
        Tune = "tune",
        /// The daily summary's hour, or "off".
        SummaryHour = "summary_hour",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn every_value_round_trips_through_its_stored_text() {
        let conn = Connection::open_in_memory().unwrap();
        for s in QueueStatus::ALL {
            let back: QueueStatus = conn.query_row("SELECT ?1", [s], |r| r.get(0)).unwrap();
            assert_eq!(back, *s);
        }
        for s in JobState::ALL {
            let text: String = conn.query_row("SELECT ?1", [s], |r| r.get(0)).unwrap();
            assert_eq!(JobState::parse(&text), Some(*s));
        }
        for s in PostMethod::ALL {
            let back: PostMethod = conn.query_row("SELECT ?1", [s], |r| r.get(0)).unwrap();
            assert_eq!(back, *s);
        }
        for s in MediaKind::ALL {
            let back: MediaKind = conn.query_row("SELECT ?1", [s], |r| r.get(0)).unwrap();
            assert_eq!(back, *s);
        }
        for s in SettingsPrompt::ALL {
            let back: SettingsPrompt = conn.query_row("SELECT ?1", [s], |r| r.get(0)).unwrap();
            assert_eq!(back, *s);
        }
    }

    #[test]
    fn an_unknown_stored_text_is_an_error_not_a_panic() {
        let conn = Connection::open_in_memory().unwrap();
        let read = conn.query_row("SELECT 'posting'", [], |r| r.get::<_, JobState>(0));
        let error = read.unwrap_err().to_string();
        assert!(error.contains("unknown JobState \"posting\""), "{error}");
        let read = conn.query_row("SELECT 42", [], |r| r.get::<_, QueueStatus>(0));
        assert!(read.is_err());
    }
}
