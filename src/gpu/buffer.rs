//! Device buffers holding f32 or u32 elements, with the binding-limit check every tensor needs.

use super::Gpu;
use crate::error::{Error, Result};
use wgpu::util::DeviceExt;

/// A storage buffer of `len` 32-bit elements (f32 or u32; the kernel decides). A clone is
/// another handle on the same buffer.
#[derive(Clone)]
pub struct Tensor {
    pub buffer: wgpu::Buffer,
    pub len: usize,
}

impl Tensor {
    pub fn bytes(&self) -> u64 {
        (self.len * 4) as u64
    }
    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        self.buffer.as_entire_binding()
    }
}

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl Gpu {
    /// Fails with one line when `len` elements would not fit one storage binding.
    pub fn check_binding(&self, label: &str, len: usize) -> Result<()> {
        let bytes = len as u64 * 4;
        if bytes > self.max_binding() {
            return Err(Error::Limit(format!(
                "{label}: {:.1} MiB is over the adapter's storage binding limit of {:.1} MiB ({})",
                bytes as f64 / 1048576.0,
                self.max_binding() as f64 / 1048576.0,
                self.info.name
            )));
        }
        Ok(())
    }

    /// An uninitialised tensor of `len` elements.
    pub fn empty(&self, label: &str, len: usize) -> Result<Tensor> {
        self.check_binding(label, len)?;
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (len.max(1) * 4) as u64,
            usage: STORAGE,
            mapped_at_creation: false,
        });
        Ok(Tensor { buffer, len })
    }

    pub fn upload_f32(&self, label: &str, data: &[f32]) -> Result<Tensor> {
        self.upload_bytes(label, bytemuck::cast_slice(data), data.len())
    }

    pub fn upload_u32(&self, label: &str, data: &[u32]) -> Result<Tensor> {
        self.upload_bytes(label, bytemuck::cast_slice(data), data.len())
    }

    fn upload_bytes(&self, label: &str, bytes: &[u8], len: usize) -> Result<Tensor> {
        self.check_binding(label, len)?;
        if len == 0 {
            return self.empty(label, 0);
        }
        let buffer = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytes,
                usage: STORAGE,
            });
        Ok(Tensor { buffer, len })
    }

    /// Overwrites a tensor on the device.
    pub fn write_f32(&self, t: &Tensor, data: &[f32]) {
        assert!(
            data.len() <= t.len,
            "write_f32: {} elements into a tensor of {}",
            data.len(),
            t.len
        );
        self.queue
            .write_buffer(&t.buffer, 0, bytemuck::cast_slice(data));
    }

    /// Fills a tensor with one value (tests poison outputs with NaN this way).
    pub fn fill_f32(&self, t: &Tensor, value: f32) {
        self.write_f32(t, &vec![value; t.len]);
    }

    /// A small uniform buffer holding kernel parameters.
    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::bytes_of(value),
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    /// Copies a tensor (or its first `len` elements) back to the host. Waits for the queue.
    pub fn read_f32(&self, t: &Tensor) -> Vec<f32> {
        self.read_range_f32(&t.buffer, 0, t.len)
    }

    pub fn read_u32(&self, t: &Tensor) -> Vec<u32> {
        bytemuck::cast_slice(&self.read_range_bytes(&t.buffer, 0, t.len * 4)).to_vec()
    }

    /// Reads `len` f32 elements starting at element `offset`.
    pub fn read_range_f32(&self, buf: &wgpu::Buffer, offset: usize, len: usize) -> Vec<f32> {
        bytemuck::cast_slice(&self.read_range_bytes(buf, offset * 4, len * 4)).to_vec()
    }

    fn read_range_bytes(&self, buf: &wgpu::Buffer, offset: usize, bytes: usize) -> Vec<u8> {
        if bytes == 0 {
            return Vec::new();
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("headroom.readback"),
            size: bytes as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("headroom.readback"),
            });
        enc.copy_buffer_to_buffer(buf, offset as u64, &staging, 0, bytes as u64);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait();
        rx.recv()
            .expect("map callback")
            .expect("mapping the readback buffer failed");
        let out = staging.get_mapped_range(..).expect("mapped range").to_vec();
        staging.unmap();
        out
    }
}
