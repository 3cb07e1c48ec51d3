//! The tiles a session trains and evaluates on: the synthetic default or a directory in the
//! layout `lens2logit fetch` and `synth` write (tiles, labels.csv or masks/).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::data::synthetic::{self, Scene, CELL_CLASSES};
use crate::data::Task;
use crate::raw::intensity::scale_intensity;
use crate::raw::{CameraParams, RawTile};
use crate::{Error, Result};

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

/// Tiles with a split: the first `train` items train, the rest validate.
#[derive(Clone)]
pub struct TileSet {
    pub task: Task,
    pub classes: Vec<String>,
    pub camera: CameraParams,
    pub items: Vec<Item>,
    pub train: usize,
}

impl TileSet {
    /// The synthetic dataset: `n` tiles of `size` px.
    pub fn synthetic(task: Task, n: usize, size: usize, seed: u64) -> Result<Self> {
        crate::limits::SYNTHETIC_TILES.check_usize(n)?;
        crate::limits::SYNTHETIC_SIDE.check_usize(size)?;
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
        Self::labelled(task, synthetic::camera(), tiles)
    }

    /// A set from tiles with their class names (classification) or masks (segmentation): the
    /// classes sorted by name, each tile's label its index; tiles without what the task needs
    /// left out; the first 3/4 for training. The one way every source (synthetic, a directory,
    /// the page's tiles) becomes a training set.
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
            task,
            classes,
            camera,
            train: items.len() * 3 / 4,
            items,
        })
    }

    /// Tiles and their labels (classification: `labels.csv` with `file,class`) or masks
    /// (segmentation: `masks/<stem>.png`), read through `read` (a file system natively).
    pub fn from_files(
        task: Task,
        camera: CameraParams,
        files: &[String],
        read: &dyn Fn(&str) -> Result<Vec<u8>>,
    ) -> Result<Self> {
        let tile_names: Vec<&String> = files
            .iter()
            .filter(|f| {
                !f.contains('/')
                    && [".tif", ".tiff", ".png", ".npy"]
                        .iter()
                        .any(|e| f.to_ascii_lowercase().ends_with(e))
            })
            .collect();
        let mut tiles = Vec::new();
        match task {
            Task::Classification => {
                let csv = String::from_utf8(read("labels.csv")?)
                    .map_err(|_| Error::invalid("labels.csv is not UTF-8 text"))?;
                for (file, class) in csv.lines().skip(1).filter_map(|l| l.split_once(',')) {
                    let file = file.trim().to_string();
                    let raw = crate::raw::decode_lab_tile(&read(&file)?, &file)?;
                    let item = Item {
                        name: file,
                        raw,
                        label: None,
                        mask: None,
                        scene: None,
                    };
                    tiles.push((item, Some(class.trim().to_string())));
                }
            }
            Task::Segmentation => {
                for file in tile_names {
                    let stem = crate::data::discovery::stem(file);
                    let raw = crate::raw::decode_lab_tile(&read(file)?, file)?;
                    let mask_name = format!("masks/{stem}.png");
                    let mask = crate::raw::decode_mask(&read(&mask_name)?, &mask_name)?;
                    let item = Item {
                        name: file.clone(),
                        raw,
                        label: None,
                        mask: Some(mask),
                        scene: None,
                    };
                    tiles.push((item, None));
                }
            }
        }
        Self::labelled(task, camera, tiles)
    }

    /// Checks that the tiles can train a model in batches of `batch`: at least a training and a
    /// validation tile, all of one size within the lab's limits, the batch's pixels too.
    pub fn check_sizes(&self, batch: usize) -> Result<()> {
        use crate::limits::{BATCH_PIXELS, TRAIN_SIDE};
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
