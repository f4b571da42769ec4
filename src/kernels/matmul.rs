//! `shaders/matmul.wgsl` (tiled, for GPUs) and `shaders/matmul_texture.wgsl` (texture loads and
//! subgroup broadcasts, for lavapipe): y = act(x·Wᵀ + b) in PyTorch Linear layout.

use crate::error::Result;
use crate::gpu::{Gpu, MatmulVariant, Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    lda: u32,
    ldc: u32,
    tiles_n: u32,
    total: u32,
    ldb: u32,
    gather: [u32; 4],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct TexParams {
    m: u32,
    n: u32,
    k4: u32,
    ldc: u32,
    tiles_n: u32,
    total: u32,
    gather: [u32; 6],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PackParams {
    rows: u32,
    k: u32,
    k4: u32,
    lda: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    None = 0,
    Gelu = 1,
    Tanh = 2,
    Relu = 3,
    /// GELU's tanh approximation (`gelu_new`).
    GeluTanh = 4,
}

/// A weight matrix [N, K] in PyTorch Linear layout, as a storage buffer (the master copy, which
/// the optimizer updates in place) and, where the adapter can use the texture variant, also as
/// an rgba32float texture of ceil(K/4) texels per row and, for models that run the backward
/// pass, as a texture of Wᵀ for input gradients. Textures are packed from the buffer on the
/// device; [`LinearWeight::refresh`] re-packs them after the buffer changes. A clone shares
/// the buffer and textures.
#[derive(Clone)]
pub struct LinearWeight {
    pub buffer: Tensor,
    texture: Option<wgpu::TextureView>,
    texture_t: Option<wgpu::TextureView>,
    pub n: u32,
    pub k: u32,
}

/// Whether the texture variant can run on this adapter at all.
pub fn texture_variant_available(gpu: &Gpu) -> bool {
    gpu.tuning.subgroups && gpu.info.subgroup_min_size == 8 && gpu.info.subgroup_max_size == 8
}

/// Whether `rows` rows of `k` elements fit one texture.
pub(crate) fn fits_texture(gpu: &Gpu, rows: u32, k: u32) -> bool {
    let max = gpu.limits.max_texture_dimension_2d;
    rows >= 1 && rows <= max && k >= 1 && padded_width(k) <= max
}

/// Texels per row of a packed texture of rows of `k` elements: ceil(k/4), rounded up to a
/// multiple of 4 texels and then to an odd multiple, so that a row spans an odd number of
/// 64-byte cache lines. The kernels read only the first ceil(k/4). With an even number (K = 768:
/// 48 lines, K = 3072: 192) the same texel column of consecutive rows fell into a few cache
/// sets of the CPU running lavapipe, which evicted each other: the matmul at K = 3072 ran 1.5x
/// faster padded (BENCHMARKS.md).
pub(crate) fn padded_width(k: u32) -> u32 {
    let w = k.div_ceil(4).next_multiple_of(4);
    if (w / 4).is_multiple_of(2) {
        w + 4
    } else {
        w
    }
}

fn texture(gpu: &Gpu, label: &str, rows: u32, k: u32) -> wgpu::TextureView {
    gpu.device
        .create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width: padded_width(k),
                height: rows,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba32Float,
            // Written by pack_rows (a copy, or a storage-texture store) and read by the texture
            // kernels as a storage texture.
            usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        })
        .create_view(&Default::default())
}

impl LinearWeight {
    /// W for the forward pass.
    pub fn new(gpu: &Gpu, label: &str, data: &[f32], n: usize, k: usize) -> Result<LinearWeight> {
        LinearWeight::create(gpu, label, data, n, k, false)
    }

    /// W for a model that also runs the backward pass: input gradients dX = dY·W read Wᵀ.
    pub fn with_transpose(
        gpu: &Gpu,
        label: &str,
        data: &[f32],
        n: usize,
        k: usize,
    ) -> Result<LinearWeight> {
        LinearWeight::create(gpu, label, data, n, k, true)
    }

