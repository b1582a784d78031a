//! The words of the auto-tuner: its prompt in /settings, the confirmation, the
//! weekly announcement (with ↩️ Undo) or the week's "no change", and the
//! answers to Undo. Pure; every dynamic string is escaped here.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::domain::callback::{self, Callback};
use crate::domain::markup::{escape_html, Button, Keyboard};
use crate::domain::tune::{format_auto_tune, format_bounds, AutoTune, Bounds, DEFAULT_STEP};

pub fn tune_prompt(
    current: Option<AutoTune>,
    bounds: &BTreeMap<String, Bounds>,
    categories: &[String],
) -> String {
    format!(
        "📈 <b>Auto-tune mix</b> (now {}). Once a week Storyline moves the category weights \
         toward the categories whose stories did clearly better, on reach or on completion \
         (the share of viewers who watched to the end), by at most a step a week, within \
         bounds you set. Each change is announced here with ↩️ Undo.\n\n\
         Reply <code>off</code>, or <code>reach</code> or <code>completion</code>, then if you \
         like the step (default {DEFAULT_STEP}) and bounds per category, like \
         <code>completion 30 quotes=50-400</code>. Bounds now: {}. Categories: {}. Or /cancel.",
        escape_html(&format_auto_tune(current)),
        escape_html(&format_bounds(bounds)),
        escape_html(&if categories.is_empty() {
            "none yet".to_string()
        } else {
            categories.join(", ")
        })
    )
}

/// The answer to the prompt. `next_look`: the local date and hour of the next
/// weekly pass, None when one is due now.
pub fn tune_set_text(
    tune: Option<AutoTune>,
    bounds: &BTreeMap<String, Bounds>,
    next_look: Option<(NaiveDate, u32)>,
) -> String {
    let Some(tune) = tune else {
        return "✅ Auto-tune is <b>off</b>: the category mix stays as you set it.".to_string();
    };
    let when = match next_look {
        Some((date, hour)) => format!("on {} at {hour:02}:00", date.format("%a %d %b")),
        None => "in a minute".to_string(),
    };
    format!(
        "✅ Auto-tune is <b>on</b>: {}; bounds: {}. The next look at the stories' results \
         comes {when}. A category folder added later joins the mix at that weekly look.",
        escape_html(&format_auto_tune(Some(tune))),
        escape_html(&format_bounds(bounds))
    )
}

/// The weekly change, each category's weight old → new, with ↩️ Undo.
pub fn tune_changed(
    change_id: i64,
    old: &BTreeMap<String, u32>,
    new: &BTreeMap<String, u32>,
    reason: &str,
) -> (String, Keyboard) {
    let mut text = "🎛 <b>Auto-tune moved the category mix</b>\n".to_string();
    for (category, weight) in new {
        let before = old.get(category).copied().unwrap_or(0);
        if before != *weight {
            text.push_str(&format!(
                "\n• {}: {before} → {weight}",
                escape_html(category)
            ));
        }
    }
    text.push_str(&format!("\n\nWhy: {}", escape_html(reason)));
    let keyboard = vec![vec![Button::callback(
        "↩️ Undo",
        callback::encode(Callback::UndoTune(change_id)),
    )]];
    (text, keyboard)
}

pub fn tune_unchanged(why: &str) -> String {
    format!("🎛 Auto-tune: no change this week — {}.", escape_html(why))
}

/// The announcement after Undo, in place of the button.
pub fn tune_undone(text_before: &str, by: &str) -> String {
    format!(
        "{text_before}\n\n↩️ Undone by {}: the mix is back.",
        escape_html(by)
    )
}

pub fn tune_undo_refused_moved() -> &'static str {
    "The mix changed since; nothing was undone. Set it in /settings → Categories."
}

pub fn tune_undo_already() -> &'static str {
    "Already undone."
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tune::Metric;
    use expect_test::expect;

    #[test]
    fn the_announcement_lists_what_moved_and_offers_undo() {
        let old = BTreeMap::from([
            ("memes".to_string(), 100),
            ("quotes".to_string(), 100),
            ("tips".to_string(), 80),
        ]);
        let new = BTreeMap::from([
            ("memes".to_string(), 50),
            ("quotes".to_string(), 150),
            ("tips".to_string(), 80),
        ]);
        let (text, keyboard) = tune_changed(
            7,
            &old,
            &new,
            "auto-tune: quotes completion 71 % vs memes 58 % <b>",
        );
        expect![[r#"
            🎛 <b>Auto-tune moved the category mix</b>

            • memes: 100 → 50
            • quotes: 100 → 150

            Why: auto-tune: quotes completion 71 % vs memes 58 % &lt;b&gt;"#]]
        .assert_eq(&text);
        assert_eq!(keyboard[0][0].callback_data.as_deref(), Some("1:tundo:7"));
        let completion = Some(AutoTune {
            metric: Metric::Completion,
            step: 30,
        });
        let monday = NaiveDate::from_ymd_opt(2030, 6, 10);
        expect![[r#"✅ Auto-tune is <b>on</b>: completion, up to 30 a week; bounds: none. The next look at the stories' results comes on Mon 10 Jun at 09:00. A category folder added later joins the mix at that weekly look."#]]
            .assert_eq(&tune_set_text(completion, &BTreeMap::new(), monday.map(|d| (d, 9))));
        let now = tune_set_text(completion, &BTreeMap::new(), None);
        assert!(now.contains("comes in a minute."), "{now}");
        assert!(tune_prompt(None, &BTreeMap::new(), &[]).contains("(now off)"));
        assert_eq!(
            tune_unchanged("too little data: quotes has 2 stories, needs 3"),
            "🎛 Auto-tune: no change this week — too little data: quotes has 2 stories, needs 3."
        );
    }
}
