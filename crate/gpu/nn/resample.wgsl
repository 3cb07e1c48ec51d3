// Nearest upsampling by an integer factor (the U-Nets' decoder) and channel concatenation (their
// skip connections), with gradients. `small` is the upsampling's input or one concatenated part,
// `large` the upsampled or concatenated tensor; every kernel is a gather, one thread per output.

// The uniform Resample and WORKGROUP are prepended from resample.rs.

@group(0) @binding(0) var<uniform> rs: Resample;
@group(0) @binding(1) var<storage, read_write> small: array<f32>;
@group(0) @binding(2) var<storage, read_write> large: array<f32>;

fn small_count() -> u32 {
    return rs.batch * rs.channels * rs.height * rs.width;
}

@compute @workgroup_size(WORKGROUP)
fn upsample(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    let big_w = rs.width * rs.factor;
    let big_plane = rs.height * rs.factor * big_w;
    if (i >= rs.batch * rs.channels * big_plane) {
        return;
    }
    let plane = i / big_plane;
    let yy = (i % big_plane) / big_w / rs.factor;
    let xx = (i % big_w) / rs.factor;
    large[i] = small[(plane * rs.height + yy) * rs.width + xx];
}

@compute @workgroup_size(WORKGROUP)
fn upsample_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i >= small_count()) {
        return;
    }
    let plane = rs.height * rs.width;
    let p = i / plane;
    let yy = (i % plane) / rs.width;
    let xx = i % rs.width;
    let big_w = rs.width * rs.factor;
    let base = p * plane * rs.factor * rs.factor;
    var sum = 0.0;
    for (var dy = 0u; dy < rs.factor; dy++) {
        for (var dx = 0u; dx < rs.factor; dx++) {
            sum += large[base + (yy * rs.factor + dy) * big_w + xx * rs.factor + dx];
        }
    }
    small[i] = sum;
}

// Index in the large tensor of element i of the part.
fn in_large(i: u32) -> u32 {
    let plane = rs.height * rs.width;
    let per_item = rs.channels * plane;
    let b = i / per_item;
    return (b * rs.large_channels + rs.offset) * plane + i % per_item;
}

@compute @workgroup_size(WORKGROUP)
fn concat(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i < small_count()) {
        large[in_large(i)] = small[i];
    }
}

@compute @workgroup_size(WORKGROUP)
fn concat_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i < small_count()) {
        let g = large[in_large(i)];
        small[i] = select(g, small[i] + g, rs.accumulate == 1u);
    }
}
