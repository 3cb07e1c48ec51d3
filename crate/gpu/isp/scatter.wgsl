// The RGGB mosaic scattered into three colour planes minus the black level of each site
// (the GPU twin of isp::param::scatter_mosaic).

struct Dims {
    batch: u32,
    height: u32,
    width: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> raw: array<f32>;
@group(0) @binding(2) var<storage, read> black_level: array<f32>;
@group(0) @binding(3) var<storage, read_write> rgb: array<f32>;

@compute @workgroup_size(16, 16, 1)
fn scatter(@builtin(global_invocation_id) id: vec3<u32>) {
    let x = id.x;
    let y = id.y;
    let b = id.z;
    if (x >= dims.width || y >= dims.height || b >= dims.batch) {
        return;
    }
    let plane = dims.height * dims.width;
    let pixel = y * dims.width + x;
    let site = (y % 2u) * 2u + (x % 2u);
    // R at site 0, G at sites 1 and 2, B at site 3
    let channel = select(select(1u, 2u, site == 3u), 0u, site == 0u);
    let value = raw[b * plane + pixel] - black_level[site];
    for (var c = 0u; c < 3u; c = c + 1u) {
        rgb[(b * 3u + c) * plane + pixel] = select(0.0, value, c == channel);
    }
}
