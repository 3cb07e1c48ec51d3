// One thread per element: ReLU and its gradient, sums (residual connections, gradients meeting
// at a fork), and the weak augmentation of crate/train/augment.rs (flips, quarter turns) with its
// adjoint.

// The uniform Elementwise and WORKGROUP are prepended from elementwise.rs.

@group(0) @binding(0) var<uniform> ew: Elementwise;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WORKGROUP)
fn relu(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i < ew.count) {
        out[i] = max(a[i], 0.0);
    }
}

// a: the forward input, b: dy. The gradient passes where x >= 0, as candle's relu backward.
@compute @workgroup_size(WORKGROUP)
fn relu_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i < ew.count) {
        out[i] = select(0.0, b[i], a[i] >= 0.0);
    }
}

@compute @workgroup_size(WORKGROUP)
fn add(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i < ew.count) {
        out[i] = a[i] + b[i];
    }
}

@compute @workgroup_size(WORKGROUP)
fn accumulate(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i < ew.count) {
        out[i] += a[i];
    }
}

@compute @workgroup_size(WORKGROUP)
fn copy(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i < ew.count) {
        out[i] = a[i];
    }
}

// Where output element i of the augmented batch reads the input: the flips, then the quarter
// turns (each transposes the plane and flips its rows: (y, x) <- (x, rows - 1 - y), the plane's
// sides swapping), undone in reverse order.
fn augment_source(i: u32) -> u32 {
    let plane = ew.height * ew.width;
    let base = i - i % plane;
    var y = (i % plane) / ew.width;
    var x = i % ew.width;
    var rows = ew.height;
    var cols = ew.width;
    let turns = (ew.flags >> 2u) & 3u;
    for (var t = 0u; t < turns; t++) {
        let row = y;
        y = x;
        x = rows - 1u - row;
        let side = rows;
        rows = cols;
        cols = side;
    }
    if ((ew.flags & 2u) != 0u) {
        y = rows - 1u - y;
    }
    if ((ew.flags & 1u) != 0u) {
        x = cols - 1u - x;
    }
    return base + y * cols + x;
}

@compute @workgroup_size(WORKGROUP)
fn augment(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i < ew.count) {
        out[i] = a[augment_source(i)];
    }
}

// The augmentation permutes elements, so its adjoint scatters each gradient back (no collisions).
@compute @workgroup_size(WORKGROUP)
fn augment_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i < ew.count) {
        out[augment_source(i)] = a[i];
    }
}