    fn create(
        gpu: &Gpu,
        label: &str,
        data: &[f32],
        n: usize,
        k: usize,
        transposed: bool,
    ) -> Result<LinearWeight> {
        assert_eq!(data.len(), n * k, "{label}: weight data is not [n, k]");
        let buffer = gpu.upload_f32(label, data)?;
        let (n, k) = (n as u32, k as u32);
        let tex = texture_variant_available(gpu);
        let w = LinearWeight {
            buffer,
            texture: (tex && fits_texture(gpu, n, k)).then(|| texture(gpu, label, n, k)),
            texture_t: (tex && transposed && fits_texture(gpu, k, n))
                .then(|| texture(gpu, &format!("{label}.T"), k, n)),
            n,
            k,
        };
        let mut rec = gpu.recorder();
        w.refresh(&mut rec);
        rec.finish();
        Ok(w)
    }

    /// Re-packs the textures from the buffer (after the optimizer updated it).
    pub fn refresh(&self, rec: &mut Recorder) {
        if let Some(view) = &self.texture {
            pack_into(rec, &self.buffer, (self.n, self.k, self.k), false, view);
        }
        if let Some(view) = &self.texture_t {
            pack_into(rec, &self.buffer, (self.k, self.n, self.k), true, view);
        }
    }
}

pub struct MatmulArgs<'a> {
    /// Rows of A start every `lda` elements (lda = k for a dense [M, K]).
    pub a: &'a Tensor,
    pub w: &'a LinearWeight,
    pub bias: Option<&'a Tensor>,
    pub m: u32,
    pub lda: u32,
    pub act: Act,
    /// Compute with a subset of the weight's attention heads only (no weight copies).
    pub gather: Option<HeadGather<'a>>,
}

/// Which side of an attention projection a head gather selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatherSide {
    /// The Q|K|V projection [3·S·d, K]: C gets 3·A·d columns, the listed heads' rows of each
    /// of the three sections of W (and their bias elements).
    Rows,
    /// The output projection [N, S·d]: A holds the listed heads' A·d columns only and W's
    /// matching columns are read.
    Cols,
}

/// A subset of a projection's heads: `heads` holds the indices (u32, among the weight's `stored`
/// heads of `head_dim`) of the `active` heads to compute, in order.
#[derive(Clone, Copy)]
pub struct HeadGather<'a> {
    pub heads: &'a Tensor,
    pub side: GatherSide,
    pub active: u32,
    pub stored: u32,
    pub head_dim: u32,
}

impl HeadGather<'_> {
    fn code(&self) -> u32 {
        match self.side {
            GatherSide::Rows => 1,
            GatherSide::Cols => 2,
        }
    }

    /// (gw, sw, hd) of the shaders' params.
    fn params(&self) -> [u32; 3] {
        [
            self.active * self.head_dim,
            self.stored * self.head_dim,
            self.head_dim,
        ]
    }
}

/// The (N, K) a matmul computes: W's own, or those of its head gather.
fn gathered_nk(args: &MatmulArgs) -> (u32, u32) {
    let (n, k) = (args.w.n, args.w.k);
    match &args.gather {
        None => (n, k),
        Some(g) => {
            assert!(
                g.active >= 1 && g.active <= g.stored,
                "head gather of {} of {} heads",
                g.active,
                g.stored
            );
            match g.side {
                GatherSide::Rows => {
                    assert_eq!(n, 3 * g.stored * g.head_dim, "Q|K|V rows");
                    (3 * g.active * g.head_dim, k)
                }
                GatherSide::Cols => {
                    assert_eq!(k, g.stored * g.head_dim, "output projection columns");
                    (n, g.active * g.head_dim)
                }
            }
        }
    }
}

/// Where a matmul writes: output rows `ldc` elements apart (0: dense, ldc = N), and whether it
/// adds into C instead of overwriting it.
#[derive(Clone, Copy, Debug, Default)]
pub struct MatmulOut {
    pub ldc: u32,
    pub accumulate: bool,
}

