//! Which files of the record belong to which dataset, from their paths alone, whatever the
//! layout: the record's own files, entries of its archives with or without the
//! `microscopy/images/` prefix, and entries of archives inside archives. A path here is the
//! record file's key, then the archives it passed through, then the entry (e.g.
//! `Raw-Drone.zip/raw_scale100.zip/DJI_1_0_0.tif`), so an archive's name counts as a folder.
//!
//! A tile's dataset is decided by the first rule that applies, and the lab says which:
//! 1. a folder named `microscopy` or `drone`;
//! 2. an archive's name (the record file's, or a nested one's) naming one of them;
//! 3. the extension the paper's data use (`.tiff` microscopy, `.tif` drone);
//! 4. the labels: a tile listed there is Raw-Microscopy's (decided once they are read).

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

    /// Whether its record may hold camera raws (DNGs) to cut into tiles: Raw-Drone's full images.
    pub fn has_camera_raws(self) -> bool {
        self == Self::Drone
    }

    /// Named in a file or archive name (`Raw-Microscopy.zip`, `drone_tiles.zip`).
    fn named_in(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        match (lower.contains("micro"), lower.contains("drone")) {
            (true, false) => Some(Self::Microscopy),
            (false, true) => Some(Self::Drone),
            _ => None,
        }
    }
}

/// The rule that decided a tile's dataset (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    Folders,
    ArchiveName,
    Extension,
    Labels,
}

impl Rule {
    pub fn describe(self) -> &'static str {
        match self {
            Rule::Folders => "a folder named after the dataset",
            Rule::ArchiveName => "the archive's name",
            Rule::Extension => "the tile extension",
            Rule::Labels => "the labels",
        }
    }
}

/// What a file of the record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A raw tile: its dataset (None until the labels decide), the rule that decided it, its
    /// intensity percent (100 when no `raw_scaleNNN` folder says), file name and stem.
    Tile {
        dataset: Option<DatasetKind>,
        rule: Option<Rule>,
        intensity: u32,
        file: String,
        stem: String,
    },
    /// A full Raw-Drone image (DNG), cut into 256 px tiles as the paper's code does.
    FullImage {
        intensity: u32,
        file: String,
        stem: String,
    },
    /// Raw-Microscopy's labels (`<name> <CLASS>` lines).
    Labels,
    /// A Raw-Drone car mask for the tile (or, `full`, the full image) with this stem.
    Mask { stem: String, full: bool },
    /// One of the paper's own processed views: under a `processed_views` folder, the view named
    /// by the folders below it (`bilinear/x.png`) or, in a flat folder, by the file name after
    /// the tile's stem (`x_bilinear.png`).
    ProcessedView {
        dataset: Option<DatasetKind>,
        path: String,
        view: String,
        stem: String,
    },
    /// A zip archive inside the archive.
    Archive,
    /// A tile file outside the datasets' layout (a user's own zip of tiles).
    LooseTile { file: String },
}

/// The one Raw-Microscopy tile the paper leaves out.
pub const EXCLUDED_TILE: &str = "Ma190c_lame3_zone13_composite_Mcropped_2.tiff";
/// Classes with more than this many samples are kept (9 classes, 940 tiles).
pub const MIN_CLASS_SAMPLES: usize = 5;

/// The level of a `raw_scaleNNN` folder (or archive); `Err` for one that names no level.
fn intensity(folder: &str) -> Option<Result<u32, ()>> {
    let digits = folder
        .strip_suffix(".zip")
        .unwrap_or(folder)
        .strip_prefix("raw_scale")?;
    let level = digits
        .parse::<u32>()
        .ok()
        .filter(|l| digits.len() == 3 && LEVELS.contains(l));
    Some(level.ok_or(()))
}

/// A file name without its extension: what ties a tile to its mask and the paper's views of it.
pub fn stem(file: &str) -> &str {
    file.rsplit_once('.').map_or(file, |(s, _)| s)
}

/// A flat views folder's file `<stem>_<view>`: split where a demosaicing's name starts the view.
fn view_in_name(name: &str) -> Option<(String, String)> {
    use crate::isp::static_pipeline::Debayer;
    Debayer::ALL.iter().find_map(|d| {
        let at = name.find(&format!("_{}", d.name()))?;
        Some((name[..at].to_string(), name[at + 1..].to_string()))
    })
}

