//! Weights in: a model's starting point from a file its library wrote. Safetensors, or a
//! PyTorch checkpoint (`torch.save` of a state dict, or of `{"state_dict": ...}`) read with
//! candle's pickle reader. Names are matched strictly against the model's graph
//! (`spec::models`): a missing key, an unexpected one or a shape that differs is an error naming
//! it; only the task head may differ in shape, and is then left as initialised for the task.

use std::collections::HashMap;
use std::io::{BufReader, Cursor, Read};

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codecs::hex;
use crate::spec::limits::WEIGHTS_BYTES;
use crate::spec::models::{ModelKind, ParamSpec};
use crate::{Error, Result};

/// Where a session's starting weights came from, as its run records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsSource {
    /// The file's name (or the URL's last segment).
    pub name: String,
    /// The URL it was fetched from, where it was.
    pub url: Option<String>,
    pub sha256: String,
    pub bytes: u64,
}

/// A weights file's tensors by state-dict name, with its source.
pub struct WeightsFile {
    pub source: WeightsSource,
    pub tensors: HashMap<String, Tensor>,
}

impl WeightsFile {
    /// Reads `bytes` (named `name`, fetched from `url` where given): a zip archive is a
    /// PyTorch checkpoint, anything else must be safetensors.
    pub fn read(bytes: &[u8], name: &str, url: Option<&str>) -> Result<Self> {
        WEIGHTS_BYTES.check(bytes.len() as u64)?;
        let tensors = match bytes.starts_with(b"PK\x03\x04") {
            true => read_checkpoint(bytes, name)?,
            false => candle_core::safetensors::load_buffer(bytes, &Device::Cpu).map_err(|e| {
                Error::decode(
                    name,
                    format!("neither a PyTorch checkpoint (.pth, a zip) nor safetensors: {e}"),
                )
            })?,
        };
        let source = WeightsSource {
            name: name.to_string(),
            url: url.map(str::to_string),
            sha256: hex(&Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
        };
        Ok(Self { source, tensors })
    }
}

/// The state dict of a `torch.save` zip: the tensors `data.pkl` names, each read from its
/// storage entry.
fn read_checkpoint(bytes: &[u8], name: &str) -> Result<HashMap<String, Tensor>> {
    let bad = |e: &dyn std::fmt::Display| Error::decode(name, format!("PyTorch checkpoint: {e}"));
    // torch.save's archive starts the file (the offset detection misreads some of them)
    let config = zip::read::Config {
        archive_offset: zip::read::ArchiveOffset::Known(0),
    };
    let mut zip = zip::ZipArchive::with_config(config, Cursor::new(bytes)).map_err(|e| bad(&e))?;
    let pickle = zip
        .file_names()
        .filter_map(|f| f.ok().map(|f| f.into_owned()))
        .find(|f| f.ends_with("data.pkl"))
        .ok_or_else(|| bad(&"no data.pkl: not a torch.save file"))?;
    let dir = pickle.trim_end_matches(".pkl").to_string();
    let mut stack = Stack::empty();
    {
        let entry = zip.by_name(&pickle).map_err(|e| bad(&e))?;
        let mut reader = BufReader::new(entry.take(WEIGHTS_BYTES.max));
        stack.read_loop(&mut reader).map_err(|e| bad(&e))?;
    }
    let entries = match state_dict(stack.finalize().map_err(|e| bad(&e))?) {
        Some(entries) => entries,
        None => {
            return Err(bad(
                &"it holds no state dict (save model.state_dict(), not the model)",
            ))
        }
    };
    let mut tensors = HashMap::new();
    for (key, value) in entries {
        let info = value
            .into_tensor_info(key, std::path::Path::new(&dir))
            .map_err(|e| bad(&e))?;
        // a state dict's other entries (metadata) are not tensors
        let Some(info) = info else { continue };
        let layout = &info.layout;
        if !layout.is_contiguous() {
            return Err(bad(&format!(
                "tensor '{}' is stored strided; save contiguous tensors",
                info.name
            )));
        }
        let entry = zip.by_name(&info.path).map_err(|e| bad(&e))?;
        let start = layout.start_offset();
        let len = layout.shape().elem_count() * info.dtype.size_in_bytes();
        let mut data = Vec::with_capacity(len.min(WEIGHTS_BYTES.max as usize));
        entry
            .take((start + len) as u64)
            .read_to_end(&mut data)
            .map_err(|e| bad(&e))?;
        let stored = data
            .get(start..start + len)
            .ok_or_else(|| bad(&format!("tensor '{}' is cut short", info.name)))?;
        let tensor = Tensor::from_raw_buffer(stored, info.dtype, layout.dims(), &Device::Cpu)?;
        tensors.insert(info.name, tensor);
    }
    Ok(tensors)
}

/// The (name, tensor) pairs of a checkpoint's root object: a state dict (an OrderedDict, with
/// its `_metadata` built in), or the `state_dict` entry of a dict holding one.
fn state_dict(root: Object) -> Option<Vec<(Object, Object)>> {
    let root = match root {
        Object::Build { callable, args } => match *callable {
            Object::Reduce { callable, .. } => match *callable {
                Object::Class { module_name, .. } if module_name == "__torch__" => *args,
                _ => return None,
            },
            _ => return None,
        },
        other => other,
    };
    let Object::Dict(entries) = root else {
        return None;
    };
    let wrapped = entries.iter().position(|(k, v)| {
        *k == Object::Unicode("state_dict".into()) && matches!(v, Object::Dict(_))
    });
    match wrapped {
        Some(i) => match entries.into_iter().nth(i) {
            Some((_, Object::Dict(inner))) => Some(inner),
            _ => None,
        },
        None => Some(entries),
    }
}

/// What loading did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Tensors set from the file.
    pub set: usize,
    /// Where the task head was left as initialised (the file's was made for other classes),
    /// what the user is told.
    pub head_reinitialised: Option<String>,
}

