//! The tiles a session trains and evaluates on: the synthetic default or a directory in the
//! layout `lens2logit fetch` and `synth` write (tiles, labels.csv or masks/).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::codecs::{csv_records, csv_text};
use crate::data::synthetic::{self, Scene, CELL_CLASSES};
use crate::data::Task;
use crate::raw::intensity::scale_intensity;
use crate::raw::{CameraParams, RawTile};
use crate::{Error, Result};

/// A directory's classes: `file,class`, a row per labelled tile.
pub const LABELS_CSV: &str = "labels.csv";

/// [`LABELS_CSV`]'s text, as `fetch` and `synth` write it: (file, class) in the order given.
pub fn labels_csv<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let rows = labels.into_iter().map(|(file, class)| [file, class]);
    csv_text(["file", "class"], rows)
}

/// [`LABELS_CSV`]'s (file, class) pairs, trimmed; a row without a class is skipped.
fn read_labels_csv(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let records = csv_records(bytes, LABELS_CSV)?;
    let pair = |(_, record): (u64, csv::StringRecord)| {
        let [file, class] = [record.get(0)?, record.get(1)?].map(|f| f.trim().to_string());
        Some((file, class))
    };
    Ok(records.into_iter().filter_map(pair).collect())
}

/// One labelled tile at full intensity.
#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub raw: RawTile,
    /// Class index (classification).
    pub label: Option<usize>,
    /// 1 where a car is (segmentation).
    pub mask: Option<Vec<u8>>,
    /// A synthetic tile's scene, which records it at any intensity with the sensor's noise;
    /// other tiles are dimmed by [`scale_intensity`].
    pub scene: Option<Arc<Scene>>,
}

impl Item {
    /// A tile from a file: no class index yet, no scene.
    pub fn plain(name: String, raw: RawTile, mask: Option<Vec<u8>>) -> Self {
        Self {
            name,
            raw,
            label: None,
            mask,
            scene: None,
        }
    }
}

/// Side of the tiles a camera raw is cut into: the datasets'.
const PHOTO_TILE: usize = 256;

/// A photo's mosaic (a user's camera raw) cut as the paper cuts its full images, into 256 px
/// tiles (a smaller photo is one tile), named `<photo>_<image>_<tile>.tif`: with a full-size
/// `mask`, the tiles with a car (segmentation); without, every tile, its class the photo.
pub fn photo_tiles(
    mosaic: &RawTile,
    photo: &str,
    index: usize,
    mask: Option<&[u8]>,
) -> Result<Vec<(Item, Option<String>)>> {
    use crate::raw::cut::{cut_tiles, keep_car_tiles};
    let side = PHOTO_TILE
        .min(mosaic.width() & !1)
        .min(mosaic.height() & !1);
    let mut tiles = cut_tiles(mosaic, mask, index, side)?;
    if mask.is_some() {
        tiles = keep_car_tiles(tiles, index);
    }
    Ok(tiles
        .into_iter()
        .map(|t| {
            let class = mask.is_none().then(|| photo.to_string());
            let item = Item::plain(format!("{photo}_{}.tif", t.name), t.raw, t.mask);
            (item, class)
        })
        .collect())
}

/// Tiles with a split: the first `train` items train, the rest validate.
#[derive(Clone)]
pub struct TileSet {
    /// Where the tiles came from, as the lab log names it (a folder, a record, `synthetic ...`).
    pub label: String,
    pub task: Task,
    pub classes: Vec<String>,
    pub camera: CameraParams,
    pub items: Vec<Item>,
    pub train: usize,
}

