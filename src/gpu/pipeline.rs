//! Shader sources and the pipeline cache: every (shader, entry point, override constants)
//! pipeline is built once per device.

use super::Gpu;
use std::sync::Arc;

/// One WGSL file per kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Embed,
    LayerNorm,
    Matmul,
    MatmulTexture,
    Attention,
    AttentionTexture,
    AttentionBackward,
    AttentionAnalysis,
    Activation,
    Loss,
    Optimizer,
    Segment,
    Pool,
    VocabLoss,
    Contrastive,
}

/// Helpers shared by the row kernels (workgroup reductions), prepended to their sources
/// (and to the attention backward's, the pooling's and the contrastive loss's, for their sums).
const ROW_COMMON: &str = include_str!("../../shaders/row_common.wgsl");
/// The fused attention forward, prepended to its texture variant (which needs SUBGROUP).
const ATTENTION: &str = include_str!("../../shaders/attention.wgsl");
/// erf, for GELU forward and backward.
const ERF: &str = include_str!("../../shaders/erf.wgsl");
/// The matmul epilogue (bias, GELU, tanh, ReLU), prepended to both matmul variants.
const MATMUL_COMMON: &str = include_str!("../../shaders/matmul_common.wgsl");

impl Shader {
    pub const ALL: [Shader; 15] = [
        Shader::Embed,
        Shader::LayerNorm,
        Shader::Matmul,
        Shader::MatmulTexture,
        Shader::Attention,
        Shader::AttentionTexture,
        Shader::AttentionBackward,
        Shader::AttentionAnalysis,
        Shader::Activation,
        Shader::Loss,
        Shader::Optimizer,
        Shader::Segment,
        Shader::Pool,
        Shader::VocabLoss,
        Shader::Contrastive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shader::Embed => "embed.wgsl",
            Shader::LayerNorm => "layernorm.wgsl",
            Shader::Matmul => "matmul.wgsl",
            Shader::MatmulTexture => "matmul_texture.wgsl",
            Shader::Attention => "attention.wgsl",
            Shader::AttentionTexture => "attention_texture.wgsl",
            Shader::AttentionBackward => "attention_backward.wgsl",
            Shader::AttentionAnalysis => "attention_analysis.wgsl",
            Shader::Activation => "activation.wgsl",
            Shader::Loss => "loss.wgsl",
            Shader::Optimizer => "optimizer.wgsl",
            Shader::Segment => "segment.wgsl",
            Shader::Pool => "pool.wgsl",
            Shader::VocabLoss => "vocab_loss.wgsl",
            Shader::Contrastive => "contrastive.wgsl",
        }
    }

    /// The full WGSL source as compiled (with shared helpers prepended where used).
    pub fn source(self) -> String {
        match self {
            Shader::Embed => format!("{ROW_COMMON}\n{}", include_str!("../../shaders/embed.wgsl")),
            Shader::LayerNorm => {
                format!(
                    "{ROW_COMMON}\n{}",
                    include_str!("../../shaders/layernorm.wgsl")
                )
            }
            Shader::Matmul => {
                format!(
                    "{ERF}\n{MATMUL_COMMON}\n{}",
                    include_str!("../../shaders/matmul.wgsl")
                )
            }
            Shader::MatmulTexture => {
                let src = include_str!("../../shaders/matmul_texture.wgsl");
                format!("{ERF}\n{MATMUL_COMMON}\n{src}")
            }
            Shader::Attention => ATTENTION.to_string(),
            Shader::AttentionTexture => {
                format!(
                    "{ATTENTION}\n{}",
                    include_str!("../../shaders/attention_texture.wgsl")
                )
            }
            Shader::AttentionBackward => format!(
                "{ROW_COMMON}\n{}",
                include_str!("../../shaders/attention_backward.wgsl")
            ),
            Shader::AttentionAnalysis => {
                include_str!("../../shaders/attention_analysis.wgsl").to_string()
            }
            Shader::Activation => {
                format!("{ERF}\n{}", include_str!("../../shaders/activation.wgsl"))
            }
            Shader::Loss => include_str!("../../shaders/loss.wgsl").to_string(),
            Shader::Optimizer => include_str!("../../shaders/optimizer.wgsl").to_string(),
            Shader::Segment => include_str!("../../shaders/segment.wgsl").to_string(),
            Shader::Pool => format!("{ROW_COMMON}\n{}", include_str!("../../shaders/pool.wgsl")),
            Shader::VocabLoss => include_str!("../../shaders/vocab_loss.wgsl").to_string(),
            Shader::Contrastive => format!(
                "{ROW_COMMON}\n{}",
                include_str!("../../shaders/contrastive.wgsl")
            ),
        }
    }

    /// Kernels whose every index is guarded in the shader itself, so wgpu's extra bounds
    /// checks can be left out (`create_shader_module_trusted`). Opt out with
    /// `HEADROOM_CHECKED_SHADERS=1`.
    fn bounds_proven(self) -> bool {
        matches!(
            self,
            Shader::Matmul | Shader::MatmulTexture | Shader::Attention | Shader::AttentionTexture
        )
    }
}

impl Gpu {
    fn module(&self, shader: Shader) -> wgpu::ShaderModule {
        let mut modules = self.modules.lock().unwrap();
        modules
            .entry(shader)
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(shader.name()),
                    source: wgpu::ShaderSource::Wgsl(shader.source().into()),
                };
                let checked = std::env::var_os("HEADROOM_CHECKED_SHADERS").is_some();
                if shader.bounds_proven() && !checked {
                    // SAFETY: every buffer index in these shaders is guarded against the
                    // lengths passed in their parameters, and every loop has a bound derived
                    // from those parameters; the kernel tests poison buffers to catch misses.
                    unsafe {
                        self.device.create_shader_module_trusted(
                            desc,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    }
                } else {
                    self.device.create_shader_module(desc)
                }
            })
            .clone()
    }

    /// The compute pipeline for `entry` of `shader` specialised with `constants`; built once.
    pub fn pipeline(
        &self,
        shader: Shader,
        entry: &str,
        constants: &[(&str, f64)],
    ) -> Arc<wgpu::ComputePipeline> {
        let mut key = format!("{}:{entry}", shader.name());
        for (k, v) in constants {
            key.push_str(&format!(":{k}={v}"));
        }
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return p.clone();
        }
        let module = self.module(shader);
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&key),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        let pipeline = Arc::new(pipeline);
        self.pipelines.lock().unwrap().insert(key, pipeline.clone());
        pipeline
    }

    /// A bind group for group 0 of `pipeline`, binding `resources` at 0, 1, 2, ...
    pub fn bind(
        &self,
        pipeline: &wgpu::ComputePipeline,
        resources: &[wgpu::BindingResource<'_>],
    ) -> wgpu::BindGroup {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry> = resources
            .iter()
            .enumerate()
            .map(|(i, r)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: r.clone(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        })
    }

    /// A bind group for group 0 of `pipeline` with explicit binding numbers, for entry points
    /// that use only some of their module's bindings.
    pub fn bind_at(
        &self,
        pipeline: &wgpu::ComputePipeline,
        resources: &[(u32, wgpu::BindingResource<'_>)],
    ) -> wgpu::BindGroup {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry> = resources
            .iter()
            .map(|(i, r)| wgpu::BindGroupEntry {
                binding: *i,
                resource: r.clone(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        })
    }
}
