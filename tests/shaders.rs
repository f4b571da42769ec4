//! Every shader parses and validates with naga; no GPU needed.

use headroom::gpu::Shader;

#[test]
fn every_shader_validates_with_naga() {
    for shader in Shader::ALL {
        let src = shader.source();
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{}: {}", shader.name(), e.emit_to_string(&src)));
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        );
        v.validate(&module)
            .unwrap_or_else(|e| panic!("{}: {}", shader.name(), e.emit_to_string(&src)));
        assert!(
            !module.entry_points.is_empty(),
            "{} has no entry point",
            shader.name()
        );
    }
}
