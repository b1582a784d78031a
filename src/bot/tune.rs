//! The auto-tuner of a chat's category mix (opt-in): its /settings prompt
//! (`prompt`, `answer`), its weekly pass on the scheduler tick (`run_if_due`:
//! last week's insights → `domain::tune` → a settings version with the tuner's
//! reason, announced with ↩️ Undo, or the week's "no change" and why), and Undo
//! (`undo`), which puts the mix back only while it is still the one the tuner set.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use log::info;
use rusqlite::{Connection, Transaction};

use super::{Context, PendingInput};
use crate::config::Config;
use crate::db;
use crate::domain::picker::{self, MIX_WEIGHT_MAX};
use crate::domain::settings::{self, Change, ChatSettings};
use crate::domain::status::RunKind;
use crate::domain::tune::{self, Decision, TuneChoice, TuneSettings};
use crate::domain::ui;
use crate::telegram::{self, Outgoing};

/// The weekly pass runs at the chat's summary hour, or at this local hour.
const TUNE_HOUR: u32 = 9;
const WEEK: Duration = Duration::days(7);
pub const UNDO_REASON: &str = "auto-tune undone";

/// The prompt of /settings → Auto-tune.
pub fn prompt(conn: &Connection, chat_id: i64, s: &ChatSettings) -> Result<String> {
    let bounds = db::tune::bounds(conn, chat_id)?;
    Ok(ui::tune::tune_prompt(
        s.auto_tune,
        &bounds,
        &super::known_categories(conn)?,
    ))
}

/// The answer to the prompt: off, or on with its metric, step and bounds. Bounds
/// and the mix live in their own tables; every change is one settings version.
pub fn answer(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    chat_id: i64,
    user_id: i64,
    pending: &PendingInput,
    text: &str,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let known = super::known_categories(tx)?;
    let choice = match tune::parse_choice(text, &known) {
        Ok(choice) => choice,
        Err(e) => {
            super::refuse_value(chat_id, &e, text, out);
            return Ok(());
        }
    };
    let (mut row, before) = super::current_settings(tx, ctx, chat_id)?;
    let defaults = &ctx.config.defaults;
    let mut changes: Vec<Change> = Vec::new();
    match &choice {
        TuneChoice::Off => changes.extend(settings::apply_auto_tune(&mut row, defaults, None)),
        TuneChoice::On {
            metric,
            step,
            bounds,
        } => {
            changes.extend(settings::apply_auto_tune(
                &mut row,
                defaults,
                Some((*metric, *step)),
            ));
            let old_bounds = db::tune::bounds(tx, chat_id)?;
            db::tune::set_bounds(tx, chat_id, bounds)?;
            let new_bounds = db::tune::bounds(tx, chat_id)?;
            if old_bounds != new_bounds {
                changes.push(Change {
                    setting: "auto_tune_bounds",
                    old: tune::format_bounds(&old_bounds).into(),
                    new: tune::format_bounds(&new_bounds).into(),
                });
            }
            if before.auto_tune.is_none() {
                // The first weekly pass comes a week from today, on a week of results.
                let today = ctx.now.with_timezone(&before.timezone).date_naive();
                db::tune::set_ran_on(tx, chat_id, today)?;
                // Steps and bounds are weights: a mix of "a=1 b=3" (or none) is
                // scaled, proportions kept, so a step moves it by a step and not
                // by half of everything.
                let weights = db::queue::category_weights(tx, chat_id)?;
                let scaled = scaled_mix(&tune::starting_mix(&weights, &known));
                if scaled != weights {
                    db::queue::set_category_weights(tx, chat_id, &scaled)?;
                    // In weights: in percentages a scaled mix reads as no change.
                    changes.push(Change {
                        setting: "category_mix",
                        old: picker::format_weights(&weights).into(),
                        new: picker::format_weights(&scaled).into(),
                    });
                }
            }
        }
    }
    let resolved = settings::resolve(&row, defaults);
    let confirmation = ui::tune::tune_set_text(
        resolved.auto_tune,
        &db::tune::bounds(tx, chat_id)?,
        next_look(tx, chat_id, &resolved, ctx.now)?,
    );
    super::finish_prompt(
        tx,
        ctx,
        chat_id,
        user_id,
        pending,
        &row,
        &changes,
        confirmation,
        out,
    )
}

