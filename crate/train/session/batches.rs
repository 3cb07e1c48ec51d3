//! A session's batches as the backends take them: the tiles drawn for a step or a validation
//! pass, raw or through a static view (rendered here, on the CPU, and kept for the training view),
//! with their targets.

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Front, Session};
use crate::data::tiles::Item;
use crate::data::Task;
use crate::isp::static_pipeline::{render_all, View};
use crate::train::backend::{Batch, Input};
use crate::{Error, Result};

impl Session {
    /// A training batch's tiles, drawn with the session's generator.
    pub(super) fn draw(&mut self) -> Vec<Item> {
        let train = self.data.train_items();
        (0..self.config.batch)
            .map(|_| train[self.rng.random_range(0..train.len())].clone())
            .collect()
    }

    /// The validation tiles in full batches of the training size, the last one completed from
    /// the start of the list (the GPU's graph has one batch size; every backend batches the same
    /// way).
    pub(super) fn val_batches(&self) -> Vec<Vec<Item>> {
        let val = self.data.val_items();
        let b = self.config.batch;
        (0..val.len().div_ceil(b))
            .map(|k| {
                (0..b)
                    .map(|j| val[(k * b + j) % val.len()].clone())
                    .collect()
            })
            .collect()
    }

    /// `items` at `intensity` as the model's front takes them, with their targets.
    pub(super) fn batch(&mut self, items: &[Item], front: &Front, intensity: u32) -> Result<Batch> {
        let input = match front {
            Front::Static(view) => {
                let clean = self.static_batch(items, *view, intensity)?;
                Input::Processed(self.norm.apply(&clean)?)
            }
            Front::Corrupted(view, corruption, severity) => {
                let clean = self.static_batch(items, *view, intensity)?;
                // the same noise for the same tiles, whatever the batching
                let first = self.index_of(&items[0]) as u64;
                let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed ^ (first << 32));
                let corrupted = corruption.apply(&clean, *severity, &mut rng)?;
                Input::Processed(self.norm.apply(&corrupted)?)
            }
            // the parametrized ISP ends in batch norm: the backend's processing normalises
            Front::Param { .. } => Input::Raw(self.raw_batch(items, intensity)?),
            Front::Twin => {
                let twin = self.config.camera_twin.as_ref().ok_or_else(|| {
                    Error::invalid("the session was asked for its camera twin and has none")
                })?;
                let rendered = twin.render(&self.raw_batch(items, intensity)?)?;
                Input::Processed(self.norm.apply(&rendered)?)
            }
        };
        Ok(Batch {
            input,
            targets: self.targets(items)?,
        })
    }

    /// Raw tiles of `items` at `intensity` as a (B, H, W) tensor.
    pub(super) fn raw_batch(&self, items: &[Item], intensity: u32) -> Result<Tensor> {
        let (h, w) = (items[0].raw.height(), items[0].raw.width());
        let mut data = Vec::with_capacity(items.len() * h * w);
        for item in items {
            data.extend_from_slice(self.data.at_intensity(item, intensity as f64)?.data());
        }
        Ok(Tensor::from_vec(data, (items.len(), h, w), &Device::Cpu)?)
    }

    /// The position of a session's tile (names are unique: `TileSet::make_names_unique`).
    fn index_of(&self, item: &Item) -> usize {
        self.data
            .items
            .iter()
            .position(|i| i.name == item.name)
            .unwrap_or(self.data.items.len())
    }

    /// `items` through a static view, (B, 3, H, W) in [0, 1]; the training view's renders at
    /// full intensity are kept.
    fn static_batch(&mut self, items: &[Item], view: View, intensity: u32) -> Result<Tensor> {
        let keep = view == self.config.view && intensity == 100;
        let mut planes = Vec::with_capacity(items.len());
        for item in items {
            let index = self.index_of(item);
            let plane = match keep.then(|| self.rendered.get(index)).flatten() {
                Some(plane) => plane,
                None => {
                    let raw = self.data.at_intensity(item, intensity as f64)?;
                    let image = render_all(&raw, &self.data.camera, &[view])?.remove(0);
                    let hwc =
                        Tensor::from_vec(image.data, (image.height, image.width, 3), &Device::Cpu)?;
                    let plane = hwc.permute((2, 0, 1))?.contiguous()?;
                    if keep {
                        self.rendered.insert(index, plane.clone());
                    }
                    plane
                }
            };
            planes.push(plane);
        }
        Ok(Tensor::stack(&planes, 0)?)
    }

    /// Class indices (B) for classification, {0, 1} masks (B, 1, H, W) for segmentation.
    pub(super) fn targets(&self, items: &[Item]) -> Result<Tensor> {
        Ok(match self.data.task {
            Task::Classification => {
                let labels: Vec<u32> = items.iter().map(|i| i.label.unwrap_or(0) as u32).collect();
                Tensor::new(labels.as_slice(), &Device::Cpu)?
            }
            Task::Segmentation => {
                let (h, w) = (items[0].raw.height(), items[0].raw.width());
                let mut m = Vec::with_capacity(items.len() * h * w);
                for item in items {
                    m.extend(
                        item.mask
                            .as_deref()
                            .unwrap_or(&[])
                            .iter()
                            .map(|&v| v as f32),
                    );
                }
                Tensor::from_vec(m, (items.len(), 1, h, w), &Device::Cpu)?
            }
        })
    }
}