/// Classifies a path (see the module's documentation; directories, ending with '/', are nothing).
pub fn classify(path: &str) -> Option<Entry> {
    if path.ends_with('/') {
        return None;
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (&file, folders) = parts.split_last()?;
    let lower = file.to_ascii_lowercase();
    let extension = lower.rsplit_once('.').map_or("", |(_, e)| e);
    let file_stem = stem(file).to_string();
    let folder_dataset = folders.iter().rev().find_map(|p| DatasetKind::parse(p));
    if let Some(at) = folders
        .iter()
        .position(|p| p.starts_with("processed_views"))
    {
        let below = &folders[at + 1..];
        let (stem, view) = if below.is_empty() {
            view_in_name(&file_stem)?
        } else {
            (file_stem, below.join("/"))
        };
        return Some(Entry::ProcessedView {
            dataset: folder_dataset,
            path: path.to_string(),
            view,
            stem,
        });
    }
    match extension {
        "zip" => return Some(Entry::Archive),
        "dat" => return Some(Entry::Labels),
        _ => {}
    }
    let image = matches!(extension, "tif" | "tiff" | "png" | "dng");
    if !image || file.starts_with('.') {
        return None;
    }
    if let Some(mask_folder) = folders
        .iter()
        .rev()
        .find(|p| p.to_ascii_lowercase().starts_with("mask"))
    {
        return Some(Entry::Mask {
            stem: file_stem,
            full: mask_folder.to_ascii_lowercase().contains("full"),
        });
    }
    // the nearest level folder (a `raw_scale033` names no level: not a tile of the datasets)
    let intensity = match folders.iter().rev().find_map(|p| intensity(p)) {
        Some(Ok(level)) => level,
        Some(Err(())) => return None,
        None => 100,
    };
    if extension == "dng" {
        return Some(Entry::FullImage {
            intensity,
            file: file.to_string(),
            stem: file_stem,
        });
    }
    let archive_dataset = folders
        .iter()
        .rev()
        .filter(|p| p.to_ascii_lowercase().ends_with(".zip"))
        .find_map(|p| DatasetKind::named_in(p));
    let extension_dataset = match extension {
        "tiff" => Some(DatasetKind::Microscopy),
        "tif" => Some(DatasetKind::Drone),
        _ => None,
    };
    let (dataset, rule) = [
        (folder_dataset, Rule::Folders),
        (archive_dataset, Rule::ArchiveName),
        (extension_dataset, Rule::Extension),
    ]
    .into_iter()
    .find_map(|(d, rule)| Some((Some(d?), Some(rule))))
    .unwrap_or((None, None));
    Some(Entry::Tile {
        dataset,
        rule,
        intensity,
        file: file.to_string(),
        stem: file_stem,
    })
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

    fn tile(dataset: Option<DatasetKind>, rule: Option<Rule>, intensity: u32, file: &str) -> Entry {
        Entry::Tile {
            dataset,
            rule,
            intensity,
            file: file.into(),
            stem: stem(file).into(),
        }
    }

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
    fn paths_of_both_datasets_with_their_prefixes() {
        use DatasetKind::*;
        assert_eq!(
            classify("RAW/microscopy/images/raw_scale050/Ab_1.tiff"),
            Some(tile(Some(Microscopy), Some(Rule::Folders), 50, "Ab_1.tiff"))
        );
        assert_eq!(classify("x/microscopy/labels/all.dat"), Some(Entry::Labels));
        assert_eq!(
            classify("data/drone/images_tiles_256/raw_scale100/DJI_1_0_0.tif"),
            Some(tile(Some(Drone), Some(Rule::Folders), 100, "DJI_1_0_0.tif"))
        );
        assert_eq!(
            classify("data/drone/masks_tiles_256/DJI_1_0_0.png"),
            Some(Entry::Mask {
                stem: "DJI_1_0_0".into(),
                full: false
            })
        );
        assert_eq!(
            classify("d/drone/processed_views/bilinear/x.png"),
            Some(Entry::ProcessedView {
                dataset: Some(Drone),
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
    fn paths_without_prefixes_decided_by_archive_name_extension_or_later_labels() {
        use DatasetKind::*;
        assert_eq!(
            classify("Raw-Drone.zip/raw_scale010.zip/a.tif"),
            Some(tile(Some(Drone), Some(Rule::ArchiveName), 10, "a.tif"))
        );
        assert_eq!(
            classify("images.zip/raw_scale100/a.tiff"),
            Some(tile(Some(Microscopy), Some(Rule::Extension), 100, "a.tiff"))
        );
        assert_eq!(
            classify("images.zip/raw_scale005/a.png"),
            Some(tile(None, None, 5, "a.png"))
        );
        assert_eq!(
            classify("Raw-Microscopy.zip/inner.zip"),
            Some(Entry::Archive)
        );
        assert_eq!(classify("Ma190c_annotations.dat"), Some(Entry::Labels));
        assert_eq!(
            classify("masks_full.zip/DJI_0001.png"),
            Some(Entry::Mask {
                stem: "DJI_0001".into(),
                full: true
            })
        );
        assert_eq!(
            classify("Raw-Drone.zip/drone/images_full/raw_scale100/DJI_0001.DNG"),
            Some(Entry::FullImage {
                intensity: 100,
                file: "DJI_0001.DNG".into(),
                stem: "DJI_0001".into()
            })
        );
    }

    #[test]
    fn flat_processed_views_name_the_view_after_the_stem() {
        assert_eq!(
            classify(
                "r.zip/processed_views/Cell_0_malvar2004_unsharp_masking_median_denoising.png"
            ),
            Some(Entry::ProcessedView {
                dataset: None,
                path:
                    "r.zip/processed_views/Cell_0_malvar2004_unsharp_masking_median_denoising.png"
                        .into(),
                view: "malvar2004_unsharp_masking_median_denoising".into(),
                stem: "Cell_0".into(),
            })
        );
        assert_eq!(classify("r.zip/processed_views/notes.png"), None);
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