/// The mix times the smallest whole factor that brings its largest weight to at
/// least `tune::START_WEIGHT` (never past `MIX_WEIGHT_MAX`): the same proportions.
fn scaled_mix(mix: &BTreeMap<String, u32>) -> BTreeMap<String, u32> {
    let largest = mix.values().copied().max().unwrap_or(0);
    if largest == 0 || largest >= tune::START_WEIGHT {
        return mix.clone();
    }
    let factor = tune::START_WEIGHT
        .div_ceil(largest)
        .min(MIX_WEIGHT_MAX / largest)
        .max(1);
    mix.iter()
        .map(|(category, weight)| (category.clone(), weight * factor))
        .collect()
}

/// The chat's local hour of the weekly pass.
fn pass_hour(s: &ChatSettings) -> u32 {
    s.daily_summary_hour.unwrap_or(TUNE_HOUR)
}

/// When the chat's next weekly pass comes, for the confirmation: its local date
/// and hour, or None when it is due now (or auto-tune is off).
fn next_look(
    conn: &Connection,
    chat_id: i64,
    s: &ChatSettings,
    now: DateTime<Utc>,
) -> Result<Option<(NaiveDate, u32)>> {
    if s.auto_tune.is_none() {
        return Ok(None);
    }
    let Some(ran_on) = db::tune::ran_on(conn, chat_id)? else {
        return Ok(None);
    };
    let local = now.with_timezone(&s.timezone);
    let hour = pass_hour(s);
    Ok(tune::next_pass(ran_on, local.date_naive(), local.hour(), hour).map(|date| (date, hour)))
}

/// The chat's weekly pass, when one is due at `now`: a week after the last (or
/// after auto-tune was switched on), at the summary hour (or 09:00) of the
/// chat's day. The date is recorded in the tick's transaction with what the pass
/// changed and said, so a restart neither repeats nor loses it.
pub fn run_if_due(
    conn: &Connection,
    config: &Config,
    chat_id: i64,
    s: &ChatSettings,
    now: DateTime<Utc>,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let Some(auto) = s.auto_tune else {
        return Ok(());
    };
    let local = now.with_timezone(&s.timezone);
    let today = local.date_naive();
    let Some(ran_on) = db::tune::ran_on(conn, chat_id)? else {
        db::tune::set_ran_on(conn, chat_id, today)?;
        return Ok(());
    };
    if tune::next_pass(ran_on, today, local.hour(), pass_hour(s)).is_some() {
        return Ok(());
    }
    db::tune::set_ran_on(conn, chat_id, today)?;
    let mut run = db::runs::begin(RunKind::Tune, Some(chat_id), now);
    let stories = db::insights::results(conn, chat_id, now - WEEK, now)?;
    let known = super::known_categories(conn)?;
    let before = tune::starting_mix(&db::queue::category_weights(conn, chat_id)?, &known);
    // With auto-tune on the mix names every category, so a folder added since
    // the last pass would never be posted: it joins at `START_WEIGHT` (a weight
    // of 0 keeps a category out, and the tuner never moves a 0).
    let mut weights = before.clone();
    let joined: Vec<String> = known
        .iter()
        .filter(|category| !before.contains_key(*category))
        .cloned()
        .collect();
    for category in &joined {
        weights.insert(category.clone(), tune::START_WEIGHT);
    }
    let mut tuning = TuneSettings::new(auto.metric);
    tuning.max_step = auto.step;
    tuning.bounds = db::tune::bounds(conn, chat_id)?;
    let decision = tune::tune(&weights, &tune::samples(&stories, auto.metric), &tuning);
    run.count("stories", stories.len());
    let joined_words =
        (!joined.is_empty()).then(|| format!("new categories join the mix: {}", joined.join(", ")));
    let change = match decision {
        Decision::Change {
            weights: new,
            reason,
        } => Some((
            new,
            match &joined_words {
                Some(words) => format!("{reason}; {words}"),
                None => reason,
            },
        )),
        Decision::NoChange(why) => {
            info!("chat {chat_id}: auto-tune, no change: {why}");
            out.push(telegram::send_message(
                chat_id,
                &ui::tune::tune_unchanged(&why),
                None,
            ));
            joined_words.map(|words| (weights.clone(), format!("auto-tune: {words}")))
        }
    };
    run.count("changed", usize::from(change.is_some()));
    if let Some((new, reason)) = change {
        let id = db::tune::record_change(conn, chat_id, &before, &new, &reason, now)?;
        super::settings_file::set_mix(conn, config, chat_id, new.clone(), None, &reason, now)?;
        info!("chat {chat_id}: {reason}");
        let (text, keyboard) = ui::tune::tune_changed(id, &before, &new, &reason);
        out.push(telegram::send_message(chat_id, &text, Some(&keyboard)));
    }
    run.finish(conn, Ok(()), now);
    Ok(())
}

