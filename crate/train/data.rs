//! The tiles a session trains and evaluates on: the synthetic default or a directory in the
//! layout `lens2logit fetch` and `synth` write (tiles, labels.csv or masks/).

use std::collections::BTreeSet;

use crate::data::synthetic::{self, Task, CELL_CLASSES};
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
}

/// Tiles with a split: the first `train` items train, the rest validate.
pub struct TileSet {
    pub task: Task,
    pub classes: Vec<String>,
    pub camera: CameraParams,
    pub items: Vec<Item>,
    pub train: usize,
}

impl TileSet {
    /// The synthetic dataset: `n` tiles of `size` px, 3/4 for training.
    pub fn synthetic(task: Task, n: usize, size: usize, seed: u64) -> Result<Self> {
        if n < 4 {
            return Err(Error::invalid("a synthetic dataset needs at least 4 tiles"));
        }
        let items = (0..n)
            .map(|i| {
                let s = synthetic::sample(task, seed, i, size, 100.0)?;
                Ok(Item {
                    name: format!("synthetic_{i:05}"),
                    raw: s.raw,
                    label: s.label,
                    mask: s.mask,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            task,
            classes: match task {
                Task::Classification => CELL_CLASSES.iter().map(|c| c.to_string()).collect(),
                Task::Segmentation => vec!["car".into()],
            },
            camera: synthetic::camera(),
            train: n * 3 / 4,
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
        let mut items = Vec::new();
        let mut classes = Vec::new();
        match task {
            Task::Classification => {
                let csv = String::from_utf8(read("labels.csv")?)
                    .map_err(|_| Error::invalid("labels.csv is not UTF-8 text"))?;
                let rows: Vec<(String, String)> = csv
                    .lines()
                    .skip(1)
                    .filter_map(|l| {
                        l.split_once(',')
                            .map(|(f, c)| (f.trim().to_string(), c.trim().to_string()))
                    })
                    .collect();
                classes = rows
                    .iter()
                    .map(|(_, c)| c.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                for (file, class) in rows {
                    let raw = crate::raw::decode_tile(&read(&file)?, &file)?;
                    let label = classes.iter().position(|c| *c == class);
                    items.push(Item {
                        name: file,
                        raw,
                        label,
                        mask: None,
                    });
                }
            }
            Task::Segmentation => {
                for file in tile_names {
                    let stem = crate::data::discovery::stem(file);
                    let raw = crate::raw::decode_tile(&read(file)?, file)?;
                    let mask_name = format!("masks/{stem}.png");
                    let mask_tile = crate::raw::decode_tile(&read(&mask_name)?, &mask_name)?;
                    let mask = mask_tile
                        .data()
                        .iter()
                        .map(|&v| u8::from(v > 0.0))
                        .collect();
                    items.push(Item {
                        name: file.clone(),
                        raw,
                        label: None,
                        mask: Some(mask),
                    });
                }
                classes.push("car".into());
            }
        }
        if items.len() < 4 {
            return Err(Error::invalid(format!(
                "found {} tiles; a session needs at least 4",
                items.len()
            )));
        }
        let train = items.len() * 3 / 4;
        Ok(Self {
            task,
            classes,
            camera,
            items,
            train,
        })
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
        scale_intensity(&item.raw, percent, &self.camera)
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
