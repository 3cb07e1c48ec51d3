//! Which files of an archive belong to which dataset, from their paths alone (archive names are
//! not known in advance): Raw-Microscopy and Raw-Drone tiles at their intensity levels, the
//! labels, the masks, and the paper's own processed views.

use std::collections::HashMap;

use crate::raw::intensity::LEVELS;

/// The paper's two datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    Microscopy,
    Drone,
}

impl DatasetKind {
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Microscopy => "microscopy",
            DatasetKind::Drone => "drone",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "microscopy" => Some(Self::Microscopy),
            "drone" => Some(Self::Drone),
            _ => None,
        }
    }
}

/// What an archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A raw tile: dataset, intensity percent, file name (e.g. `x.tiff`), stem (`x`).
    Tile {
        dataset: DatasetKind,
        intensity: u32,
        file: String,
        stem: String,
    },
    /// Raw-Microscopy's labels (`<name> <CLASS>` lines).
    Labels,
    /// A Raw-Drone car mask for the tile with this stem.
    Mask { stem: String },
    /// A file under a `processed_views` folder (the paper's own 12 views): the view is the
    /// folders between `processed_views` and the file (e.g. `bilinear`), the stem names its tile.
    ProcessedView {
        dataset: Option<DatasetKind>,
        path: String,
        view: String,
        stem: String,
    },
    /// A tile file outside the datasets' layout (a user's own zip of tiles).
    LooseTile { file: String },
}

/// The one Raw-Microscopy tile the paper leaves out.
pub const EXCLUDED_TILE: &str = "Ma190c_lame3_zone13_composite_Mcropped_2.tiff";
/// Classes with more than this many samples are kept (9 classes, 940 tiles).
pub const MIN_CLASS_SAMPLES: usize = 5;

fn intensity(folder: &str) -> Option<u32> {
    let level: u32 = folder.strip_prefix("raw_scale")?.parse().ok()?;
    (folder.len() == "raw_scale".len() + 3 && LEVELS.contains(&level)).then_some(level)
}

/// A file name without its extension: what ties a tile to its mask and the paper's views of it.
pub fn stem(file: &str) -> &str {
    file.rsplit_once('.').map_or(file, |(s, _)| s)
}

/// Classifies an archive path (directories end with '/' and classify as nothing).
pub fn classify(path: &str) -> Option<Entry> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let file = *parts.last()?;
    if path.ends_with('/') {
        return None;
    }
    // a folder called processed_views above the file (a file of that name is no view)
    let folders = &parts[..parts.len() - 1];
    if let Some(at) = folders.iter().position(|p| *p == "processed_views") {
        let dataset = parts[..at].iter().rev().find_map(|p| DatasetKind::parse(p));
        return Some(Entry::ProcessedView {
            dataset,
            path: path.to_string(),
            view: parts[at + 1..parts.len() - 1].join("/"),
            stem: stem(file).to_string(),
        });
    }
    let n = parts.len();
    let lower = file.to_ascii_lowercase();
    let tile = |dataset, folder: &str| {
        Some(Entry::Tile {
            dataset,
            intensity: intensity(folder)?,
            file: file.to_string(),
            stem: stem(file).to_string(),
        })
    };
    // .../microscopy/images/raw_scaleNNN/*.tiff
    if n >= 4
        && parts[n - 4] == "microscopy"
        && parts[n - 3] == "images"
        && lower.ends_with(".tiff")
    {
        return tile(DatasetKind::Microscopy, parts[n - 2]);
    }
    // .../microscopy/labels/*.dat
    if n >= 3 && parts[n - 3] == "microscopy" && parts[n - 2] == "labels" && lower.ends_with(".dat")
    {
        return Some(Entry::Labels);
    }
    // .../drone/images_tiles_256/raw_scaleNNN/*.tif
    if n >= 4
        && parts[n - 4] == "drone"
        && parts[n - 3] == "images_tiles_256"
        && lower.ends_with(".tif")
    {
        return tile(DatasetKind::Drone, parts[n - 2]);
    }
    // .../drone/masks_tiles_256/<stem>.png
    if n >= 3
        && parts[n - 3] == "drone"
        && parts[n - 2] == "masks_tiles_256"
        && lower.ends_with(".png")
    {
        return Some(Entry::Mask {
            stem: stem(file).to_string(),
        });
    }
    None
}