/// c[M, N] = act(a·wᵀ + bias), with the variant the adapter was tuned for.
pub fn matmul(rec: &mut Recorder, args: &MatmulArgs, c: &Tensor) {
    matmul_into(rec, args, c, MatmulOut::default());
}

/// As [`matmul`], writing strided rows and/or accumulating into `c`.
pub fn matmul_into(rec: &mut Recorder, args: &MatmulArgs, c: &Tensor, out: MatmulOut) {
    let variant = rec.gpu().tuning.matmul;
    matmul_variant_into(rec, args, c, variant, out);
}

/// As [`matmul`], with the variant chosen by the caller (benches and tests compare them). The
/// texture variant falls back to the tiled one where it cannot run (no subgroups of 8, a
/// weight without its texture, or M over the texture height limit).
pub fn matmul_variant(rec: &mut Recorder, args: &MatmulArgs, c: &Tensor, variant: MatmulVariant) {
    matmul_variant_into(rec, args, c, variant, MatmulOut::default())
}

fn matmul_variant_into(
    rec: &mut Recorder,
    args: &MatmulArgs,
    c: &Tensor,
    variant: MatmulVariant,
    out: MatmulOut,
) {
    let gpu = rec.gpu();
    let use_texture = variant == MatmulVariant::Texture
        && args.w.texture.is_some()
        && texture_variant_available(gpu)
        && fits_texture(gpu, args.m, args.w.k)
        && args.gather.is_none_or(|g| g.head_dim.is_multiple_of(4));
    if use_texture {
        matmul_texture(rec, args, c, out)
    } else {
        matmul_tiled(rec, args, c, out)
    }
}

