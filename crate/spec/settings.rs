//! Every setting a user gives a session, described once: its default and its range. The core's
//! configuration starts from these defaults, the CLI's flags default to them, the page builds its
//! controls' bounds and values from [`describe`] (which the facade exports), and the README's
//! table of defaults is [`markdown`] (a test compares them).

use serde::Serialize;

use super::limits::{self, Bound};
use super::models::ModelKind;

/// Steps of each training phase (the page's default session shows the paper's findings).
pub const DEFAULT_STEPS: usize = 300;
pub const DEFAULT_LR: f64 = 1e-3;
pub const DEFAULT_WEIGHT_DECAY: f64 = 1e-4;
pub const DEFAULT_BATCH: usize = 8;
pub const DEFAULT_SEED: u64 = 0;
/// Synthetic tiles and their side: 64 of them validate.
pub const DEFAULT_TILES: usize = 256;
pub const DEFAULT_SIDE: usize = 64;
/// Tiles streamed from Zenodo.
pub const DEFAULT_FETCH_LIMIT: usize = 64;
/// Forensics: the weight of the distance to the default processing (at 100 the groups rank
/// apart; at 1 most reach chance) and the steps of each group's attack.
pub const DEFAULT_LAMBDA: f64 = 100.0;
pub const DEFAULT_ATTACK_STEPS: usize = 30;
/// Forensics' Adam step on the processing's parameters (of order one, so attacks move faster
/// than weights train).
pub const DEFAULT_ATTACK_LR: f64 = 0.05;
/// A camera fit's steps (`fit-camera --steps`, the page's "Fit my camera").
pub const DEFAULT_FIT_STEPS: usize = 300;
/// Fine-tuning: the backbone frozen for none of the steps.
pub const DEFAULT_FREEZE: &str = "none";

/// A setting's default, typed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Whole(u64),
    Real(f64),
    Text(&'static str),
    /// No value: the note in the setting's doc says what applies.
    Unset,
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Whole(v) => write!(f, "{v}"),
            Value::Real(v) => write!(f, "{v}"),
            Value::Text(v) => write!(f, "{v}"),
            Value::Unset => Ok(()),
        }
    }
}

/// What a setting takes.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Range {
    /// A whole number within the bound.
    Whole { min: u64, max: u64 },
    /// A real number within [min, max], offered in steps of `step`.
    Real { min: f64, max: f64, step: f64 },
    /// One of the values.
    Choice { values: &'static [&'static str] },
    /// One of the numbers.
    Levels { values: &'static [u32] },
}

impl Range {
    const fn whole(bound: Bound) -> Self {
        Range::Whole {
            min: bound.min,
            max: bound.max,
        }
    }

    const fn real((min, max): (f64, f64), step: f64) -> Self {
        Range::Real { min, max, step }
    }
}

/// A setting, as the page's control (`id`, also its URL key), the CLI's flag and the docs name
/// it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Setting {
    pub id: &'static str,
    /// The CLI's flag (`--flag`), where it has one.
    pub flag: Option<&'static str>,
    pub label: &'static str,
    pub default: Value,
    /// What an empty value means, where the setting may be left empty.
    pub unset: Option<&'static str>,
    pub range: Range,
    pub doc: &'static str,
}

const MODELS: [&str; 8] = {
    let mut names = [""; 8];
    let mut i = 0;
    while i < 8 {
        names[i] = ModelKind::ALL[i].name();
        i += 1;
    }
    names
};

