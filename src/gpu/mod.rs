//! The GPU context: adapter choice, device with the adapter's own limits, buffers, the pipeline
//! cache and the timestamp profiler. Kernels (src/kernels) are the only dispatchers.

mod adapter;
mod buffer;
mod pipeline;
pub mod profiler;

pub use adapter::{describe_adapter, list_adapters, AdapterChoice};
pub use buffer::Tensor;
pub use pipeline::Shader;
pub use profiler::{KernelStat, ProfileReport};

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Kernel variants and sizes chosen once per adapter at start-up.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// The adapter runs on the CPU (lavapipe, llvmpipe, WARP, SwiftShader).
    pub cpu: bool,
    /// Smallest subgroup size the adapter reports (8 on lavapipe, 32 on NVIDIA, 32/64 on AMD).
    pub subgroup_size: u32,
    /// `SUBGROUP` was enabled on the device.
    pub subgroups: bool,
    /// Workgroup size of the row kernels (embedding, LayerNorm, pooling): 8 on CPU adapters,
    /// one lavapipe subgroup, where each extra lane's share of a 384-wide row buys less than the
    /// reduction's barriers cost (BENCHMARKS.md, step 3); 128 on GPUs.
    pub row_wg: u32,
    /// Queries per workgroup (and keys per shared tile) in the fused attention kernel.
    pub attn_block: u32,
    /// Matmul variant.
    pub matmul: MatmulVariant,
    /// Attention backward variant (`HEADROOM_ATTN_BWD=storage|texture|tiled` overrides it; a
    /// variant the shapes or the adapter cannot run falls back to `Storage`).
    pub attn_bwd: AttnBwdVariant,
    /// Texture matmul tile: (row groups per workgroup, rows per subgroup), each lane owning 4
    /// output columns; measured best on lavapipe (BENCHMARKS.md). Override with
    /// `HEADROOM_TEX_RG` (1, 2, 4, 8) and `HEADROOM_TEX_ROWS` (8, 16, 24, 32) to experiment.
    pub texture_tile: (u32, u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulVariant {
    /// Workgroup-memory tiled, register-blocked: for real GPUs.
    Tiled,
    /// Operands read through `textureLoad` from rgba32float textures, A shared across the
    /// subgroup with `subgroupBroadcast` when subgroups of 8 are available: for lavapipe.
    Texture,
}

/// How the fused attention backward reads its operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttnBwdVariant {
    /// One invocation per query / key, rows read straight from storage buffers: the fallback.
    Storage,
    /// As `Storage` with Q|K|V and dO read as vec4 texels: for CPU adapters (lavapipe).
    Texture,
    /// FlashAttention-2 style: tiles staged in workgroup memory, several lanes per query / key
    /// summing with subgroup shuffles: for GPUs with SUBGROUP.
    Tiled,
}

impl Tuning {
    fn for_adapter(info: &wgpu::AdapterInfo, features: wgpu::Features) -> Tuning {
        let cpu = info.device_type == wgpu::DeviceType::Cpu;
        let subgroups = features.contains(wgpu::Features::SUBGROUP);
        let sg8 = subgroups && info.subgroup_min_size == 8 && info.subgroup_max_size == 8;
        let mut t = Tuning {
            cpu,
            subgroup_size: info.subgroup_min_size.max(1),
            subgroups,
            row_wg: if cpu { 8 } else { 128 },
            attn_block: if cpu { 16 } else { 64 },
            matmul: if cpu && sg8 {
                MatmulVariant::Texture
            } else {
                MatmulVariant::Tiled
            },
            attn_bwd: if cpu {
                AttnBwdVariant::Texture
            } else if subgroups {
                AttnBwdVariant::Tiled
            } else {
                AttnBwdVariant::Storage
            },
            texture_tile: texture_tile_from_env(),
        };
        if let Ok(v) = std::env::var("HEADROOM_ATTN_BWD") {
            match v.as_str() {
                "storage" => t.attn_bwd = AttnBwdVariant::Storage,
                "texture" => t.attn_bwd = AttnBwdVariant::Texture,
                "tiled" => t.attn_bwd = AttnBwdVariant::Tiled,
                _ => {}
            }
        }
        if let Ok(v) = std::env::var("HEADROOM_MATMUL") {
            match v.as_str() {
                "tiled" => t.matmul = MatmulVariant::Tiled,
                "texture" => t.matmul = MatmulVariant::Texture,
                _ => {}
            }
        }
        t
    }
}

