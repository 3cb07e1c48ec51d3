//! What a session needs in memory, estimated before it starts, so that one that would not fit is
//! refused with the largest batch that does instead of killing the page's worker.
//!
//! The model is traced once at a small size: the tensors its training forward keeps for the
//! backward pass (candle's graph from the loss) scale with the tile's area and the batch. The
//! backward pass adds gradients of about the same size for a moment (candle sums each into a fresh
//! tensor), and the allocator's fragmentation more; `HEADROOM` covers both (calibrated on the page:
//! a 256 px small U-Net step with batch 8 grows the module's memory to 1178 MB).

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;

use crate::model::TaskModel;
use crate::spec::models::{ModelKind, NormMode};
use crate::{Error, Result};

/// The page's budget: wasm32 addresses 4 GiB, of which the module, its tiles, the page's other
/// state and the allocator's free lists need a share.
pub const WASM_BUDGET: u64 = 3 << 30;
/// Whose budget [`WASM_BUDGET`] is, in messages.
pub const PAGE: &str = "this page can use";

/// Side of the tracing input: every model's downsampling divides it.
const PROBE: usize = 64;
/// Kept activations -> peak of a step: the gradients in flight, conv scratch and fragmentation.
const HEADROOM: f64 = 2.0;

/// A session's memory in bytes: `fixed + per_tile * batch`.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    fixed: u64,
    per_tile: u64,
}

impl Estimate {
    /// `model` on tiles of `(height, width)`, with `tiles` tiles loaded (raw and one rendered
    /// view each).
    pub fn of(
        model: ModelKind,
        classes: usize,
        (h, w): (usize, usize),
        tiles: usize,
    ) -> Result<Self> {
        let kept = |batch: usize| -> Result<(u64, u64)> {
            let vars = VarMap::new();
            let net = TaskModel::new(model, classes, &vars, &Device::Cpu)?;
            let x = Tensor::zeros((batch, 3, PROBE, PROBE), DType::F32, &Device::Cpu)?;
            let out = net.forward(&x, NormMode::TRAIN)?.sum_all()?;
            let params: usize = vars.all_vars().iter().map(|v| v.elem_count()).sum();
            let nodes: usize = out
                .sorted_nodes()
                .iter()
                .filter(|t| !t.is_variable())
                .map(|t| t.elem_count())
                .sum();
            Ok((nodes as u64, params as u64))
        };
        let ((one, params), (two, _)) = (kept(1)?, kept(2)?);
        let area = (h * w) as f64 / (PROBE * PROBE) as f64;
        let per_tile = (two.saturating_sub(one) as f64 * area * 4.0 * HEADROOM) as u64;
        // weights, their gradients and AdamW's two moments; each tile raw, and the renders (f32)
        let pixels = tiles as u64 * (h * w) as u64;
        let renders = (pixels * 3 * 4).min(super::render_cache::RENDER_BUDGET as u64);
        let fixed = params * 4 * 4 + pixels * 4 + renders;
        Ok(Self { fixed, per_tile })
    }

    /// `fixed + per_tile * batch` bytes, measured some other way (the GPU's graph).
    pub fn new(fixed: u64, per_tile: u64) -> Self {
        Self { fixed, per_tile }
    }

    pub fn bytes(&self, batch: usize) -> u64 {
        self.fixed + self.per_tile * batch as u64
    }

    /// The largest batch within `budget` (0 where not even one tile fits).
    pub fn largest_batch(&self, budget: u64) -> usize {
        (budget.saturating_sub(self.fixed) / self.per_tile.max(1)) as usize
    }

    /// An error naming the largest batch that fits where `batch` does not; `place` says whose
    /// budget it is ("this page can use"), `one_buffer` that the estimate is of the largest
    /// single buffer.
    pub fn check(
        &self,
        model: ModelKind,
        (h, w): (usize, usize),
        batch: usize,
        (budget, place, one_buffer): (u64, &str, bool),
    ) -> Result<()> {
        let need = self.bytes(batch);
        if need <= budget {
            return Ok(());
        }
        let gb = |b: u64| b as f64 / 1e9;
        let advice = match self.largest_batch(budget) {
            0 => "use smaller tiles or fewer of them".to_string(),
            n => format!("use a batch of at most {n}, or smaller tiles"),
        };
        Err(Error::invalid(format!(
            "a {} session on {h}x{w} px tiles with batch {batch} needs {}about {:.2} GB, more \
             than the {:.2} GB {place}: {advice}",
            model.name(),
            if one_buffer { "a buffer of " } else { "" },
            gb(need),
            gb(budget)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_grow_with_batch_and_area_and_name_the_batch_that_fits() {
        let small = Estimate::of(ModelKind::UNetSmall, 1, (128, 128), 32).unwrap();
        let large = Estimate::of(ModelKind::UNetSmall, 1, (256, 256), 32).unwrap();
        assert!(large.per_tile > 3 * small.per_tile && large.per_tile < 5 * small.per_tile);
        // the page's measured 1178 MB for batch 8 at 256 px lies below the estimate
        let need = large.bytes(8);
        assert!(need > 1_178_000_000 && need < 3 * 1_178_000_000, "{need}");
        assert!(large
            .check(
                ModelKind::UNetSmall,
                (256, 256),
                8,
                (WASM_BUDGET, PAGE, false)
            )
            .is_ok());
        let err = large
            .check(
                ModelKind::UNetSmall,
                (256, 256),
                64,
                (WASM_BUDGET, PAGE, false),
            )
            .unwrap_err()
            .to_string();
        let fits = large.largest_batch(WASM_BUDGET);
        assert!((8..64).contains(&fits));
        assert!(
            err.contains(&format!("at most {fits}")) && err.contains("unet_small"),
            "{err}"
        );
        assert!(large.bytes(fits) <= WASM_BUDGET && large.bytes(fits + 1) > WASM_BUDGET);
    }
}