fn constants(args: &MatmulArgs, out: MatmulOut) -> [(&'static str, f64); 4] {
    [
        ("ACT", args.act as u32 as f64),
        ("HAS_BIAS", args.bias.is_some() as u32 as f64),
        ("ACCUMULATE", out.accumulate as u32 as f64),
        ("GATHER", args.gather.map_or(0, |g| g.code()) as f64),
    ]
}

/// A plain product's constants: no bias, no activation, no gather.
fn plain(accumulate: bool) -> [(&'static str, f64); 4] {
    [
        ("ACT", 0.0),
        ("HAS_BIAS", 0.0),
        ("ACCUMULATE", accumulate as u32 as f64),
        ("GATHER", 0.0),
    ]
}

fn ldc(out: MatmulOut, n: u32) -> u32 {
    if out.ldc == 0 {
        n
    } else {
        out.ldc
    }
}

fn matmul_tiled(rec: &mut Recorder, args: &MatmulArgs, c: &Tensor, out: MatmulOut) {
    let (n, k) = gathered_nk(args);
    let [act, bias, acc, gather] = constants(args, out);
    let consts = [act, bias, acc, gather, ("TRANS_A", 0.0), ("TRANS_B", 0.0)];
    let shape = (args.m, n, k);
    // An unused bias or head-list binding still needs a buffer: bind W (never read then).
    let b = args.bias.unwrap_or(&args.w.buffer);
    let heads = args.gather.map_or(&args.w.buffer, |g| g.heads);
    let operands = [args.a, &args.w.buffer, b, c, heads];
    dispatch_tiled(
        rec,
        &consts,
        shape,
        (args.lda, args.w.k, ldc(out, n)),
        gather_params(args),
        operands,
        label(args.act),
    );
}

fn gather_params(args: &MatmulArgs) -> [u32; 3] {
    args.gather.map_or([1, 1, 1], |g| g.params())
}

/// Writes `bias` into every one of `m` rows of `c` [M, N] (rows `ldc` apart): the output of a
/// projection none of whose input heads is computed (the tiled kernel with K = 0).
pub fn bias_rows(rec: &mut Recorder, bias: &Tensor, m: u32, n: u32, c: &Tensor) {
    let consts = [
        ("ACT", 0.0),
        ("HAS_BIAS", 1.0),
        ("ACCUMULATE", 0.0),
        ("GATHER", 0.0),
        ("TRANS_A", 0.0),
        ("TRANS_B", 0.0),
    ];
    // A, W and the head list are never read with K = 0.
    let operands = [bias, bias, bias, c, bias];
    dispatch_tiled(
        rec,
        &consts,
        (m, n, 0),
        (0, 0, n),
        [1, 1, 1],
        operands,
        "bias_rows",
    );
}

/// The tiled kernel over (M, N, K) with row strides (lda, ldb, ldc) and operands
/// [A, W, bias, C]; `consts` carry the epilogue and the transposes.
#[allow(clippy::too_many_arguments)]
fn dispatch_tiled(
    rec: &mut Recorder,
    consts: &[(&str, f64); 6],
    (m, n, k): (u32, u32, u32),
    (lda, ldb, ldc): (u32, u32, u32),
    [gw, sw, hd]: [u32; 3],
    operands: [&Tensor; 5],
    label: &'static str,
) {
    let gpu = rec.gpu();
    let tiles_n = n.div_ceil(64);
    let total = m.div_ceil(64) * tiles_n;
    let pipe = gpu.pipeline(Shader::Matmul, "matmul_tiled", consts);
    let params = gpu.uniform(
        "matmul.params",
        &Params {
            m,
            n,
            k,
            lda,
            ldc,
            tiles_n,
            total,
            ldb,
            gather: [gw, sw, hd, 0],
        },
    );
    let mut resources = vec![params.as_entire_binding()];
    resources.extend(operands.iter().map(|t| t.binding()));
    let bg = gpu.bind(&pipe, &resources);
    rec.dispatch(label, &pipe, &bg, total);
}

/// Packs `rows` rows of `k` elements (row stride `lda`) of `a` into an rgba32float texture of
/// ceil(k/4) texels per row, zero-padded; returns its view. Needs `texture_variant_available`.
pub fn pack_rows(rec: &mut Recorder, a: &Tensor, rows: u32, k: u32, lda: u32) -> wgpu::TextureView {
    let view = texture(rec.gpu(), "packed_rows", rows, k);
    pack_into(rec, a, (rows, k, lda), false, &view);
    view
}

/// Packs into an existing texture; with `transpose`, texture row r is column r of `a`.
fn pack_into(
    rec: &mut Recorder,
    a: &Tensor,
    (rows, k, lda): (u32, u32, u32),
    transpose: bool,
    view: &wgpu::TextureView,
) {
    let gpu = rec.gpu();
    let k4 = k.div_ceil(4);
    // Whole texels and rows at the copy alignment: a plain copy (a memcpy per row on lavapipe,
    // about 10x the packing kernel's speed, whose loads and texel stores are per-lane loops).
    let row_bytes = lda as u64 * 4;
    if !transpose
        && k.is_multiple_of(4)
        && row_bytes.is_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT as u64)
    {
        rec.copy_buffer_to_texture(
            "pack_rows",
            wgpu::TexelCopyBufferInfo {
                buffer: &a.buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(row_bytes as u32),
                    rows_per_image: None,
                },
            },
            wgpu::TexelCopyTextureInfo {
                texture: view.texture(),
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::Extent3d {
                width: k4,
                height: rows,
                depth_or_array_layers: 1,
            },
        );
        return;
    }
    let pp = gpu.uniform("pack.params", &PackParams { rows, k, k4, lda });
    let pp = pp.as_entire_binding();
    let dst = wgpu::BindingResource::TextureView(view);
    // whole texels in the source: one vec4 load each (pack_rows4)
    let whole = !transpose && k % 4 == 0 && lda % 4 == 0;
    let (pack, bg) = if whole {
        let pack = gpu.pipeline(Shader::MatmulTexture, "pack_rows4", &[]);
        let bg = gpu.bind_at(&pack, &[(0, pp), (2, dst), (3, a.binding())]);
        (pack, bg)
    } else {
        let pack = gpu.pipeline(
            Shader::MatmulTexture,
            "pack_rows",
            &[("TRANSPOSE", transpose as u32 as f64)],
        );
        let bg = gpu.bind(&pack, &[pp, a.binding(), dst]);
        (pack, bg)
    };
    rec.dispatch("pack_rows", &pack, &bg, (rows * k4).div_ceil(64));
}

fn matmul_texture(rec: &mut Recorder, args: &MatmulArgs, c: &Tensor, out: MatmulOut) {
    let w_view = args.w.texture.as_ref().expect("checked by the caller");
    let (n, k) = gathered_nk(args);
    let consts = constants(args, out);
    let bias = args.bias.unwrap_or(&args.w.buffer);
    let tex = TexOperands {
        w_view,
        bias,
        heads: args.gather.map(|g| g.heads),
        gather: gather_params(args),
        n,
        k,
    };
    let a_view = pack_rows(rec, args.a, args.m, k, args.lda);
    dispatch_texture(
        rec,
        &consts,
        args.m,
        &a_view,
        &tex,
        ldc(out, n),
        label(args.act),
        c,
    );
}

/// The texture kernel's right-hand side: a packed [N, K] texture and a bias (or any buffer when
/// HAS_BIAS is off).
struct TexOperands<'a> {
    w_view: &'a wgpu::TextureView,
    bias: &'a Tensor,
    /// The head list of a gather (else the bias buffer is bound in its place, unread).
    heads: Option<&'a Tensor>,
    gather: [u32; 3],
    n: u32,
    k: u32,
}

