//! The auto-tuner of the category mix (opt-in, once a week), pure: it moves the
//! category weights toward the categories whose stories did clearly better on
//! the chat's metric (reach or completion), within each category's floor and
//! ceiling and by at most a step per run, or says in words why it changes
//! nothing. The caller records a change as a settings version with its reason
//! and undoes it by restoring the weights it had.
//!
//! The rule, deterministic so that a change can be explained and replayed:
//! each category in the mix with at least `min_samples` results gets an
//! interval, its mean ± t·s/√n (s never below the spread of all categories
//! pooled, nor below a floor for the metric, so a few stories that happen to
//! agree do not look certain). The categories whose interval lies wholly below
//! the leader's (the best mean) lose a step; those clearly above one of them
//! gain a step; the rest keep their weight. When no interval is clear of the
//! leader's, the difference is noise and nothing moves.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};

use crate::domain::insights::{format_average, format_percent, StoryMetrics, StoryResult};
use crate::domain::markup::plural;
use crate::domain::picker::MIX_WEIGHT_MAX;

/// What the tuner compares the categories on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Accounts that saw a story.
    Reach,
    /// The share of views that stayed to the end (`StoryMetrics::completion`).
    Completion,
}

impl Metric {
    pub const ALL: [Metric; 2] = [Metric::Reach, Metric::Completion];

    /// The stored and shown name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Reach => "reach",
            Metric::Completion => "completion",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|metric| metric.name() == name)
    }

    /// The metric's value for one story, if Instagram gave what it needs.
    pub fn of(self, metrics: &StoryMetrics) -> Option<f64> {
        match self {
            Metric::Reach => metrics.reach.map(|reach| reach as f64),
            Metric::Completion => metrics.completion(),
        }
    }

    /// A value as the user reads it: "1,240" or "71 %".
    pub fn format(self, value: f64) -> String {
        match self {
            Metric::Reach => format_average(value),
            Metric::Completion => format_percent(value),
        }
    }

    /// A sample within the metric's range, or `None` for one that is not a
    /// number. The range keeps every sum below overflow.
    fn sane(self, value: f64) -> Option<f64> {
        let most = match self {
            Metric::Reach => 1e12,
            Metric::Completion => 1.0,
        };
        value.is_finite().then(|| value.clamp(0.0, most))
    }

    /// The least spread a category's results are taken to have: completion
    /// varies by several points from story to story, reach by a tenth of
    /// itself at least.
    fn least_spread(self, mean_of_all: f64) -> f64 {
        match self {
            Metric::Reach => (mean_of_all * 0.1).max(1.0),
            Metric::Completion => 0.05,
        }
    }
}

/// The weights the tuner may move a category between, in the mix's weight
/// units (0..=`MIX_WEIGHT_MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub floor: u32,
    pub ceiling: u32,
}

impl Bounds {
    /// For a category the user set no bounds for.
    pub const DEFAULT: Bounds = Bounds {
        floor: 10,
        ceiling: MIX_WEIGHT_MAX,
    };

    /// The bounds as applied: in order, the ceiling at most `MIX_WEIGHT_MAX`,
    /// and the floor at least 1, because a category the user put in the mix
    /// stays in it (a weight of 0 takes it out, and the tuner never moves a
    /// weight of 0).
    fn applied(self) -> (u32, u32) {
        let low = self.floor.min(self.ceiling).max(1);
        let high = self.floor.max(self.ceiling).min(MIX_WEIGHT_MAX).max(low);
        (low, high)
    }
}

/// A weekly step when the user set none, and the results a category needs.
pub const DEFAULT_STEP: u32 = 50;
pub const MIN_SAMPLES: usize = 3;

/// The weight each category starts from when auto-tune is switched on for a
/// mix that treats every category alike (`starting_mix`).
pub const START_WEIGHT: u32 = 100;

/// How the tuner runs for a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TuneSettings {
    pub metric: Metric,
    /// The most a category's weight moves in one run, up or down.
    pub max_step: u32,
    /// The results a category needs to be compared (at least 2 count).
    pub min_samples: usize,
    /// Per category; `default_bounds` for the others.
    pub bounds: BTreeMap<String, Bounds>,
    pub default_bounds: Bounds,
}

impl TuneSettings {
    /// The defaults for `metric`: `DEFAULT_STEP`, `MIN_SAMPLES`,
    /// `Bounds::DEFAULT` for every category.
    pub fn new(metric: Metric) -> TuneSettings {
        TuneSettings {
            metric,
            max_step: DEFAULT_STEP,
            min_samples: MIN_SAMPLES,
            bounds: BTreeMap::new(),
            default_bounds: Bounds::DEFAULT,
        }
    }

    fn bounds_of(&self, category: &str) -> (u32, u32) {
        self.bounds
            .get(category)
            .copied()
            .unwrap_or(self.default_bounds)
            .applied()
    }
}

/// What a run decides.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The new mix, every category of the old one in it, and why:
    /// "auto-tune: quotes completion 71 % vs memes 58 %".
    Change {
        weights: BTreeMap<String, u32>,
        reason: String,
    },
    /// Why nothing moves, in words for the chat: "too little data: quotes has
    /// 2 stories, needs 3", "no clear difference in completion: …".
    NoChange(String),
}