fn texture_tile_from_env() -> (u32, u32) {
    let env = |name: &str, allowed: &[u32], default: u32| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| allowed.contains(v))
            .unwrap_or(default)
    };
    (
        env("HEADROOM_TEX_RG", &[1, 2, 4, 8], 4),
        env("HEADROOM_TEX_ROWS", &[8, 16, 24, 32], 24),
    )
}

/// The device and everything built on it. Cheap to share by reference.
pub struct Gpu {
    pub info: wgpu::AdapterInfo,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    pub tuning: Tuning,
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    profiler: Mutex<Option<profiler::Profiler>>,
}

impl Gpu {
    /// Chooses an adapter (see [`AdapterChoice`]) and opens a device with its own limits and the
    /// optional features TIMESTAMP_QUERY, SHADER_F16 and SUBGROUP where present.
    pub fn new(choice: &AdapterChoice) -> Result<Gpu> {
        let adapter = adapter::choose(choice)?;
        let info = adapter.get_info();
        let wanted =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP;
        let features = adapter.features() & wanted;
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("headroom"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Adapter(format!("{}: could not open the device: {e}", info.name)))?;
        let tuning = Tuning::for_adapter(&info, features);
        Ok(Gpu {
            info,
            device,
            queue,
            limits,
            features,
            tuning,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            profiler: Mutex::new(None),
        })
    }

    /// One line naming the adapter and backend in use.
    pub fn describe(&self) -> String {
        describe_adapter(&self.info)
    }

    /// Largest storage binding in bytes.
    pub fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Turns on per-kernel GPU timing (needs TIMESTAMP_QUERY).
    pub fn enable_profiling(&self) -> Result<()> {
        if !self.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(Error::Adapter(format!(
                "{}: the adapter has no TIMESTAMP_QUERY feature, so --profile cannot time kernels",
                self.info.name
            )));
        }
        *self.profiler.lock().unwrap() = Some(profiler::Profiler::new(self));
        Ok(())
    }

    pub fn profiling(&self) -> bool {
        self.profiler.lock().unwrap().is_some()
    }

    /// Per-kernel totals gathered since profiling was enabled.
    pub fn profile_report(&self) -> Option<ProfileReport> {
        self.profiler.lock().unwrap().as_ref().map(|p| p.report())
    }

    /// Starts recording a sequence of dispatches.
    pub fn recorder(&self) -> Recorder<'_> {
        Recorder::new(self)
    }

    /// Blocks until all submitted work is done.
    pub fn wait(&self) {
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
    }
}

/// Records dispatches into one command encoder; each dispatch is its own compute pass so that
/// the profiler can time it. `finish` submits.
pub struct Recorder<'g> {
    gpu: &'g Gpu,
    encoder: Option<wgpu::CommandEncoder>,
    /// (label, query index) of each timed dispatch in the current encoder.
    timed: Vec<(&'static str, u32)>,
}