/// Sets `vars` (a `kind` model for `classes`) from `file`, matching names strictly. PyTorch's
/// `num_batches_tracked` buffers are accepted beside each batch norm and not kept (the lab's
/// momentum does not use them).
pub fn load_strict(
    vars: &VarMap,
    kind: ModelKind,
    classes: usize,
    file: &WeightsFile,
) -> Result<Loaded> {
    let name = &file.source.name;
    let expected: Vec<ParamSpec> = kind.parameters(classes, kind.side_multiple().max(64))?;
    let known: HashMap<&str, &ParamSpec> = expected.iter().map(|p| (p.name.as_str(), p)).collect();
    let unexpected: Vec<&String> = file
        .tensors
        .keys()
        .filter(|k| !known.contains_key(k.as_str()) && !is_batches_tracked(k, &known))
        .collect();
    if !unexpected.is_empty() {
        let mut keys: Vec<&str> = unexpected.iter().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        return Err(Error::invalid(format!(
            "{name} holds {} key(s) a {} model does not have: {} (is it a {} checkpoint?)",
            keys.len(),
            kind.name(),
            list(&keys),
            kind.name()
        )));
    }
    let mut missing: Vec<&str> = expected
        .iter()
        .filter(|p| !file.tensors.contains_key(&p.name))
        .map(|p| p.name.as_str())
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(Error::invalid(format!(
            "{name} lacks {} key(s) of the {} model: {}",
            missing.len(),
            kind.name(),
            list(&missing)
        )));
    }
    let head = kind.task_head();
    let mut head_shape = None;
    for p in &expected {
        let t = &file.tensors[&p.name];
        if t.dims() != p.shape.as_slice() {
            if p.name.starts_with(head) {
                head_shape.get_or_insert((p.name.clone(), t.dims().to_vec()));
                continue;
            }
            return Err(Error::invalid(format!(
                "{name}: '{}' has shape {:?}, the {} model's is {:?}",
                p.name,
                t.dims(),
                kind.name(),
                p.shape
            )));
        }
    }
    let data = vars.data().lock().expect("var map lock");
    let mut set = 0;
    for p in &expected {
        if head_shape.is_some() && p.name.starts_with(head) {
            continue;
        }
        let var = data
            .get(&p.name)
            .ok_or_else(|| Error::invalid(format!("the model's weights lack '{}'", p.name)))?;
        var.set(&file.tensors[&p.name].to_dtype(DType::F32)?)?;
        set += 1;
    }
    let head_reinitialised = head_shape.map(|(key, dims)| {
        format!(
            "{name} was made for other classes ('{key}' has shape {dims:?}): the task head \
             '{}' starts afresh for {classes} class(es)",
            head.trim_end_matches('.')
        )
    });
    Ok(Loaded {
        set,
        head_reinitialised,
    })
}

/// `bn.num_batches_tracked` of a batch norm the model has.
fn is_batches_tracked(key: &str, known: &HashMap<&str, &ParamSpec>) -> bool {
    key.strip_suffix("num_batches_tracked")
        .is_some_and(|stem| known.contains_key(format!("{stem}running_mean").as_str()))
}

/// The first few of `keys`, and how many more.
fn list(keys: &[&str]) -> String {
    const SHOWN: usize = 8;
    let mut out = keys[..keys.len().min(SHOWN)].join(", ");
    if keys.len() > SHOWN {
        out += &format!(" and {} more", keys.len() - SHOWN);
    }
    out
}
