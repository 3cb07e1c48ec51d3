// Prepended to the layer kernels that run one thread per element: WebGPU allows at most 65535
// workgroups along one dimension, so long 1-D work is dispatched as an (x, y) grid of
// WORKGROUP-wide workgroups (flat_grid in mod.rs) and each thread rebuilds its flat index here.

fn flat_index(wid: vec3<u32>, groups: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * groups.x + wid.x) * WORKGROUP + lid;
}

// The flat index of a whole workgroup (one workgroup per item, e.g. per plane).
fn flat_group(wid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return wid.y * groups.x + wid.x;
}
