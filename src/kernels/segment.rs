//! `shaders/segment.wgsl`: deterministic scatter-add of rows (embedding gradients), row
//! gathers, and the gather of a relative position bias.

use crate::error::Result;
use crate::gpu::{Recorder, Shader, Tensor};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    groups: u32,
    width: u32,
    /// T, for `relative_bias` only.
    seq: u32,
    _pad: u32,
}

/// out[key, :] += Σ src[r, :] over the rows r whose `keys[r]` is `key` (keys outside
/// `key0..key0 + out_rows` are skipped: a chunk of a larger table). Grouping happens on the
/// host; the sums run on the device in a fixed order, so results are deterministic.
pub fn scatter_add_rows(
    rec: &mut Recorder,
    src: &Tensor,
    keys: &[u32],
    key0: u32,
    out_rows: u32,
    width: u32,
    out: &Tensor,
) -> Result<()> {
    let gpu = rec.gpu();
    let mut order: Vec<u32> = (0..keys.len() as u32)
        .filter(|&r| keys[r as usize] >= key0 && keys[r as usize] < key0 + out_rows)
        .collect();
    if order.is_empty() {
        return Ok(());
    }
    order.sort_by_key(|&r| (keys[r as usize], r));
    let (mut targets, mut offsets) = (Vec::new(), Vec::new());
    for (e, &r) in order.iter().enumerate() {
        let k = keys[r as usize] - key0;
        if targets.last() != Some(&k) {
            targets.push(k);
            offsets.push(e as u32);
        }
    }
    offsets.push(order.len() as u32);
    let groups = targets.len() as u32;
    let (t, o, r) = (
        gpu.upload_u32("segment.targets", &targets)?,
        gpu.upload_u32("segment.offsets", &offsets)?,
        gpu.upload_u32("segment.rows", &order)?,
    );
    let pipe = gpu.pipeline(Shader::Segment, "segment_add", &[]);
    let params = gpu.uniform(
        "segment.params",
        &Params {
            groups,
            width,
            seq: 0,
            _pad: 0,
        },
    );
    let bg = gpu.bind(
        &pipe,
        &[
            params.as_entire_binding(),
            src.binding(),
            t.binding(),
            o.binding(),
            r.binding(),
            out.binding(),
        ],
    );
    rec.dispatch("segment_add", &pipe, &bg, groups);
    Ok(())
}

/// out[r, :] = src[rows[r], :] for each of the `n` entries of `rows` (u32), `width` wide.
pub fn gather_rows(
    rec: &mut Recorder,
    src: &Tensor,
    rows: &Tensor,
    n: u32,
    width: u32,
    out: &Tensor,
) {
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(Shader::Segment, "gather_rows", &[]);
    let params = gpu.uniform(
        "gather_rows.params",
        &Params {
            groups: n,
            width,
            seq: 0,
            _pad: 0,
        },
    );
    let bg = gpu.bind_at(
        &pipe,
        &[
            (0, params.as_entire_binding()),
            (1, src.binding()),
            (2, rows.binding()),
            (5, out.binding()),
        ],
    );
    rec.dispatch("gather_rows", &pipe, &bg, n);
}

/// A relative position bias for the attention kernels (MPNet): out [heads, T, T] with
/// out[h, t, j] = table[buckets[j − t + T − 1], head_ids[h]], from the bias `table`
/// [buckets, width] (width = the model's heads), the bucket of each of the 2T − 1 relative
/// positions and the original index of each computed head.
#[allow(clippy::too_many_arguments)]
pub fn relative_bias(
    rec: &mut Recorder,
    table: &Tensor,
    width: u32,
    buckets: &Tensor,
    head_ids: &Tensor,
    heads: u32,
    seq: u32,
    out: &Tensor,
) {
    let gpu = rec.gpu();
    let pipe = gpu.pipeline(Shader::Segment, "relative_bias", &[]);
    let params = gpu.uniform(
        "relative_bias.params",
        &Params {
            groups: heads,
            width,
            seq,
            _pad: 0,
        },
    );
    let bg = gpu.bind_at(
        &pipe,
        &[
            (0, params.as_entire_binding()),
            (1, table.binding()),
            (2, buckets.binding()),
            (4, head_ids.binding()),
            (5, out.binding()),
        ],
    );
    rec.dispatch("relative_bias", &pipe, &bg, heads * seq);
}