impl<'g> Recorder<'g> {
    fn new(gpu: &'g Gpu) -> Self {
        let encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("headroom.recorder"),
            });
        Recorder {
            gpu,
            encoder: Some(encoder),
            timed: Vec::new(),
        }
    }

    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    pub fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.encoder.as_mut().expect("recorder already finished")
    }

    /// Dispatches `total` workgroups of `pipeline`, laid out as (x, y) with x within the
    /// per-dimension limit; shaders rebuild the flat index as `wid.x + wid.y * nwg.x` and
    /// ignore indices at or past `total`.
    pub fn dispatch(
        &mut self,
        label: &'static str,
        pipeline: &wgpu::ComputePipeline,
        bind_group: &wgpu::BindGroup,
        total: u32,
    ) {
        if total == 0 {
            return;
        }
        let (x, y) = split_groups(total, self.gpu.limits.max_compute_workgroups_per_dimension);
        let gpu = self.gpu;
        let room = gpu
            .profiler
            .lock()
            .unwrap()
            .as_ref()
            .map(|p| p.has_room(self.timed.len()));
        if room == Some(false) {
            self.flush();
        }
        if room.is_some() && gpu.tuning.cpu {
            // CPU adapters time each dispatch by the host clock in a submission of its own
            // (see `submit_encoder`): what was recorded before it runs first, untimed.
            self.flush();
            gpu.wait();
        }
        let base = 2 * self.timed.len() as u32;
        let guard = gpu.profiler.lock().unwrap();
        {
            let timestamp_writes = guard.as_ref().map(|p| wgpu::ComputePassTimestampWrites {
                query_set: p.query_set(),
                beginning_of_pass_write_index: Some(base),
                end_of_pass_write_index: Some(base + 1),
            });
            let encoder = self.encoder.as_mut().expect("recorder already finished");
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind_group, &[]);
            pass.dispatch_workgroups(x, y, 1);
        }
        let profiling = guard.is_some();
        drop(guard);
        if profiling {
            self.timed.push((label, base));
            if gpu.tuning.cpu {
                self.flush();
            }
        }
    }

    /// Copies rows of a buffer into a texture (`copy_buffer_to_texture`), named for
    /// `--profile` like a dispatch. Profiling on a CPU adapter times it alone by the host
    /// clock; on GPUs it is recorded untimed (compute-pass timestamps do not cover copies).
    pub fn copy_buffer_to_texture(
        &mut self,
        label: &'static str,
        source: wgpu::TexelCopyBufferInfo<'_>,
        destination: wgpu::TexelCopyTextureInfo<'_>,
        size: wgpu::Extent3d,
    ) {
        let gpu = self.gpu;
        let host_timed = gpu.tuning.cpu && gpu.profiling();
        if host_timed {
            self.flush();
            gpu.wait();
        }
        let started = std::time::Instant::now();
        self.encoder()
            .copy_buffer_to_texture(source, destination, size);
        if host_timed {
            self.flush();
            gpu.wait();
            if let Some(p) = gpu.profiler.lock().unwrap().as_mut() {
                p.record_host(label, started.elapsed().as_nanos() as f64);
            }
        }
    }

    /// Submits what was recorded so far and starts a new encoder.
    pub fn flush(&mut self) {
        let encoder = self.encoder.take().expect("recorder already finished");
        self.submit_encoder(encoder);
        self.encoder = Some(self.gpu.device.create_command_encoder(
            &wgpu::CommandEncoderDescriptor {
                label: Some("headroom.recorder"),
            },
        ));
    }

    fn submit_encoder(&mut self, mut encoder: wgpu::CommandEncoder) {
        let timed = std::mem::take(&mut self.timed);
        let mut guard = self.gpu.profiler.lock().unwrap();
        match guard.as_mut() {
            Some(p) if !timed.is_empty() => {
                p.resolve(&mut encoder, timed.len() as u32);
                let submitted = std::time::Instant::now();
                self.gpu.queue.submit([encoder.finish()]);
                // CPU adapters (lavapipe) write the end timestamp of many a dispatch long before
                // it has run (in `score`, GELU and LayerNorm came out at 30-40 µs, hundreds of
                // GB/s on two cores), so there the one dispatch of this submission is timed by
                // the host clock, from submission to completion (collect waits for it).
                let host_clock = self.gpu.tuning.cpu.then_some(submitted);
                p.collect(self.gpu, &timed, host_clock);
            }
            _ => {
                self.gpu.queue.submit([encoder.finish()]);
            }
        }
    }

    /// Submits everything recorded. Does not wait.
    pub fn finish(mut self) {
        if let Some(encoder) = self.encoder.take() {
            self.submit_encoder(encoder);
        }
    }
}

impl Drop for Recorder<'_> {
    fn drop(&mut self) {
        if let Some(encoder) = self.encoder.take() {
            self.submit_encoder(encoder);
        }
    }
}

/// Lays `total` workgroups out as (x, y) with x ≤ `max_x`.
pub fn split_groups(total: u32, max_x: u32) -> (u32, u32) {
    let max_x = max_x.max(1);
    if total <= max_x {
        (total, 1)
    } else {
        let y = total.div_ceil(max_x);
        let x = total.div_ceil(y);
        (x, y)
    }
}
