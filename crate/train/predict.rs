//! A forward pass for checking and for use: a model started from a weights file, its logits in
//! evaluation mode on a batch used as given (no normalisation, no processing), on the CPU or the
//! GPU backend.

use std::rc::Rc;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use super::backend::{choose, start_model_alone, BackendSpec, Choice, DeviceChoice};
use crate::gpu::Gpu;
use crate::model::{load_strict, seed_weights, Loaded, TaskModel, WeightsFile};
use crate::spec::models::ModelKind;
use crate::{Error, Result};

/// The logits of `kind` (for `classes`) with `weights` on `x` (B, 3, H, W), flattened: (B,
/// classes) for the classifiers, (B, 1, H, W) for the segmenters. Also what loading did and
/// where it ran.
pub async fn predict(
    kind: ModelKind,
    classes: usize,
    weights: &WeightsFile,
    x: &Tensor,
    (choice, adapter): (DeviceChoice, Option<Rc<Gpu>>),
) -> Result<(Vec<f32>, Loaded, Choice)> {
    let (b, c, h, w) = x.dims4()?;
    if c != 3 {
        return Err(Error::invalid(format!(
            "the input batch has {c} channels: the models take (B, 3, H, W)"
        )));
    }
    let vars = VarMap::new();
    TaskModel::new(kind, classes, &vars, &Device::Cpu)?;
    seed_weights(&vars, 0)?;
    let loaded = load_strict(&vars, kind, classes, weights)?;
    let spec = BackendSpec {
        model: kind,
        classes,
        batch: b,
        height: h,
        width: w,
        tiles: b,
        optimiser: Default::default(),
        backbone_lr: 0.0,
        forensics: None,
    };
    let (mut backend, chosen) = choose(choice, adapter, &spec).await?;
    start_model_alone(backend.as_mut(), &vars).await?;
    let logits = backend.predict(x).await?;
    Ok((logits, loaded, chosen))
}