/// A chat's auto-tune when it is on: the metric and the most a weight moves a week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoTune {
    pub metric: Metric,
    pub step: u32,
}

/// What a chat asked for in the auto-tune prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TuneChoice {
    Off,
    On {
        metric: Metric,
        /// None: keep the chat's step (or `DEFAULT_STEP`).
        step: Option<u32>,
        /// Per category; the categories not named keep theirs.
        bounds: BTreeMap<String, Bounds>,
    },
}

/// The answer to the auto-tune prompt: `off`, or `reach` / `completion`, then
/// optionally the weekly step (1–1000) and bounds as `NAME=FLOOR-CEILING`
/// ("completion 30 quotes=50-400 memes=10-200"). Category names are checked
/// against `known` (any case; stored as the library spells them). The error is
/// a sentence for the user.
pub fn parse_choice(text: &str, known: &[String]) -> Result<TuneChoice, String> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let usage = "Send off, or reach or completion, then if you like the most a weight may move \
                 in a week (1 to 1000) and bounds per category, like: completion 30 quotes=50-400";
    let Some((first, rest)) = words.split_first() else {
        return Err(usage.to_string());
    };
    if first.eq_ignore_ascii_case("off") {
        return if rest.is_empty() {
            Ok(TuneChoice::Off)
        } else {
            Err(format!("“off” takes nothing after it. {usage}"))
        };
    }
    let metric = Metric::ALL
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(first))
        .ok_or_else(|| format!("“{}” is not a metric I know. {usage}", shorten(first)))?;
    let mut step = None;
    let mut bounds = BTreeMap::new();
    for word in rest {
        if let Some((name, range)) = word.split_once('=') {
            let category = known
                .iter()
                .find(|k| k.eq_ignore_ascii_case(name))
                .ok_or_else(|| format!("There is no category “{}”.", shorten(name)))?;
            let (floor, ceiling) = range
                .split_once('-')
                .and_then(|(a, b)| Some((weight(a)?, weight(b)?)))
                .filter(|(floor, ceiling)| floor <= ceiling)
                .ok_or_else(|| {
                    format!(
                        "Bounds are two weights from 0 to {MIX_WEIGHT_MAX}, the lower first, \
                         like {}=50-400.",
                        shorten(category)
                    )
                })?;
            if bounds
                .insert(category.clone(), Bounds { floor, ceiling })
                .is_some()
            {
                return Err(format!("{} is named twice.", shorten(category)));
            }
        } else if step.is_none() && bounds.is_empty() {
            step = Some(weight(word).filter(|step| *step >= 1).ok_or_else(|| {
                format!("The step is a number from 1 to {MIX_WEIGHT_MAX}. {usage}")
            })?);
        } else {
            return Err(format!("“{}” is not understood. {usage}", shorten(word)));
        }
    }
    Ok(TuneChoice::On {
        metric,
        step,
        bounds,
    })
}

fn weight(text: &str) -> Option<u32> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && text.len() <= 4)
        .then(|| text.parse::<u32>().ok())
        .flatten()
        .filter(|w| *w <= MIX_WEIGHT_MAX)
}

fn shorten(text: &str) -> String {
    text.chars().take(32).collect()
}

/// "quotes=50-400 memes=10-200", or "none" — as the prompt takes them back.
pub fn format_bounds(bounds: &BTreeMap<String, Bounds>) -> String {
    if bounds.is_empty() {
        return "none".to_string();
    }
    bounds
        .iter()
        .map(|(category, b)| format!("{category}={}-{}", b.floor, b.ceiling))
        .collect::<Vec<_>>()
        .join(" ")
}

/// "off", or "completion, up to 50 a week".
pub fn format_auto_tune(tune: Option<AutoTune>) -> String {
    match tune {
        None => "off".to_string(),
        Some(t) => format!("{}, up to {} a week", t.metric.name(), t.step),
    }
}

/// The local date of a chat's next weekly pass, None when one is due now: a
/// week after the last (or after auto-tune was switched on), from `hour` on;
/// a pass missed while Storyline was off comes at the next `hour`, or now.
/// `today` and `hour_now` are the chat's local date and hour.
pub fn next_pass(
    ran_on: NaiveDate,
    today: NaiveDate,
    hour_now: u32,
    hour: u32,
) -> Option<NaiveDate> {
    let due = ran_on
        .checked_add_days(Days::new(7))
        .unwrap_or(NaiveDate::MAX);
    if today < due {
        Some(due)
    } else if hour_now < hour {
        Some(today)
    } else {
        None
    }
}

/// The metric's results per category, in the order of `stories`; stories
/// without the metric's numbers are left out.
pub fn samples(stories: &[StoryResult], metric: Metric) -> BTreeMap<String, Vec<f64>> {
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for story in stories {
        if let Some(value) = metric.of(&story.metrics) {
            samples
                .entry(story.category.clone())
                .or_default()
                .push(value);
        }
    }
    samples
}