/// Like [`classify`], and any other PNG, TIFF or .npy file as a loose tile (for a user's zip).
pub fn classify_loose(path: &str) -> Option<Entry> {
    classify(path).or_else(|| {
        let file = path.rsplit('/').next()?;
        let lower = file.to_ascii_lowercase();
        let tile = [".png", ".tif", ".tiff", ".npy"]
            .iter()
            .any(|e| lower.ends_with(e));
        (tile && !file.starts_with('.')).then(|| Entry::LooseTile {
            file: file.to_string(),
        })
    })
}

/// Raw-Microscopy labels: file name -> class, for classes with more than MIN_CLASS_SAMPLES - 1
/// samples, without the excluded tile. Lines are `<name> <CLASS>`, the tile being `<name>.tiff`.
pub fn parse_labels(texts: &[String]) -> HashMap<String, String> {
    let mut all = HashMap::new();
    for text in texts {
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if let (Some(name), Some(class)) = (words.next(), words.next()) {
                let file = if name.ends_with(".tiff") {
                    name.to_string()
                } else {
                    format!("{name}.tiff")
                };
                if file != EXCLUDED_TILE {
                    all.insert(file, class.to_string());
                }
            }
        }
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for class in all.values() {
        *counts.entry(class.as_str()).or_default() += 1;
    }
    let kept: Vec<String> = counts
        .into_iter()
        .filter(|(_, n)| *n >= MIN_CLASS_SAMPLES)
        .map(|(c, _)| c.to_string())
        .collect();
    all.into_iter().filter(|(_, c)| kept.contains(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the zip_stream fuzz target: a file named like the views folder panicked.
    #[test]
    fn a_file_called_processed_views_is_no_view() {
        assert_eq!(classify("a/processed_views"), None);
        assert_eq!(classify("processed_views"), None);
        assert!(matches!(
            classify("microscopy/processed_views/v/x.tiff"),
            Some(Entry::ProcessedView { .. })
        ));
    }

    #[test]
    fn paths_of_both_datasets() {
        assert_eq!(
            classify("RAW/microscopy/images/raw_scale050/Ab_1.tiff"),
            Some(Entry::Tile {
                dataset: DatasetKind::Microscopy,
                intensity: 50,
                file: "Ab_1.tiff".into(),
                stem: "Ab_1".into()
            })
        );
        assert_eq!(classify("x/microscopy/labels/all.dat"), Some(Entry::Labels));
        assert!(matches!(
            classify("data/drone/images_tiles_256/raw_scale100/DJI_1_0_0.tif"),
            Some(Entry::Tile {
                dataset: DatasetKind::Drone,
                intensity: 100,
                ..
            })
        ));
        assert_eq!(
            classify("data/drone/masks_tiles_256/DJI_1_0_0.png"),
            Some(Entry::Mask {
                stem: "DJI_1_0_0".into()
            })
        );
        assert_eq!(
            classify("d/drone/processed_views/bilinear/x.png"),
            Some(Entry::ProcessedView {
                dataset: Some(DatasetKind::Drone),
                path: "d/drone/processed_views/bilinear/x.png".into(),
                view: "bilinear".into(),
                stem: "x".into(),
            })
        );
        assert_eq!(classify("microscopy/images/raw_scale033/a.tiff"), None);
        assert_eq!(classify("microscopy/images/raw_scale050/"), None);
        assert_eq!(classify("README.md"), None);
    }

    #[test]
    fn labels_drop_rare_classes_and_the_excluded_tile() {
        let mut text = String::new();
        for i in 0..5 {
            text.push_str(&format!("a{i} LYT\n"));
        }
        text.push_str("b0 RARE\nb1 RARE\nMa190c_lame3_zone13_composite_Mcropped_2 LYT\n");
        let labels = parse_labels(&[text]);
        assert_eq!(labels.len(), 5);
        assert_eq!(labels["a3.tiff"], "LYT");
        assert!(!labels.contains_key(EXCLUDED_TILE));
    }
}