/// ↩️ Undo under a change: the mix goes back to what it was, as a settings
/// version "auto-tune undone" by the presser, while the mix is still the one the
/// tuner set; otherwise nothing changes and the presser is told why.
pub fn undo(
    tx: &Transaction<'_>,
    ctx: &Context<'_>,
    query: &telegram::CallbackQuery,
    chat_id: i64,
    message_id: i64,
    change_id: i64,
    out: &mut Vec<Outgoing>,
) -> Result<()> {
    let alert = |out: &mut Vec<Outgoing>, text: &str| {
        out.push(telegram::answer_callback(&query.id, text, true))
    };
    let Some(change) = db::tune::change(tx, change_id)?.filter(|c| c.chat_id == chat_id) else {
        alert(out, "This button no longer works.");
        return Ok(());
    };
    if change.undone_at.is_some() {
        alert(out, ui::tune::tune_undo_already());
        return Ok(());
    }
    let current = db::queue::category_weights(tx, chat_id)?;
    if current != change.new_mix {
        alert(out, ui::tune::tune_undo_refused_moved());
        return Ok(());
    }
    let by = query.from.id;
    db::tune::mark_undone(tx, change_id, by, ctx.now)?;
    super::settings_file::set_mix(
        tx,
        ctx.config,
        chat_id,
        change.old_mix.clone(),
        Some(by),
        UNDO_REASON,
        ctx.now,
    )?;
    info!("chat {chat_id}: auto-tune change {change_id} undone by user {by}");
    out.push(telegram::answer_callback(&query.id, "Undone", false));
    let (text, _) =
        ui::tune::tune_changed(change.id, &change.old_mix, &change.new_mix, &change.reason);
    let name = db::user_display_name(tx, by)?;
    out.push(telegram::edit_message(
        chat_id,
        message_id,
        &ui::tune::tune_undone(&text, &name),
        None,
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_mix_is_scaled_with_its_proportions() {
        let mix = |pairs: &[(&str, u32)]| -> BTreeMap<String, u32> {
            pairs.iter().map(|(c, w)| (c.to_string(), *w)).collect()
        };
        assert_eq!(
            scaled_mix(&mix(&[("a", 1), ("b", 3)])),
            mix(&[("a", 34), ("b", 102)])
        );
        assert_eq!(
            scaled_mix(&mix(&[("a", 100), ("b", 300)])),
            mix(&[("a", 100), ("b", 300)])
        );
        assert_eq!(
            scaled_mix(&mix(&[("a", 0), ("b", 0)])),
            mix(&[("a", 0), ("b", 0)])
        );
        assert_eq!(scaled_mix(&BTreeMap::new()), BTreeMap::new());
        assert_eq!(
            scaled_mix(&mix(&[("a", 1), ("b", 99)])),
            mix(&[("a", 2), ("b", 198)])
        );
    }
}
