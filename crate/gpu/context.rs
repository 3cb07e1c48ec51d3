//! The GPU device: adapter discovery, error capture and asynchronous buffer readback.

use std::cell::{Cell, RefCell};
use std::sync::{Arc, Mutex};

use crate::{Error, Result};

/// A wgpu device with its queue and what the adapter told us about itself.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    /// Validation errors the device raised outside an explicit scope; reported by the next
    /// readback instead of panicking (wgpu's default handler panics natively).
    errors: Arc<Mutex<Vec<String>>>,
    /// Command buffers submitted and readbacks mapped, for the benchmark's per-step counts.
    submissions: Cell<u64>,
    readbacks: Cell<u64>,
    /// The readback staging buffer, kept for the next readback of the same size or smaller (a
    /// training step then creates no buffer).
    staging: RefCell<Option<wgpu::Buffer>>,
    /// Storage bytes created, and the largest buffer, since the last [`Gpu::take_tally`].
    tally: Cell<Tally>,
}

/// Storage buffers created over a span (see [`Gpu::take_tally`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub bytes: u64,
    pub largest: u64,
}

/// Work handed to the device so far (see [`Gpu::traffic`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub submissions: u64,
    pub readbacks: u64,
}

impl Gpu {
    /// Asks for an adapter and a device. `Ok(None)` means there is no usable adapter (no WebGPU in
    /// this browser, no driver natively): the caller falls back to the CPU.
    pub async fn request() -> Result<Option<Gpu>> {
        #[cfg(target_arch = "wasm32")]
        if !wgpu::util::is_browser_webgpu_supported().await {
            return Ok(None);
        }
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::all(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        let Ok(adapter) = instance.request_adapter(&options).await else {
            return Ok(None);
        };
        #[cfg_attr(not(target_arch = "wasm32"), allow(unused_mut))]
        let mut info = adapter.get_info();
        #[cfg(target_arch = "wasm32")]
        if info.name.is_empty() {
            info.name = browser_adapter_summary().await.unwrap_or_default();
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("lens2logit"),
                // the ISP's arenas hold ~30 tensors of B*H*W floats: take what the adapter offers
                required_limits: wgpu::Limits {
                    max_storage_buffer_binding_size: adapter
                        .limits()
                        .max_storage_buffer_binding_size,
                    max_buffer_size: adapter.limits().max_buffer_size,
                    ..wgpu::Limits::default()
                },
                ..Default::default()
            })
            .await
            .map_err(|e| {
                Error::Gpu(format!("the adapter '{}' refused a device: {e}", info.name))
            })?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut list) = sink.lock() {
                list.push(e.to_string());
            }
        }));
        Ok(Some(Gpu {
            device,
            queue,
            info,
            errors,
            submissions: Cell::new(0),
            readbacks: Cell::new(0),
            staging: RefCell::new(None),
            tally: Cell::new(Tally::default()),
        }))
    }

    /// The adapter's own description, e.g. "SwiftShader Device (Subzero)" or "llvmpipe".
    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    /// Whether the adapter renders on the CPU (SwiftShader, lavapipe/llvmpipe, WARP): correct, but
    /// no faster than the CPU backend, so training does not pick it by itself.
    pub fn is_software(&self) -> bool {
        let name = self.info.name.to_lowercase();
        self.info.device_type == wgpu::DeviceType::Cpu
            || ["swiftshader", "llvmpipe", "lavapipe", "warp", "software"]
                .iter()
                .any(|s| name.contains(s))
    }

    /// "WebGPU" in the browser, otherwise the native API (Vulkan, Metal, DX12).
    /// What the page and the CLI call the device: "WebGPU (SwiftShader Device)".
    pub fn label(&self) -> String {
        match self.adapter_name() {
            "" => self.api_name().to_string(),
            name => format!("{} ({name})", self.api_name()),
        }
    }

    pub fn api_name(&self) -> &'static str {
        match self.info.backend {
            wgpu::Backend::BrowserWebGpu => "WebGPU",
            wgpu::Backend::Vulkan => "Vulkan",
            wgpu::Backend::Metal => "Metal",
            wgpu::Backend::Dx12 => "DX12",
            wgpu::Backend::Gl => "OpenGL",
            wgpu::Backend::Noop => "no-op",
        }
    }

    /// Submits one command buffer (counted).
    pub fn submit(&self, encoder: wgpu::CommandEncoder) {
        self.submissions.set(self.submissions.get() + 1);
        self.queue.submit([encoder.finish()]);
    }

    /// Submissions and readbacks since the device was made, readbacks' own copies not counted
    /// as submissions.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            submissions: self.submissions.get(),
            readbacks: self.readbacks.get(),
        }
    }

    /// The storage buffers created since the last call (their bytes and the largest), starting
    /// the next span: what a graph of some shape takes, for a session's memory estimate.
    pub fn take_tally(&self) -> Tally {
        self.tally.take()
    }

    /// A storage buffer initialised with `data`.
    pub fn storage_buffer(&self, label: &str, data: &[f32]) -> wgpu::Buffer {
        let buffer = self.empty_storage_buffer(label, data.len());
        self.queue
            .write_buffer(&buffer, 0, bytemuck::cast_slice(data));
        buffer
    }

    /// A zeroed storage buffer of `len` f32 values that can be copied from.
    pub fn empty_storage_buffer(&self, label: &str, len: usize) -> wgpu::Buffer {
        // wgpu rejects zero-sized bindings; keep at least one element.
        let size = (len.max(1) * 4) as u64;
        let tally = self.tally.get();
        self.tally.set(Tally {
            bytes: tally.bytes + size,
            largest: tally.largest.max(size),
        });
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A uniform buffer holding a plain-old-data value.
    pub fn uniform_buffer<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: std::mem::size_of::<T>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue
            .write_buffer(&buffer, 0, bytemuck::bytes_of(value));
        buffer
    }

    /// Copies the first `len` f32 values of a storage buffer back to the CPU.
    pub async fn read_f32(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        Ok(self.read_regions(&[(buffer, 0, len)]).await?.remove(0))
    }

    /// Copies regions (buffer, first f32, count) back to the CPU with one staging buffer and one
    /// mapping. Never blocks the browser: on the web the mapping resolves through the event loop;
    /// natively we poll.
    pub async fn read_regions(
        &self,
        regions: &[(&wgpu::Buffer, usize, usize)],
    ) -> Result<Vec<Vec<f32>>> {
        let total: usize = regions.iter().map(|r| r.2).sum();
        let size = (total.max(1) * 4) as u64;
        // taken out while mapped: a readback started meanwhile makes its own
        let staging = match self.staging.borrow_mut().take() {
            Some(buffer) if buffer.size() >= size => buffer,
            _ => self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        self.readbacks.set(self.readbacks.get() + 1);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        let mut at = 0u64;
        for &(buffer, first, len) in regions {
            encoder.copy_buffer_to_buffer(
                buffer,
                (first * 4) as u64,
                &staging,
                at,
                (len * 4) as u64,
            );
            at += (len * 4) as u64;
        }
        self.queue.submit([encoder.finish()]);
        let (sender, receiver) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, ..size, move |result| {
            let _ = sender.send(result);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the device failed: {e}")))?;
        let mapped = receiver
            .await
            .map_err(|_| Error::Gpu("the device was lost before the readback finished".into()))?;
        self.take_errors()?;
        mapped.map_err(|e| Error::Gpu(format!("reading results back failed: {e}")))?;
        let values = {
            let view = staging
                .get_mapped_range(..size)
                .map_err(|e| Error::Gpu(format!("reading results back failed: {e}")))?;
            let all = bytemuck::cast_slice::<u8, f32>(&view);
            let mut start = 0;
            regions
                .iter()
                .map(|r| {
                    let part = all[start..start + r.2].to_vec();
                    start += r.2;
                    part
                })
                .collect()
        };
        staging.unmap();
        *self.staging.borrow_mut() = Some(staging);
        Ok(values)
    }

    /// Fails with the first validation error the device reported since the last check.
    pub fn take_errors(&self) -> Result<()> {
        let mut list = self
            .errors
            .lock()
            .map_err(|_| Error::Gpu("error log poisoned".into()))?;
        let first = list.drain(..).next();
        first.map_or(Ok(()), |message| Err(Error::Gpu(message)))
    }
}

/// Chromium leaves `GPUAdapterInfo.description` empty unless developer features are on, but
/// `vendor` and `architecture` ("google", "swiftshader") are there; wgpu does not expose them, so
/// ask the browser directly.
#[cfg(target_arch = "wasm32")]
async fn browser_adapter_summary() -> Option<String> {
    use wasm_bindgen::JsCast;

    let get = |object: &wasm_bindgen::JsValue, key: &str| {
        js_sys::Reflect::get(object, &wasm_bindgen::JsValue::from_str(key)).ok()
    };
    let navigator = get(&js_sys::global(), "navigator")?;
    let gpu = get(&navigator, "gpu")?;
    let request = get(&gpu, "requestAdapter")?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    let promise = request
        .call0(&gpu)
        .ok()?
        .dyn_into::<js_sys::Promise>()
        .ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let info = get(&adapter, "info")?;
    let parts: Vec<String> = ["vendor", "architecture"]
        .iter()
        .filter_map(|key| get(&info, key)?.as_string())
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}