/// The mix auto-tune starts from: the chat's own, or, when it treats every
/// category alike (empty), each of `categories` at `START_WEIGHT` (which
/// draws the same way).
pub fn starting_mix(
    weights: &BTreeMap<String, u32>,
    categories: &[String],
) -> BTreeMap<String, u32> {
    if !weights.is_empty() {
        return weights.clone();
    }
    categories
        .iter()
        .map(|category| (category.clone(), START_WEIGHT))
        .collect()
}

/// One category's results as the rule sees them.
#[derive(Debug, Clone)]
struct Estimate<'a> {
    category: &'a str,
    mean: f64,
    low: f64,
    high: f64,
}

/// The week's decision for `weights`, from each category's results of the
/// metric in `samples` (see the module's rule). Only categories with a weight
/// above 0 take part; the others, and those without enough results, keep
/// their weight.
pub fn tune(
    weights: &BTreeMap<String, u32>,
    samples: &BTreeMap<String, Vec<f64>>,
    settings: &TuneSettings,
) -> Decision {
    if weights.values().all(|weight| *weight == 0) {
        return Decision::NoChange(
            "no category mix to tune: give the categories weights first".to_string(),
        );
    }
    if settings.max_step == 0 {
        return Decision::NoChange("the step per week is 0".to_string());
    }
    let metric = settings.metric;
    let min_samples = settings.min_samples.max(2);
    let mut eligible: Vec<(&str, Vec<f64>)> = Vec::new();
    let mut short: Vec<String> = Vec::new();
    for (category, _) in weights.iter().filter(|(_, weight)| **weight > 0) {
        let values: Vec<f64> = samples
            .get(category)
            .into_iter()
            .flatten()
            .filter_map(|value| metric.sane(*value))
            .collect();
        match values.len() {
            0 => {}
            n if n < min_samples => {
                short.push(format!("{category} has {}", plural(n, "story", "stories")))
            }
            _ => eligible.push((category.as_str(), values)),
        }
    }
    if eligible.len() < 2 {
        return Decision::NoChange(too_little_data(&eligible, &short, min_samples));
    }

    let mut estimates = estimate(&eligible, metric);
    // Best first; equal means in name order.
    estimates.sort_by(|a, b| b.mean.total_cmp(&a.mean));
    let leader = &estimates[0];
    let (losers, others): (Vec<&Estimate>, Vec<&Estimate>) =
        estimates.iter().partition(|e| e.high < leader.low);
    let Some(highest_loser_high) = losers.iter().map(|e| e.high).max_by(f64::total_cmp) else {
        let means: Vec<String> = estimates
            .iter()
            .map(|e| format!("{} {}", e.category, metric.format(e.mean)))
            .collect();
        return Decision::NoChange(format!(
            "no clear difference in {}: {}",
            metric.name(),
            means.join(", ")
        ));
    };
    // Clearly better than every loser, so no category is raised over one
    // that did better.
    let winners: Vec<&Estimate> = others
        .into_iter()
        .filter(|e| e.low > highest_loser_high)
        .collect();

    let mut new_weights = weights.clone();
    let mut stuck = Vec::new();
    for (estimates, up) in [(&winners, true), (&losers, false)] {
        for estimate in estimates {
            let Some(weight) = new_weights.get_mut(estimate.category) else {
                continue;
            };
            let (low, high) = settings.bounds_of(estimate.category);
            let moved = if up && *weight < high {
                weight.saturating_add(settings.max_step).min(high)
            } else if !up && *weight > low {
                weight.saturating_sub(settings.max_step).max(low)
            } else {
                *weight
            };
            if moved == *weight {
                let (bound, at) = if up {
                    ("ceiling", high)
                } else {
                    ("floor", low)
                };
                let place = match (*weight == at, up) {
                    (true, _) => "at",
                    (false, true) => "above",
                    (false, false) => "below",
                };
                stuck.push(format!("{} {place} its {bound} ({at})", estimate.category));
            }
            *weight = moved;
        }
    }
    let compared = |side: &[&Estimate], with_metric: bool| -> String {
        side.iter()
            .enumerate()
            .map(|(i, e)| {
                let metric_name = if with_metric && i == 0 {
                    format!(" {}", metric.name())
                } else {
                    String::new()
                };
                format!("{}{metric_name} {}", e.category, metric.format(e.mean))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let why = format!(
        "{} vs {}",
        compared(&winners, true),
        compared(&losers, false)
    );
    if new_weights == *weights {
        return Decision::NoChange(format!(
            "{why}, but the bounds are reached: {}",
            stuck.join(", ")
        ));
    }
    Decision::Change {
        weights: new_weights,
        reason: format!("auto-tune: {why}"),
    }
}

/// Each category's mean and interval. The spread is the larger of the
/// category's own, the pooled spread of all and the metric's least, and the
/// interval's width Student's t for the pooled degrees of freedom.
fn estimate<'a>(eligible: &[(&'a str, Vec<f64>)], metric: Metric) -> Vec<Estimate<'a>> {
    let mean_of = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    let squares_of = |values: &[f64], mean: f64| -> f64 {
        values.iter().map(|value| (value - mean).powi(2)).sum()
    };
    let all: Vec<f64> = eligible
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    let freedom: usize = eligible.iter().map(|(_, v)| v.len() - 1).sum();
    let pooled_squares: f64 = eligible
        .iter()
        .map(|(_, values)| squares_of(values, mean_of(values)))
        .sum();
    let pooled_spread = (pooled_squares / freedom as f64).sqrt();
    let least_spread = metric.least_spread(mean_of(&all));
    let t = student_t_975(freedom);
    eligible
        .iter()
        .map(|(category, values)| {
            let n = values.len() as f64;
            let mean = mean_of(values);
            let own_spread = (squares_of(values, mean) / (n - 1.0)).sqrt();
            let spread = own_spread.max(pooled_spread).max(least_spread);
            let half = t * spread / n.sqrt();
            Estimate {
                category,
                mean,
                low: mean - half,
                high: mean + half,
            }
        })
        .collect()
}