impl TileSet {
    /// The synthetic dataset: `n` tiles of `size` px.
    pub fn synthetic(task: Task, n: usize, size: usize, seed: u64) -> Result<Self> {
        crate::spec::limits::SYNTHETIC_TILES.check_usize(n)?;
        crate::spec::limits::SYNTHETIC_SIDE.check_usize(size)?;
        let tiles = (0..n)
            .map(|i| {
                let mut s = synthetic::scene(task, seed, i, size)?;
                let class = s.label.map(|l| CELL_CLASSES[l].to_string());
                let item = Item {
                    name: format!("synthetic_{i:05}"),
                    raw: s.record(100.0)?,
                    label: None,
                    mask: s.mask.take(),
                    scene: Some(Arc::new(s)),
                };
                Ok((item, class))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut set = Self::labelled(task, synthetic::camera(), tiles)?;
        set.label = format!("synthetic {} ({n} tiles, {size} px)", task.name());
        Ok(set)
    }

    /// A set from tiles with their class names (classification) or masks (segmentation): the
    /// classes sorted by name, each tile's label its index; tiles without what the task needs
    /// left out; the first 3/4 for training until a session [`TileSet::split`]s them. The one
    /// way every source (synthetic, a directory, the page's tiles) becomes a training set.
    pub fn labelled(
        task: Task,
        camera: CameraParams,
        tiles: Vec<(Item, Option<String>)>,
    ) -> Result<Self> {
        let classes: Vec<String> = match task {
            Task::Classification => tiles
                .iter()
                .filter_map(|(_, c)| c.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            Task::Segmentation => vec!["car".into()],
        };
        let items: Vec<Item> = tiles
            .into_iter()
            .filter_map(|(mut item, class)| match task {
                Task::Classification => {
                    item.label = classes.iter().position(|c| Some(c) == class.as_ref());
                    item.label.map(|_| item)
                }
                Task::Segmentation => item.mask.is_some().then_some(item),
            })
            .collect();
        if items.len() < 4 {
            return Err(Error::invalid(format!(
                "{} {} tiles; a session needs at least 4",
                items.len(),
                match task {
                    Task::Classification => "labelled",
                    Task::Segmentation => "masked",
                }
            )));
        }
        Ok(Self {
            label: String::new(),
            task,
            classes,
            camera,
            train: items.len() * 3 / 4,
            items,
        })
    }

    /// Tiles and their labels (classification: `labels.csv` with `file,class`) or masks
    /// (segmentation: `masks/<stem>.png`), read through `read` (a file system natively). Camera
    /// raws (DNG) among them are cut into tiles ([`photo_tiles`]), classified by the photo they
    /// came from or masked by `masks/<stem>.png` of the whole photo.
    pub fn from_files(
        task: Task,
        camera: CameraParams,
        files: &[String],
        read: &dyn Fn(&str) -> Result<Vec<u8>>,
    ) -> Result<Self> {
        let with = |exts: &[&str]| -> Vec<&String> {
            let mut names: Vec<&String> = files
                .iter()
                .filter(|f| {
                    !f.contains('/') && exts.iter().any(|e| f.to_ascii_lowercase().ends_with(e))
                })
                .collect();
            names.sort();
            names
        };
        let mut tiles = Vec::new();
        for (index, file) in with(&[".dng"]).into_iter().enumerate() {
            let stem = crate::data::discovery::stem(file);
            let mask = match task {
                Task::Segmentation => {
                    let name = format!("masks/{stem}.png");
                    Some(crate::raw::decode_mask(&read(&name)?, &name)?)
                }
                Task::Classification => None,
            };
            let dng = crate::raw::decode_dng(&read(file)?, file)?;
            tiles.extend(photo_tiles(&dng.mosaic, stem, index, mask.as_deref())?);
        }
        match task {
            Task::Classification if files.iter().any(|f| f == LABELS_CSV) || tiles.is_empty() => {
                for (file, class) in read_labels_csv(&read(LABELS_CSV)?)? {
                    let raw = crate::raw::decode_lab_tile(&read(&file)?, &file)?;
                    tiles.push((Item::plain(file, raw, None), Some(class)));
                }
            }
            Task::Classification => {}
            Task::Segmentation => {
                for file in with(&[".tif", ".tiff", ".png", ".npy"]) {
                    let stem = crate::data::discovery::stem(file);
                    let raw = crate::raw::decode_lab_tile(&read(file)?, file)?;
                    let mask_name = format!("masks/{stem}.png");
                    let mask = crate::raw::decode_mask(&read(&mask_name)?, &mask_name)?;
                    tiles.push((Item::plain(file.clone(), raw, Some(mask)), None));
                }
            }
        }
        Self::labelled(task, camera, tiles)
    }

    /// Checks that the tiles can train a model in batches of `batch`: at least a training and a
    /// validation tile, all of one size within the lab's limits, the batch's pixels too.
    pub fn check_sizes(&self, batch: usize) -> Result<()> {
        use crate::spec::limits::{BATCH_PIXELS, TRAIN_SIDE};
        let Some(first) = self.items.first() else {
            return Err(Error::invalid("the session has no tiles: load some first"));
        };
        if self.train == 0 || self.train >= self.items.len() {
            return Err(Error::invalid(format!(
                "{} tiles cannot be split into training and validation tiles: load at least 2",
                self.items.len()
            )));
        }
        let (h, w) = (first.raw.height(), first.raw.width());
        if let Some(other) = self
            .items
            .iter()
            .find(|i| (i.raw.height(), i.raw.width()) != (h, w))
        {
            return Err(Error::invalid(format!(
                "tiles of different sizes cannot share a batch: {} is {}x{}, {} is {w}x{h}",
                other.name,
                other.raw.width(),
                other.raw.height(),
                first.name
            )));
        }
        TRAIN_SIDE.check_usize(h)?;
        TRAIN_SIDE.check_usize(w)?;
        BATCH_PIXELS.check(batch as u64 * h as u64 * w as u64)?;
        Ok(())
    }

    /// Tile names identify a session's renders and noise seeds: a repeated name (two files of the
    /// same name from different folders or drops) gets " (2)", " (3)", ... in load order.
    pub fn make_names_unique(&mut self) {
        let mut seen = std::collections::HashSet::new();
        for item in &mut self.items {
            let base = item.name.clone();
            let mut k = 1;
            while !seen.insert(item.name.clone()) {
                k += 1;
                item.name = format!("{base} ({k})");
            }
        }
    }

    /// Splits the tiles into training and validation tiles, stratified by class and seeded
    /// ([`crate::data::sample::split`]): the training tiles first, each part in name order, so
    /// the split is the same whatever order the tiles arrived in (a class-ordered archive too).
    pub fn split(&mut self, seed: u64) {
        let keys: Vec<(&str, Option<usize>)> = self
            .items
            .iter()
            .map(|i| (i.name.as_str(), i.label))
            .collect();
        let (train, val) = crate::data::sample::split(seed, &keys);
        let mut items: Vec<Option<Item>> = std::mem::take(&mut self.items)
            .into_iter()
            .map(Some)
            .collect();
        let mut part = |indices: Vec<usize>| {
            let mut part: Vec<Item> = indices
                .into_iter()
                .filter_map(|i| items[i].take())
                .collect();
            part.sort_by(|a, b| a.name.cmp(&b.name));
            part
        };
        let train = part(train);
        let val = part(val);
        self.train = train.len();
        self.items = train.into_iter().chain(val).collect();
    }

    pub fn train_items(&self) -> &[Item] {
        &self.items[..self.train]
    }

    pub fn val_items(&self) -> &[Item] {
        &self.items[self.train..]
    }

    /// A tile as recorded with `percent` of the light (the datasets' intensity levels).
    pub fn at_intensity(&self, item: &Item, percent: f64) -> Result<RawTile> {
        if percent >= 100.0 {
            return Ok(item.raw.clone());
        }
        match &item.scene {
            Some(scene) => scene.record(percent),
            None => scale_intensity(&item.raw, percent, &self.camera),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_tile_names_are_told_apart_in_load_order() {
        let mut set = TileSet::synthetic(Task::Classification, 5, 16, 0).unwrap();
        for i in [1, 3, 4] {
            set.items[i].name = set.items[0].name.clone();
        }
        set.items[2].name = format!("{} (2)", set.items[0].name);
        set.make_names_unique();
        let base = set.items[0].name.clone();
        let names: Vec<&str> = set.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                base.clone(),
                format!("{base} (2)"),
                format!("{base} (2) (2)"),
                format!("{base} (3)"),
                format!("{base} (4)"),
            ]
        );
    }
}
