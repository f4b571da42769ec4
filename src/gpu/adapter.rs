//! Adapter choice: a real GPU before a CPU one, Vulkan/Metal/DX12 before GL, honouring
//! `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and `--adapter`. Never panics when nothing matches.

use crate::error::{Error, Result};

/// What the user asked for.
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    /// Case-insensitive substring of the adapter name (`--adapter`, else `WGPU_ADAPTER_NAME`).
    pub name: Option<String>,
}

impl AdapterChoice {
    pub fn from_flag(flag: Option<String>) -> Self {
        let name = flag
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .filter(|s| !s.is_empty());
        AdapterChoice { name }
    }
}

const NO_ADAPTER_FIX: &str = "on Linux without a GPU install Mesa's CPU Vulkan driver lavapipe \
(`apt-get install mesa-vulkan-drivers`); otherwise install your GPU's Vulkan, Metal or DX12 driver";

fn backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all())
}

/// Mesa prints "XDG_RUNTIME_DIR is invalid" unless the variable names a 0700 directory.
fn fix_xdg_runtime_dir() {
    use std::os::unix::fs::PermissionsExt;
    let ok = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.is_dir() && m.permissions().mode() & 0o777 == 0o700)
        .unwrap_or(false);
    if !ok {
        let dir = std::env::temp_dir().join(format!("headroom-xdg-{}", unsafe_uid()));
        if std::fs::create_dir_all(&dir).is_ok()
            && std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).is_ok()
        {
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

fn unsafe_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

fn instance() -> wgpu::Instance {
    #[cfg(unix)]
    fix_xdg_runtime_dir();
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends();
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu sees on the allowed backends.
pub fn list_adapters() -> Vec<wgpu::Adapter> {
    let inst = instance();
    pollster::block_on(inst.enumerate_adapters(backends()))
}

fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    // Vulkan lavapipe beats GL llvmpipe, and any real GPU beats both.
    (kind, backend)
}

pub fn describe_adapter(info: &wgpu::AdapterInfo) -> String {
    let driver = if info.driver_info.is_empty() {
        info.driver.clone()
    } else {
        format!("{} {}", info.driver, info.driver_info)
    };
    format!(
        "{} ({:?}, {:?}, driver {})",
        info.name,
        info.backend,
        info.device_type,
        driver.trim()
    )
}

pub(super) fn choose(choice: &AdapterChoice) -> Result<wgpu::Adapter> {
    let mut adapters = list_adapters();
    if adapters.is_empty() {
        return Err(Error::Adapter(format!(
            "no GPU adapter found on backends {:?}: {NO_ADAPTER_FIX}",
            backends()
        )));
    }
    if let Some(name) = &choice.name {
        let want = name.to_lowercase();
        let names: Vec<String> = adapters
            .iter()
            .map(|a| describe_adapter(&a.get_info()))
            .collect();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&want));
        if adapters.is_empty() {
            return Err(Error::Adapter(format!(
                "no adapter name contains {name:?}; adapters seen: {}",
                names.join("; ")
            )));
        }
    }
    adapters.sort_by_key(|a| rank(&a.get_info()));
    let chosen = adapters.remove(0);
    let info = chosen.get_info();
    if info.backend == wgpu::Backend::Gl {
        eprintln!(
            "warning: using the GL backend ({}): it is about half as fast as Vulkan and has no f16 \
             or subgroups; {NO_ADAPTER_FIX}",
            info.name
        );
    }
    Ok(chosen)
}