/// Every setting, in the order the docs list them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        id: "n",
        flag: Some("n"),
        label: "Synthetic tiles",
        default: Value::Whole(DEFAULT_TILES as u64),
        unset: None,
        range: Range::whole(limits::SYNTHETIC_TILES),
        doc: "tiles of the synthetic dataset (the offline default)",
    },
    Setting {
        id: "size",
        flag: Some("size"),
        label: "Tile side (px)",
        default: Value::Whole(DEFAULT_SIDE as u64),
        unset: None,
        range: Range::whole(limits::SYNTHETIC_SIDE),
        doc: "side of the synthetic tiles",
    },
    Setting {
        id: "seed",
        flag: Some("seed"),
        label: "Seed",
        default: Value::Whole(DEFAULT_SEED),
        unset: None,
        range: Range::whole(limits::SEED),
        doc: "the session's seed: its tiles, split, weights and batches",
    },
    Setting {
        id: "limit",
        flag: None,
        label: "Tiles to fetch",
        default: Value::Whole(DEFAULT_FETCH_LIMIT as u64),
        unset: None,
        range: Range::whole(limits::FETCH_TILES),
        doc:
            "tiles the page streams from Zenodo (a seeded, class-balanced sample; `fetch --limit` \
              takes them all where not given)",
    },
    Setting {
        id: "intensity",
        flag: None,
        label: "Intensity (%)",
        default: Value::Whole(limits::FULL_INTENSITY as u64),
        unset: None,
        range: Range::Levels {
            values: &limits::INTENSITY_LEVELS,
        },
        doc: "the light of the tiles the page streams (`fetch --intensity`), one of the datasets' levels",
    },
    Setting {
        id: "corruption",
        flag: Some("corruption-severity"),
        label: "Corruption baseline (severity)",
        default: Value::Unset,
        unset: Some("none"),
        range: Range::whole(limits::CORRUPTION_SEVERITY),
        doc: "synthesis: the training view also under ImageNet-C's noise, blur and contrast corruptions",
    },
    Setting {
        id: "model",
        flag: Some("model"),
        label: "Model",
        default: Value::Unset,
        unset: Some("the task's browser-sized model (resnet_small, unet_small)"),
        range: Range::Choice { values: &MODELS },
        doc: "the task model",
    },
    Setting {
        id: "steps",
        flag: Some("steps"),
        label: "Steps",
        default: Value::Whole(DEFAULT_STEPS as u64),
        unset: None,
        range: Range::whole(limits::STEPS),
        doc: "steps of each training phase",
    },
    Setting {
        id: "lr",
        flag: Some("lr"),
        label: "Learning rate",
        default: Value::Real(DEFAULT_LR),
        unset: None,
        range: Range::real(limits::LEARNING_RATE, 0.0005),
        doc: "AdamW's learning rate (the model's, and the processing's where it trains)",
    },
    Setting {
        id: "weight-decay",
        flag: Some("weight-decay"),
        label: "Weight decay",
        default: Value::Real(DEFAULT_WEIGHT_DECAY),
        unset: None,
        range: Range::real(limits::WEIGHT_DECAY, 0.0001),
        doc: "AdamW's weight decay",
    },
    Setting {
        id: "batch",
        flag: Some("batch"),
        label: "Batch",
        default: Value::Whole(DEFAULT_BATCH as u64),
        unset: None,
        range: Range::whole(limits::BATCH),
        doc: "tiles per step",
    },
    Setting {
        id: "freeze-backbone",
        flag: Some("freeze-backbone"),
        label: "Freeze the backbone",
        default: Value::Text(DEFAULT_FREEZE),
        unset: None,
        range: Range::Choice {
            values: &["none", "20", "50", "100", "all"],
        },
        doc:
            "fine-tuning: steps of each training phase with the backbone (the trunk, the encoder) \
              frozen and its batch norms in evaluation mode; `none`, a number, or `all`",
    },
    Setting {
        id: "backbone-lr",
        flag: Some("backbone-lr"),
        label: "Backbone learning rate",
        default: Value::Unset,
        unset: Some("the learning rate"),
        range: Range::real(limits::LEARNING_RATE, 0.0001),
        doc: "fine-tuning: the backbone's own learning rate",
    },
    Setting {
        id: "lambda",
        flag: Some("lambda"),
        label: "Lambda",
        default: Value::Real(DEFAULT_LAMBDA),
        unset: None,
        range: Range::real(limits::LAMBDA, 1.0),
        doc: "forensics: weight of the distance to the default processing against the task loss",
    },
    Setting {
        id: "attack-steps",
        flag: Some("forensic-steps"),
        label: "Attack steps",
        default: Value::Whole(DEFAULT_ATTACK_STEPS as u64),
        unset: None,
        range: Range::whole(limits::STEPS),
        doc: "forensics: steps of each group's attack",
    },
    Setting {
        id: "fit-steps",
        flag: None,
        label: "Camera fit steps",
        default: Value::Whole(DEFAULT_FIT_STEPS as u64),
        unset: None,
        range: Range::whole(limits::STEPS),
        doc: "steps of a camera fit (`fit-camera --steps`)",
    },
];

/// The setting with page id `id`.
pub fn setting(id: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.id == id)
}

/// The description the page builds its controls from.
pub fn describe() -> serde_json::Value {
    serde_json::to_value(SETTINGS).unwrap_or_default()
}

/// The README's table of settings: setting, CLI flag, default, range.
pub fn markdown() -> String {
    let mut out =
        String::from("| setting | CLI flag | default | range |\n| --- | --- | --- | --- |\n");
    for s in SETTINGS {
        let range = match s.range {
            Range::Whole { min, max } => format!("{min} to {max}"),
            Range::Real { min, max, .. } => format!("{min} to {max}"),
            Range::Choice { values } => values.join(", "),
            Range::Levels { values } => values
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        };
        let flag = s.flag.map_or(String::new(), |f| format!("`--{f}`"));
        let default = match (s.default, s.unset) {
            (Value::Unset, Some(unset)) => format!("empty: {unset}"),
            (d, _) => format!("`{d}`"),
        };
        out += &format!(
            "| {}: {} | {flag} | {default} | {range} |\n",
            s.label, s.doc
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_lies_in_its_range() {
        for s in SETTINGS {
            let ok = match (s.range, s.default) {
                (Range::Whole { min, max }, Value::Whole(v)) => (min..=max).contains(&v),
                (Range::Real { min, max, .. }, Value::Real(v)) => (min..=max).contains(&v),
                (Range::Choice { values }, Value::Text(v)) => values.contains(&v),
                (Range::Levels { values }, Value::Whole(v)) => {
                    values.iter().any(|&l| l as u64 == v)
                }
                (_, Value::Unset) => s.unset.is_some(),
                _ => false,
            };
            assert!(
                ok,
                "{}: default {:?} outside {:?}",
                s.id, s.default, s.range
            );
        }
    }
}