impl<'a> TexOperands<'a> {
    /// A right-hand side without a head gather.
    fn plain(w_view: &'a wgpu::TextureView, bias: &'a Tensor, n: u32, k: u32) -> Self {
        TexOperands {
            w_view,
            bias,
            heads: None,
            gather: [1, 1, 1],
            n,
            k,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn dispatch_texture(
    rec: &mut Recorder,
    [act, bias, acc, gather]: &[(&'static str, f64); 4],
    m: u32,
    a_view: &wgpu::TextureView,
    w: &TexOperands,
    ldc: u32,
    label: &'static str,
    c: &Tensor,
) {
    let gpu = rec.gpu();
    let (n, k) = (w.n, w.k);
    let k4 = k.div_ceil(4);
    let (rg, rows) = gpu.tuning.texture_tile;
    let tiles_n = n.div_ceil(256 / rg);
    let total = m.div_ceil(rows * rg) * tiles_n;
    let pipe = gpu.pipeline(
        Shader::MatmulTexture,
        "matmul_tex_sg8",
        &[
            *act,
            *bias,
            *acc,
            *gather,
            ("ROW_GROUPS", rg as f64),
            ("ROWS", rows as f64),
        ],
    );
    let params = gpu.uniform(
        "matmul.params",
        &TexParams {
            m,
            n,
            k4,
            ldc,
            tiles_n,
            total,
            gather: [w.gather[0], w.gather[1], w.gather[2], 0, 0, 0],
        },
    );
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            wgpu::BindingResource::TextureView(a_view),
            wgpu::BindingResource::TextureView(w.w_view),
            w.bias.binding(),
            c.binding(),
            w.heads.unwrap_or(w.bias).binding(),
        ],
    );
    rec.dispatch(label, &pipe, &bg, total);
}

/// c[r] (+)= the sum of row r of a packed texture of `rows` rows of `k` elements.
fn row_sums_texture(
    rec: &mut Recorder,
    view: &wgpu::TextureView,
    (rows, k): (u32, u32),
    accumulate: bool,
    c: &Tensor,
) {
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(
        Shader::MatmulTexture,
        "row_sums_tex",
        &[("ACCUMULATE", accumulate as u32 as f64)],
    );
    let params = gpu.uniform(
        "row_sums.params",
        &TexParams {
            m: rows,
            n: 1,
            k4: k.div_ceil(4),
            ldc: 1,
            tiles_n: 1,
            total: rows.div_ceil(64),
            gather: [1, 1, 1, 0, 0, 0],
        },
    );
    let bg = gpu.bind_at(
        &pipe,
        &[
            (0, params.as_entire_binding()),
            (1, wgpu::BindingResource::TextureView(view)),
            (4, c.binding()),
        ],
    );
    rec.dispatch("matmul.db", &pipe, &bg, rows.div_ceil(64));
}

/// Input gradient of y = x·Wᵀ: dX[M, K] (+)= dY[M, N]·W, rows of dX `out.ldc` apart. Reads the
/// packed Wᵀ texture where the adapter runs the texture variant, else W itself on the tiled
/// kernel with TRANS_B.
pub fn input_grad(
    rec: &mut Recorder,
    dy: &Tensor,
    w: &LinearWeight,
    m: u32,
    dx: &Tensor,
    out: MatmulOut,
) {
    let variant = rec.gpu().tuning.matmul;
    input_grad_variant(rec, dy, w, m, dx, out, variant)
}

/// As [`input_grad`], with the variant chosen by the caller (tests compare them).
pub fn input_grad_variant(
    rec: &mut Recorder,
    dy: &Tensor,
    w: &LinearWeight,
    m: u32,
    dx: &Tensor,
    out: MatmulOut,
    variant: MatmulVariant,
) {
    let gpu = rec.gpu();
    let consts = plain(out.accumulate);
    let ldc = ldc(out, w.k);
    match &w.texture_t {
        Some(w_view)
            if variant == MatmulVariant::Texture
                && texture_variant_available(gpu)
                && fits_texture(gpu, m, w.n) =>
        {
            let tex = TexOperands::plain(w_view, &w.buffer, w.k, w.n);
            let a_view = pack_rows(rec, dy, m, w.n, w.n);
            dispatch_texture(rec, &consts, m, &a_view, &tex, ldc, "matmul.dX", dx);
        }
        _ => {
            let [act, bias, acc, gather] = consts;
            let consts = [act, bias, acc, gather, ("TRANS_A", 0.0), ("TRANS_B", 1.0)];
            let operands = [dy, &w.buffer, &w.buffer, dx, &w.buffer];
            dispatch_tiled(
                rec,
                &consts,
                (m, w.k, w.n),
                (w.n, w.k, ldc),
                [1, 1, 1],
                operands,
                "matmul.dX",
            );
        }
    }
}

fn label(act: Act) -> &'static str {
    match act {
        Act::None => "matmul",
        Act::Gelu => "matmul+gelu",
        Act::Tanh => "matmul+tanh",
        Act::Relu => "matmul+relu",
        Act::GeluTanh => "matmul+gelu_tanh",
    }
}

/// C[M, N] (+)= Σ_k A(m, k) B(n, k) on the tiled kernel, with A stored as [K, M] (`trans_a`)
/// and B as [K, N] (`trans_b`).
#[allow(clippy::too_many_arguments)]
fn tiled_general(
    rec: &mut Recorder,
    a: &Tensor,
    lda: u32,
    trans_a: bool,
    b: &Tensor,
    ldb: u32,
    trans_b: bool,
    (m, n, k): (u32, u32, u32),
    accumulate: bool,
    label: &'static str,
    c: &Tensor,
) {
    let [act, bias, acc, gather] = plain(accumulate);
    let consts = [
        act,
        bias,
        acc,
        gather,
        ("TRANS_A", trans_a as u32 as f64),
        ("TRANS_B", trans_b as u32 as f64),
    ];
    // bias and the head list are never read (HAS_BIAS false, GATHER 0): bind b in their place
    dispatch_tiled(
        rec,
        &consts,
        (m, n, k),
        (lda, ldb, n),
        [1, 1, 1],
        [a, b, b, c, b],
        label,
    );
}

/// Weight gradient of y = x·Wᵀ: dW[N, K] (+)= dYᵀ·X over M rows (dY [M, N], X [M, K] with
/// rows `ldx` apart: the pooler reads one row per example).
#[allow(clippy::too_many_arguments)]
pub fn weight_grad(
    rec: &mut Recorder,
    dy: &Tensor,
    x: &Tensor,
    ldx: u32,
    m: u32,
    n: u32,
    k: u32,
    accumulate: bool,
    dw: &Tensor,
) {
    let variant = rec.gpu().tuning.matmul;
    linear_grads_variant(rec, dy, x, ldx, (m, n, k), accumulate, dw, None, variant)
}

/// The bias gradient's operands: db[N] (+)= 1ᵀ·dY, `ones` holding ≥ M ones (read by the tiled
/// kernel; texture adapters sum the packed dYᵀ's rows instead).
pub struct BiasGrad<'a> {
    pub ones: &'a Tensor,
    pub db: &'a Tensor,
}

/// dW = dYᵀ·X and, with `bias`, db = 1ᵀ·dY (both written, or added with `accumulate`), with
/// the variant the adapter was tuned for.
#[allow(clippy::too_many_arguments)]
pub fn linear_grads(
    rec: &mut Recorder,
    dy: &Tensor,
    x: &Tensor,
    ldx: u32,
    mnk: (u32, u32, u32),
    accumulate: bool,
    dw: &Tensor,
    bias: Option<BiasGrad>,
) {
    let variant = rec.gpu().tuning.matmul;
    linear_grads_variant(rec, dy, x, ldx, mnk, accumulate, dw, bias, variant)
}

/// As [`linear_grads`], with the variant chosen by the caller. On texture adapters dYᵀ is
/// packed once (transposed) into a texture and serves both products on the texture kernel
/// (dW against the packed Xᵀ, db as the row sums of the packed dYᵀ); elsewhere the tiled kernel
/// reads the operands transposed in place (TRANS_A / TRANS_B).
#[allow(clippy::too_many_arguments)]
pub fn linear_grads_variant(
    rec: &mut Recorder,
    dy: &Tensor,
    x: &Tensor,
    ldx: u32,
    (m, n, k): (u32, u32, u32),
    accumulate: bool,
    dw: &Tensor,
    bias: Option<BiasGrad>,
    variant: MatmulVariant,
) {
    let gpu = rec.gpu();
    if variant == MatmulVariant::Texture
        && texture_variant_available(gpu)
        && fits_texture(gpu, n, m)
        && fits_texture(gpu, k, m)
    {
        let consts = plain(accumulate);
        let dyt = texture(gpu, "dY.T", n, m);
        pack_into(rec, dy, (n, m, n), true, &dyt);
        let xt = texture(gpu, "X.T", k, m);
        pack_into(rec, x, (k, m, ldx), true, &xt);
        let tex = TexOperands::plain(&xt, dy, k, m);
        dispatch_texture(rec, &consts, n, &dyt, &tex, k, "matmul.dW", dw);
        if let Some(bg) = bias {
            row_sums_texture(rec, &dyt, (n, m), accumulate, bg.db);
        }
        return;
    }
    tiled_general(
        rec,
        dy,
        n,
        true,
        x,
        ldx,
        true,
        (n, k, m),
        accumulate,
        "matmul.dW",
        dw,
    );
    if let Some(bg) = bias {
        bias_grad(rec, dy, bg.ones, m, n, accumulate, bg.db);
    }
}

/// Bias gradient: db[N] (+)= Σ_m dY[m, n], as 1ᵀ·dY on the same kernel (`ones` holds ≥ M ones).
pub fn bias_grad(
    rec: &mut Recorder,
    dy: &Tensor,
    ones: &Tensor,
    m: u32,
    n: u32,
    accumulate: bool,
    db: &Tensor,
) {
    tiled_general(
        rec,
        ones,
        m,
        false,
        dy,
        n,
        true,
        (1, n, m),
        accumulate,
        "matmul.db",
        db,
    );
}
