//! Every shader parses and validates with naga; no GPU needed.

use headroom::gpu::Shader;

#[test]
fn every_shader_validates_with_naga() {
    for shader in Shader::ALL {
        let src = shader.source();
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{}: {}", shader.name(), e.emit_to_string(&src)));
        // Only what headroom asks of a device: subgroup operations (lavapipe, most GPUs).
        let caps = naga::valid::Capabilities::SUBGROUP;
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
        v.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
        v.subgroup_operations(naga::valid::SubgroupOperationSet::all());
        v.validate(&module)
            .unwrap_or_else(|e| panic!("{}: {}", shader.name(), e.emit_to_string(&src)));
        assert!(
            !module.entry_points.is_empty(),
            "{} has no entry point",
            shader.name()
        );
    }
}
