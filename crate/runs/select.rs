//! Which runs a runs table shows, and in what order: the same filter and sort for the page's
//! table and `lens2logit runs list`.

use serde::Deserialize;

use super::RunMeta;
use crate::{Error, Result};

/// A filter on the runs' fields (each empty or absent: any) and a sort key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    pub mode: Option<String>,
    pub model: Option<String>,
    pub view: Option<String>,
    pub dataset: Option<String>,
    /// Text found in the name, mode, model, view, dataset or status.
    pub text: Option<String>,
    /// started (newest first, the default), metric (best first), name, mode or model.
    pub sort: Option<String>,
}

/// A field of a run's description.
type Field = fn(&RunMeta) -> &str;

/// The values a runs table can be filtered by: each field's distinct values, sorted (empty ones
/// left out).
pub fn facets(runs: &[RunMeta]) -> std::collections::BTreeMap<&'static str, Vec<String>> {
    let fields: [(&'static str, Field); 4] = [
        ("mode", |m| &m.mode),
        ("model", |m| &m.model),
        ("view", |m| &m.view),
        ("dataset", |m| &m.dataset),
    ];
    fields
        .into_iter()
        .map(|(name, field)| {
            let values: std::collections::BTreeSet<&str> =
                runs.iter().map(field).filter(|v| !v.is_empty()).collect();
            (name, values.into_iter().map(String::from).collect())
        })
        .collect()
}

pub fn select(mut runs: Vec<RunMeta>, selection: &Selection) -> Result<Vec<RunMeta>> {
    let wanted = |want: &Option<String>, have: &str| {
        want.as_deref().is_none_or(|w| w.is_empty() || w == have)
    };
    runs.retain(|m| {
        wanted(&selection.mode, &m.mode)
            && wanted(&selection.model, &m.model)
            && wanted(&selection.view, &m.view)
            && wanted(&selection.dataset, &m.dataset)
            && selection.text.as_deref().is_none_or(|text| {
                let text = text.to_lowercase();
                [&m.name, &m.mode, &m.model, &m.view, &m.dataset, &m.status]
                    .iter()
                    .any(|field| field.to_lowercase().contains(&text))
            })
    });
    match selection.sort.as_deref().unwrap_or("started") {
        "started" => runs.sort_by_key(|m| std::cmp::Reverse(m.started_ms)),
        "metric" => runs.sort_by(|a, b| {
            let key = |m: &RunMeta| m.headline().unwrap_or(f64::NEG_INFINITY);
            key(b).total_cmp(&key(a))
        }),
        "name" => runs.sort_by(|a, b| a.name.cmp(&b.name)),
        "mode" => runs.sort_by(|a, b| (&a.mode, &a.model).cmp(&(&b.mode, &b.model))),
        "model" => runs.sort_by(|a, b| (&a.model, &a.mode).cmp(&(&b.model, &b.mode))),
        other => {
            return Err(Error::invalid(format!(
                "cannot sort runs by '{other}': use started, metric, name, mode or model"
            )))
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, mode: &str, started_ms: u64, metric: Option<f64>) -> RunMeta {
        let mut m = RunMeta::example();
        m.id = id.into();
        m.mode = mode.into();
        m.started_ms = started_ms;
        m.metrics.clear();
        if let Some(v) = metric {
            m.metrics.insert("val_accuracy".into(), v);
        }
        m
    }

    #[test]
    fn filters_by_field_and_sorts_by_metric_with_missing_last() {
        let runs = vec![
            run("a", "synthesis", 1, Some(0.5)),
            run("b", "forensics", 2, Some(0.9)),
            run("c", "synthesis", 3, None),
            run("d", "synthesis", 4, Some(0.7)),
        ];
        let ids = |s: &Selection| -> Vec<String> {
            select(runs.clone(), s)
                .unwrap()
                .into_iter()
                .map(|m| m.id)
                .collect()
        };
        assert_eq!(ids(&Selection::default()), ["d", "c", "b", "a"]);
        let by_metric = Selection {
            mode: Some("synthesis".into()),
            sort: Some("metric".into()),
            ..Selection::default()
        };
        assert_eq!(ids(&by_metric), ["d", "a", "c"]);
        let text = Selection {
            text: Some("FOREN".into()),
            ..Selection::default()
        };
        assert_eq!(ids(&text), ["b"]);
        let e = select(
            runs,
            &Selection {
                sort: Some("x".into()),
                ..Selection::default()
            },
        );
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("cannot sort runs by 'x'"));
    }
}
