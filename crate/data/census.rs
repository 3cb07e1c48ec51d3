//! What discovery made of an archive's entries, grouped and counted with examples: what
//! `lens2logit fetch --list` and the page's "Inspect record" show, and what a fetch says of each
//! archive it read (which rule decided the tiles' dataset).

use std::collections::BTreeMap;

use super::discovery::{classify, Entry};

/// Examples kept per group.
const EXAMPLES: usize = 3;

#[derive(Debug, Default, Clone)]
pub struct Census {
    /// group -> (count, first examples)
    groups: BTreeMap<String, (usize, Vec<String>)>,
}

/// The group an entry falls in.
fn group(entry: Option<&Entry>) -> String {
    match entry {
        Some(Entry::Tile {
            dataset,
            rule,
            intensity,
            ..
        }) => match (dataset, rule) {
            (Some(d), Some(r)) => format!(
                "tiles: {} at {intensity}% (dataset from {})",
                d.name(),
                r.describe()
            ),
            _ => format!("tiles at {intensity}%, dataset undecided (the labels decide)"),
        },
        Some(Entry::FullImage { intensity, .. }) => {
            format!("full images (DNG): drone at {intensity}%, cut into 256 px tiles")
        }
        Some(Entry::Labels) => "labels".into(),
        Some(Entry::Mask { full: false, .. }) => "masks of tiles".into(),
        Some(Entry::Mask { full: true, .. }) => "masks of full images".into(),
        Some(Entry::ProcessedView { view, .. }) => format!("processed views: {view}"),
        Some(Entry::Archive) => "archives inside".into(),
        Some(Entry::LooseTile { .. }) | None => "unknown".into(),
    }
}

impl Census {
    /// What discovery makes of `path` ([`classify`]), counted.
    pub fn classify(&mut self, path: &str) -> Option<Entry> {
        let entry = classify(path);
        self.add(path, entry.as_ref());
        entry
    }

    pub fn add(&mut self, path: &str, entry: Option<&Entry>) {
        if path.ends_with('/') {
            return;
        }
        let (count, examples) = self.groups.entry(group(entry)).or_default();
        *count += 1;
        if examples.len() < EXAMPLES {
            examples.push(path.to_string());
        }
    }

    /// How many entries fell in groups starting with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.groups
            .iter()
            .filter(|(g, _)| g.starts_with(prefix))
            .map(|(_, (n, _))| n)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// One line per group: count, group, examples.
    pub fn lines(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|(group, (count, examples))| {
                format!("{count:>7}  {group}  e.g. {}", examples.join(", "))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_count_and_keep_examples() {
        let mut census = Census::default();
        for path in [
            "r.zip/microscopy/images/raw_scale100/a.tiff",
            "r.zip/microscopy/images/raw_scale100/b.tiff",
            "r.zip/microscopy/labels/l.dat",
            "r.zip/README.txt",
            "r.zip/microscopy/",
        ] {
            census.classify(path);
        }
        let lines = census.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines.iter().any(|l| l.contains(
            "2  tiles: microscopy at 100% (dataset from a folder named after the dataset)"
        )));
        assert!(lines
            .iter()
            .any(|l| l.contains("unknown  e.g. r.zip/README.txt")));
        assert_eq!(census.count("tiles"), 2);
    }
}
