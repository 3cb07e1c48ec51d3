//! The training view's renders, one per tile, kept within a memory budget: every step and every
//! validation reuses them, and when a dataset's renders outgrow the budget the least recently
//! used go first (re-rendered when their tile comes up again).

use std::collections::HashMap;

use candle_core::Tensor;

/// The renders' share of a session's memory: 512 MiB holds ~680 tiles of 256 px.
pub const RENDER_BUDGET: usize = 512 << 20;

pub struct RenderCache {
    budget: usize,
    used: usize,
    clock: u64,
    /// Tile index -> (render, last use).
    entries: HashMap<usize, (Tensor, u64)>,
}

fn bytes(t: &Tensor) -> usize {
    t.elem_count() * t.dtype().size_in_bytes()
}

impl RenderCache {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            used: 0,
            clock: 0,
            entries: HashMap::new(),
        }
    }

    pub fn get(&mut self, index: usize) -> Option<Tensor> {
        self.clock += 1;
        let (render, last) = self.entries.get_mut(&index)?;
        *last = self.clock;
        Some(render.clone())
    }

    /// Keeps `render`, evicting the least recently used until it fits (one larger than the whole
    /// budget is not kept).
    pub fn insert(&mut self, index: usize, render: Tensor) {
        let size = bytes(&render);
        if size > self.budget {
            return;
        }
        if let Some((old, _)) = self.entries.remove(&index) {
            self.used -= bytes(&old);
        }
        while self.used + size > self.budget {
            let Some((&oldest, _)) = self.entries.iter().min_by_key(|(_, (_, last))| *last) else {
                break;
            };
            if let Some((old, _)) = self.entries.remove(&oldest) {
                self.used -= bytes(&old);
            }
        }
        self.clock += 1;
        self.used += size;
        self.entries.insert(index, (render, self.clock));
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn the_least_recently_used_render_goes_first_and_the_budget_holds() {
        let render = || Tensor::zeros((3, 4, 4), DType::F32, &Device::Cpu).unwrap();
        let size = 3 * 4 * 4 * 4;
        let mut cache = RenderCache::new(2 * size);
        cache.insert(0, render());
        cache.insert(1, render());
        assert!(cache.get(0).is_some()); // 1 is now the least recently used
        cache.insert(2, render());
        assert!(cache.get(1).is_none());
        assert!(cache.get(0).is_some() && cache.get(2).is_some());
        assert_eq!(cache.bytes(), 2 * size);
        cache.insert(2, render()); // replacing keeps the count right
        assert_eq!(cache.bytes(), 2 * size);
        let mut tiny = RenderCache::new(size - 1);
        tiny.insert(0, render());
        assert!(tiny.get(0).is_none() && tiny.bytes() == 0);
    }
}