/// The 97.5 % quantile of Student's t: a 95 % interval's half-width in
/// standard errors. Between the tabled freedoms the smaller one's (wider)
/// value is taken.
fn student_t_975(freedom: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match freedom {
        0 => f64::INFINITY,
        1..=30 => TABLE[freedom - 1],
        31..=60 => 2.042,
        61..=120 => 2.000,
        _ => 1.980,
    }
}

fn too_little_data(eligible: &[(&str, Vec<f64>)], short: &[String], min_samples: usize) -> String {
    if !short.is_empty() {
        let needs = if short.len() == 1 {
            format!("needs {min_samples}")
        } else {
            format!("each needs {min_samples}")
        };
        return format!("too little data: {}; {needs}", short.join(", "));
    }
    match eligible.first() {
        Some((category, _)) => format!(
            "too little data: only {category} has results, and auto-tune compares two categories at least"
        ),
        None => "too little data: no story has results yet".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::picker::Rng;
    use expect_test::{expect, Expect};

    fn mix(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(c, w)| (c.to_string(), *w)).collect()
    }

    fn results(pairs: &[(&str, &[f64])]) -> BTreeMap<String, Vec<f64>> {
        pairs
            .iter()
            .map(|(c, v)| (c.to_string(), v.to_vec()))
            .collect()
    }

    /// The decision as one line: the new weights and the reason, or the reason.
    fn show(decision: &Decision) -> String {
        match decision {
            Decision::Change { weights, reason } => {
                let weights: Vec<String> =
                    weights.iter().map(|(c, w)| format!("{c}={w}")).collect();
                format!("{} — {reason}", weights.join(" "))
            }
            Decision::NoChange(reason) => format!("no change — {reason}"),
        }
    }

    fn check(
        weights: &[(&str, u32)],
        samples: &[(&str, &[f64])],
        settings: &TuneSettings,
        expected: Expect,
    ) {
        expected.assert_eq(&show(&tune(&mix(weights), &results(samples), settings)));
    }

    const GOOD: &[f64] = &[0.72, 0.70, 0.74, 0.69, 0.71];
    const FAIR: &[f64] = &[0.60, 0.58, 0.62, 0.57, 0.61];
    const POOR: &[f64] = &[0.50, 0.48, 0.52, 0.47, 0.51];

    #[test]
    fn the_better_category_gains_and_the_worse_loses_a_step() {
        let settings = TuneSettings::new(Metric::Completion);
        check(
            &[("memes", 100), ("quotes", 100)],
            &[("quotes", GOOD), ("memes", POOR)],
            &settings,
            expect!["memes=50 quotes=150 — auto-tune: quotes completion 71 % vs memes 50 %"],
        );
        // The middle one overlaps neither clearly: it keeps its weight.
        let middle: &[f64] = &[0.70, 0.50, 0.66, 0.48, 0.64];
        check(
            &[("memes", 100), ("products", 100), ("quotes", 100)],
            &[("quotes", GOOD), ("products", middle), ("memes", POOR)],
            &settings,
            expect!["memes=50 products=100 quotes=150 — auto-tune: quotes completion 71 % vs memes 50 %"],
        );
        // Two clearly ahead of two.
        check(
            &[("a", 300), ("b", 300), ("c", 300), ("d", 300)],
            &[("a", GOOD), ("b", GOOD), ("c", POOR), ("d", FAIR)],
            &settings,
            expect![
                "a=350 b=350 c=250 d=250 — auto-tune: a completion 71 %, b 71 % vs d 60 %, c 50 %"
            ],
        );
        // By reach, in counts.
        let reach = TuneSettings::new(Metric::Reach);
        check(
            &[("memes", 500), ("quotes", 500)],
            &[
                ("quotes", &[1200.0, 1300.0, 1250.0, 1210.0]),
                ("memes", &[850.0, 870.0, 860.0, 862.0]),
            ],
            &reach,
            expect!["memes=450 quotes=550 — auto-tune: quotes reach 1,240 vs memes 861"],
        );
    }

    #[test]
    fn steps_and_bounds_limit_a_move() {
        let mut settings = TuneSettings::new(Metric::Completion);
        settings.max_step = 30;
        settings.bounds.insert(
            "quotes".into(),
            Bounds {
                floor: 50,
                ceiling: 120,
            },
        );
        settings.bounds.insert(
            "memes".into(),
            Bounds {
                floor: 80,
                ceiling: 500,
            },
        );
        check(
            &[("memes", 100), ("quotes", 100)],
            &[("quotes", GOOD), ("memes", POOR)],
            &settings,
            expect!["memes=80 quotes=120 — auto-tune: quotes completion 71 % vs memes 50 %"],
        );
        check(
            &[("memes", 80), ("quotes", 120)],
            &[("quotes", GOOD), ("memes", POOR)],
            &settings,
            expect!["no change — quotes completion 71 % vs memes 50 %, but the bounds are reached: quotes at its ceiling (120), memes at its floor (80)"],
        );
        // Out of bounds already (set by hand): never moved further out, only
        // toward them.
        check(
            &[("memes", 60), ("quotes", 900)],
            &[("quotes", GOOD), ("memes", POOR)],
            &settings,
            expect!["no change — quotes completion 71 % vs memes 50 %, but the bounds are reached: quotes above its ceiling (120), memes below its floor (80)"],
        );
        check(
            &[("memes", 60), ("quotes", 900)],
            &[("quotes", POOR), ("memes", GOOD)],
            &settings,
            expect!["memes=90 quotes=870 — auto-tune: memes completion 71 % vs quotes 50 %"],
        );
        // A floor of 0 still keeps a category in the mix; crossed bounds are
        // put in order.
        settings.bounds.insert(
            "memes".into(),
            Bounds {
                floor: 0,
                ceiling: 0,
            },
        );
        settings.bounds.insert(
            "quotes".into(),
            Bounds {
                floor: 700,
                ceiling: 300,
            },
        );
        settings.max_step = 1000;
        check(
            &[("memes", 100), ("quotes", 100)],
            &[("quotes", GOOD), ("memes", POOR)],
            &settings,
            expect!["memes=1 quotes=700 — auto-tune: quotes completion 71 % vs memes 50 %"],
        );
    }

    #[test]
    fn too_little_data_changes_nothing_and_says_so() {
        let settings = TuneSettings::new(Metric::Completion);
        let two: &[f64] = &[0.9, 0.95];
        check(
            &[("memes", 100), ("quotes", 100)],
            &[("quotes", two), ("memes", POOR)],
            &settings,
            expect!["no change — too little data: quotes has 2 stories; needs 3"],
        );
        check(
            &[("memes", 100), ("quotes", 100), ("travel", 100)],
            &[("quotes", two), ("memes", &[0.2]), ("travel", POOR)],
            &settings,
            expect!["no change — too little data: memes has 1 story, quotes has 2 stories; each needs 3"],
        );
        check(
            &[("memes", 100), ("quotes", 100)],
            &[("quotes", GOOD)],
            &settings,
            expect!["no change — too little data: only quotes has results, and auto-tune compares two categories at least"],
        );
        check(
            &[("memes", 100), ("quotes", 100)],
            &[],
            &settings,
            expect!["no change — too little data: no story has results yet"],
        );
        // Results that are not numbers do not count.
        check(
            &[("memes", 100), ("quotes", 100)],
            &[("quotes", &[f64::NAN, f64::INFINITY, 0.5]), ("memes", POOR)],
            &settings,
            expect!["no change — too little data: quotes has 1 story; needs 3"],
        );
        // A third category without enough results keeps its weight while the
        // two with enough are compared.
        check(
            &[("memes", 100), ("quotes", 100), ("travel", 100)],
            &[("quotes", GOOD), ("memes", POOR), ("travel", &[0.99])],
            &settings,
            expect![
                "memes=50 quotes=150 travel=100 — auto-tune: quotes completion 71 % vs memes 50 %"
            ],
        );
    }

    #[test]
    fn what_is_out_of_the_mix_stays_out() {
        let settings = TuneSettings::new(Metric::Completion);
        // memes has weight 0 and products is not in the mix: neither is compared
        // nor moved, however good.
        check(
            &[("memes", 0), ("quotes", 100), ("travel", 100)],
            &[
                ("quotes", GOOD),
                ("travel", POOR),
                ("memes", &[1.0, 1.0, 1.0]),
                ("products", &[1.0, 1.0, 1.0]),
            ],
            &settings,
            expect![
                "memes=0 quotes=150 travel=50 — auto-tune: quotes completion 71 % vs travel 50 %"
            ],
        );
        check(
            &[],
            &[("quotes", GOOD), ("travel", POOR)],
            &settings,
            expect!["no change — no category mix to tune: give the categories weights first"],
        );
        let mut still = TuneSettings::new(Metric::Completion);
        still.max_step = 0;
        check(
            &[("quotes", 100), ("travel", 100)],
            &[("quotes", GOOD), ("travel", POOR)],
            &still,
            expect!["no change — the step per week is 0"],
        );
    }

    #[test]
    fn noise_changes_nothing() {
        let settings = TuneSettings::new(Metric::Completion);
        // Close means with ordinary spread: the intervals overlap.
        check(
            &[("memes", 100), ("products", 100), ("quotes", 100)],
            &[
                ("quotes", &[0.71, 0.55, 0.80, 0.62, 0.68]),
                ("memes", &[0.60, 0.72, 0.58, 0.66, 0.64]),
                ("products", &[0.50, 0.70, 0.66, 0.61]),
            ],
            &settings,
            expect!["no change — no clear difference in completion: quotes 67 %, memes 64 %, products 62 %"],
        );
        // Stories that agree closely still vary by the metric's least spread:
        // two points apart is not a finding.
        check(
            &[("memes", 100), ("quotes", 100)],
            &[
                ("quotes", &[0.62, 0.62, 0.62]),
                ("memes", &[0.60, 0.60, 0.60]),
            ],
            &settings,
            expect!["no change — no clear difference in completion: quotes 62 %, memes 60 %"],
        );
        // Two categories alike, week after week of random results: a change
        // is rare (the intervals are 95 % ones and must not even touch).
        let mut rng = Rng::new(13);
        let mut changes = 0;
        for _ in 0..200 {
            let samples = BTreeMap::from([
                ("memes".to_string(), draw(&mut rng, 0.6, 0.15, 10)),
                ("quotes".to_string(), draw(&mut rng, 0.6, 0.15, 10)),
            ]);
            if let Decision::Change { .. } = tune(
                &mix(&[("memes", 100), ("quotes", 100)]),
                &samples,
                &settings,
            ) {
                changes += 1;
            }
        }
        assert!(changes <= 4, "{changes} changes in 200 weeks of noise");
    }

    /// `count` results around `mean`, uniform within ± `spread`, within 0..=1.
    fn draw(rng: &mut Rng, mean: f64, spread: f64, count: usize) -> Vec<f64> {
        (0..count)
            .map(|_| {
                let unit = rng.below(1_000_001) as f64 / 1_000_000.0;
                (mean + spread * (2.0 * unit - 1.0)).clamp(0.0, 1.0)
            })
            .collect()
    }

    /// Weeks of posting and tuning: each week the chat posts `per_week`
    /// stories split by the mix, each category's stories score around its true
    /// completion, and the tuner runs on the week's results. Every week's
    /// weights, after its run.
    fn simulate(
        start: &[(&str, u32)],
        truth: &[(&str, f64)],
        settings: &TuneSettings,
        weeks: usize,
    ) -> Vec<(BTreeMap<String, u32>, Decision)> {
        const PER_WEEK: u32 = 21;
        let mut rng = Rng::new(2026);
        let mut weights = mix(start);
        let mut history = Vec::new();
        for _ in 0..weeks {
            let total: u32 = weights.values().sum();
            let mut samples = BTreeMap::new();
            for (category, completion) in truth {
                let weight = weights.get(*category).copied().unwrap_or(0);
                let stories = (PER_WEEK * weight + total / 2) / total;
                samples.insert(
                    category.to_string(),
                    draw(&mut rng, *completion, 0.15, stories as usize),
                );
            }
            let decision = tune(&weights, &samples, settings);
            let before = weights.clone();
            if let Decision::Change { weights: new, .. } = &decision {
                weights = new.clone();
            }
            for (category, weight) in &weights {
                let (low, high) = settings.bounds_of(category);
                let old = before[category];
                assert!(
                    weight.abs_diff(old) <= settings.max_step,
                    "{before:?} → {weights:?}"
                );
                assert!(
                    (low..=high).contains(weight) || weight == &old,
                    "{weights:?}"
                );
            }
            history.push((weights.clone(), decision));
        }
        history
    }

    #[test]
    fn weekly_runs_converge_on_the_better_category() {
        let settings = TuneSettings::new(Metric::Completion);
        let history = simulate(
            &[("memes", 100), ("products", 100), ("quotes", 100)],
            &[("quotes", 0.70), ("products", 0.62), ("memes", 0.50)],
            &settings,
            20,
        );
        let weeks: Vec<String> = history
            .iter()
            .map(|(weights, decision)| {
                let decision = match decision {
                    Decision::Change { reason, .. } => reason.clone(),
                    Decision::NoChange(reason) => format!("no change — {reason}"),
                };
                format!("{} · {decision}", format_mix_plain(weights))
            })
            .collect();
        // The first weeks, as the chat would read them.
        expect![[r#"
            memes=50 products=50 quotes=150 · auto-tune: quotes completion 76 % vs products 61 %, memes 49 %
            memes=10 products=50 quotes=200 · auto-tune: quotes completion 72 % vs memes 55 %
            memes=10 products=50 quotes=200 · no change — no clear difference in completion: quotes 70 %, products 63 %
            memes=10 products=50 quotes=200 · no change — no clear difference in completion: quotes 70 %, products 60 %
            memes=10 products=50 quotes=200 · no change — no clear difference in completion: quotes 72 %, products 60 %
            memes=10 products=50 quotes=200 · no change — no clear difference in completion: quotes 71 %, products 57 %
            memes=10 products=10 quotes=250 · auto-tune: quotes completion 69 % vs products 53 %
            memes=10 products=10 quotes=250 · no change — too little data: memes has 1 story, products has 1 story; each needs 3"#]]
        .assert_eq(&weeks[..8].join("\n"));
        let (last, _) = history.last().unwrap();
        let total: u32 = last.values().sum();
        assert!(last["quotes"] * 10 >= total * 8, "{weeks:#?}");
        // Never once toward the worse categories.
        for pair in history.windows(2) {
            let (before, after) = (&pair[0].0, &pair[1].0);
            assert!(after["quotes"] >= before["quotes"], "{weeks:#?}");
            assert!(after["memes"] <= before["memes"], "{weeks:#?}");
        }
    }

    fn format_mix_plain(weights: &BTreeMap<String, u32>) -> String {
        weights
            .iter()
            .map(|(c, w)| format!("{c}={w}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn at_its_bounds_the_mix_stays_put_week_after_week() {
        let mut settings = TuneSettings::new(Metric::Completion);
        settings.bounds.insert(
            "quotes".into(),
            Bounds {
                floor: 50,
                ceiling: 300,
            },
        );
        settings.bounds.insert(
            "memes".into(),
            Bounds {
                floor: 60,
                ceiling: 300,
            },
        );
        let history = simulate(
            &[("memes", 100), ("quotes", 100)],
            &[("quotes", 0.75), ("memes", 0.45)],
            &settings,
            12,
        );
        let settled = history
            .iter()
            .position(|(weights, _)| *weights == mix(&[("memes", 60), ("quotes", 300)]))
            .expect("reaches its bounds");
        assert!(settled <= 6, "{history:#?}");
        for (weights, decision) in &history[settled + 1..] {
            assert_eq!(*weights, mix(&[("memes", 60), ("quotes", 300)]));
            assert!(matches!(decision, Decision::NoChange(_)), "{decision:?}");
        }
        // Run again on the same week: the same answer.
        let samples = results(&[("quotes", GOOD), ("memes", POOR)]);
        let at_bounds = mix(&[("memes", 60), ("quotes", 300)]);
        let once = tune(&at_bounds, &samples, &settings);
        assert_eq!(once, tune(&at_bounds, &samples, &settings));
        assert!(matches!(once, Decision::NoChange(_)));
    }

    #[test]
    fn samples_per_category_from_stories() {
        let at = "2026-06-01T10:00:00Z".parse().unwrap();
        let story = |category: &str, reach: Option<u64>, exits: Option<u64>| StoryResult {
            id: 1,
            label: String::new(),
            category: category.to_string(),
            posted_at: at,
            metrics: StoryMetrics {
                views: Some(100),
                reach,
                tap_exit: exits,
                ..StoryMetrics::default()
            },
        };
        let stories = [
            story("quotes", Some(80), Some(20)),
            story("quotes", None, None),
            story("memes", Some(30), None),
        ];
        assert_eq!(
            samples(&stories, Metric::Reach),
            results(&[("memes", &[30.0]), ("quotes", &[80.0])])
        );
        assert_eq!(
            samples(&stories, Metric::Completion),
            results(&[("quotes", &[0.8])])
        );
        for metric in Metric::ALL {
            assert_eq!(Metric::from_name(metric.name()), Some(metric));
        }
        assert_eq!(Metric::from_name("views"), None);
    }

    #[test]
    fn the_weekly_pass_comes_a_week_later_from_its_hour() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2030, 6, d).unwrap();
        // (last pass, today, hour now) → next pass, for a pass at 09:00.
        for (ran_on, today, hour_now, expected) in [
            (3, 3, 10, Some(day(10))),
            (3, 9, 23, Some(day(10))),
            (3, 10, 8, Some(day(10))),
            (3, 10, 9, None),
            (3, 10, 23, None),
            // Missed while off: at the next 09:00, or now.
            (3, 12, 7, Some(day(12))),
            (3, 12, 15, None),
        ] {
            assert_eq!(
                next_pass(day(ran_on), day(today), hour_now, 9),
                expected,
                "{ran_on} {today} {hour_now}"
            );
        }
        assert_eq!(
            next_pass(NaiveDate::MAX, day(1), 23, 0),
            Some(NaiveDate::MAX)
        );
    }

    #[test]
    fn an_alike_mix_starts_from_equal_weights() {
        let categories = ["memes".to_string(), "quotes".to_string()];
        assert_eq!(
            starting_mix(&BTreeMap::new(), &categories),
            mix(&[("memes", 100), ("quotes", 100)])
        );
        assert_eq!(
            starting_mix(&mix(&[("quotes", 7)]), &categories),
            mix(&[("quotes", 7)])
        );
    }

    // ---- the property: bounds and steps hold whatever the input ----

    use proptest::prelude::*;

    const NAMES: [&str; 4] = ["memes", "products", "quotes", "travel"];

    fn any_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => 0.0..1.0f64,
            2 => 0.0..5000.0f64,
            1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, -1.0, 1e300, 0.0, 1.0]),
        ]
    }

    fn any_bounds() -> impl Strategy<Value = Bounds> {
        (0..=1100u32, 0..=1100u32).prop_map(|(floor, ceiling)| Bounds { floor, ceiling })
    }

    prop_compose! {
        fn any_case()(
            weights in prop::collection::vec(prop::option::of(0..=1000u32), 4),
            samples in prop::collection::vec(prop::collection::vec(any_value(), 0..12), 4),
            bounds in prop::collection::vec(prop::option::of(any_bounds()), 4),
            default_bounds in any_bounds(),
            max_step in 0..=400u32,
            min_samples in 0..6usize,
            reach in any::<bool>(),
        ) -> (BTreeMap<String, u32>, BTreeMap<String, Vec<f64>>, TuneSettings) {
            let weights = NAMES.iter().zip(weights)
                .filter_map(|(name, weight)| Some((name.to_string(), weight?)))
                .collect();
            let samples = NAMES.iter().zip(samples)
                .map(|(name, values)| (name.to_string(), values))
                .collect();
            let bounds = NAMES.iter().zip(bounds)
                .filter_map(|(name, bounds)| Some((name.to_string(), bounds?)))
                .collect();
            let metric = if reach { Metric::Reach } else { Metric::Completion };
            let settings = TuneSettings { metric, max_step, min_samples, bounds, default_bounds };
            (weights, samples, settings)
        }
    }

    proptest! {
        #![proptest_config(crate::fuzz_input::config(512))]

        #[test]
        fn bounds_and_steps_always_hold((weights, samples, settings) in any_case()) {
            let decision = tune(&weights, &samples, &settings);
            prop_assert_eq!(&decision, &tune(&weights, &samples, &settings));
            let new = match decision {
                Decision::NoChange(reason) => {
                    prop_assert!(!reason.is_empty());
                    return Ok(());
                }
                Decision::Change { weights: new, reason } => {
                    prop_assert!(reason.starts_with("auto-tune: "));
                    new
                }
            };
            prop_assert!(new != weights);
            prop_assert_eq!(new.keys().collect::<Vec<_>>(), weights.keys().collect::<Vec<_>>());
            let min_samples = settings.min_samples.max(2);
            for (category, old) in &weights {
                let weight = new[category];
                let (low, high) = settings.bounds_of(category);
                prop_assert!(weight.abs_diff(*old) <= settings.max_step);
                prop_assert!(weight <= MIX_WEIGHT_MAX.max(*old));
                if (low..=high).contains(old) {
                    prop_assert!((low..=high).contains(&weight), "{category}: {old} → {weight} outside {low}..={high}");
                } else if *old > high {
                    prop_assert!(weight <= *old);
                } else {
                    prop_assert!(weight >= *old);
                }
                let counted = samples.get(category).map_or(0, |values| {
                    values.iter().filter(|v| v.is_finite()).count()
                });
                if *old == 0 || counted < min_samples {
                    prop_assert_eq!(weight, *old);
                }
            }
            // Every category raised did better than every category lowered.
            let mean = |category: &String| {
                let values: Vec<f64> = samples[category]
                    .iter()
                    .filter_map(|v| settings.metric.sane(*v))
                    .collect();
                values.iter().sum::<f64>() / values.len() as f64
            };
            for (up, up_old) in &weights {
                for (down, down_old) in &weights {
                    if new[up] > *up_old && new[down] < *down_old {
                        prop_assert!(mean(up) > mean(down));
                    }
                }
            }
        }
    }

    #[test]
    fn the_prompt_takes_off_a_metric_a_step_and_bounds() {
        let known = vec!["quotes".to_string(), "Memes".to_string()];
        assert_eq!(parse_choice(" OFF ", &known), Ok(TuneChoice::Off));
        assert_eq!(
            parse_choice("reach", &known),
            Ok(TuneChoice::On {
                metric: Metric::Reach,
                step: None,
                bounds: BTreeMap::new()
            })
        );
        let Ok(TuneChoice::On {
            metric,
            step,
            bounds,
        }) = parse_choice("Completion 30, quotes=50-400 memes=0-200", &known)
        else {
            panic!()
        };
        assert_eq!((metric, step), (Metric::Completion, Some(30)));
        assert_eq!(format_bounds(&bounds), "Memes=0-200 quotes=50-400");
        for bad in [
            "",
            "off now",
            "views",
            "reach 0",
            "reach 1001",
            "reach x",
            "reach quotes=400-50",
            "reach quotes=1-2000",
            "reach nope=1-2",
            "reach quotes=1-2 quotes=3-4",
            "reach 30 40",
            "reach quotes=1-2 30",
            "reach quotes=-1-5",
            "reach quotes=",
        ] {
            let refused = parse_choice(bad, &known);
            assert!(refused.is_err(), "{bad:?}: {refused:?}");
        }
        assert_eq!(format_auto_tune(None), "off");
        assert_eq!(
            format_auto_tune(Some(AutoTune {
                metric: Metric::Reach,
                step: 50
            })),
            "reach, up to 50 a week"
        );
    }

    mod fuzz_prompt {
        use super::super::*;
        use crate::fuzz_input::{self, text_from};
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(fuzz_input::config(512))]

            #[test]
            fn fuzz_tune_prompt_never_panics_and_keeps_its_ranges(
                text in text_from("offreachcompletion0123456789=-, quotesmemes", 60)
            ) {
                let known = vec!["quotes".to_string(), "memes".to_string()];
                if let Ok(TuneChoice::On { step, bounds, .. }) = parse_choice(&text, &known) {
                    prop_assert!(step.is_none_or(|s| (1..=MIX_WEIGHT_MAX).contains(&s)));
                    for b in bounds.values() {
                        prop_assert!(b.floor <= b.ceiling && b.ceiling <= MIX_WEIGHT_MAX);
                    }
                }
            }
        }
    }
}
