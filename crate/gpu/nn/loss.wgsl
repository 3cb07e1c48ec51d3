// The two tasks' losses with their gradients and metric counts, as crate/model/losses.rs:
//   cross_entropy: mean over rows of logsumexp(l) - l[target]; gradient (softmax - onehot) / rows;
//                  count of rows whose first arg-max is the target. One workgroup.
//   dice:          p = sigmoid(l), L = 1 - (2 sum(p m) + 1) / (sum(p) + sum(m) + 1) over the batch;
//                  dL/dl = -(2 m (S + 1) - (2 I + 1)) / (S + 1)^2 p (1 - p), S = sum(p) + sum(m),
//                  I = sum(p m); IoU counts of (l > 0) against m. Sums in two levels.
// stats: [loss, correct rows | intersection, union, sum(p m), sum(p), sum(m)].

// The uniform Loss, PER_THREAD and WORKGROUP are prepended from loss.rs.

@group(0) @binding(0) var<uniform> ls: Loss;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
// class indices as f32 (cross-entropy) or the {0, 1} mask (dice)
@group(0) @binding(2) var<storage, read_write> targets: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;

var<workgroup> quad: array<vec4<f32>, WORKGROUP>;
var<workgroup> single: array<f32, WORKGROUP>;

fn tree(lid: u32) {
    workgroupBarrier();
    for (var s = WORKGROUP / 2u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            quad[lid] += quad[lid + s];
            single[lid] += single[lid + s];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(WORKGROUP)
fn cross_entropy(@builtin(local_invocation_index) lid: u32) {
    var acc = vec4<f32>(0.0);
    for (var r = lid; r < ls.rows; r += WORKGROUP) {
        let row = r * ls.classes;
        var best = logits[row];
        var best_at = 0u;
        for (var c = 1u; c < ls.classes; c++) {
            if (logits[row + c] > best) {
                best = logits[row + c];
                best_at = c;
            }
        }
        var total = 0.0;
        for (var c = 0u; c < ls.classes; c++) {
            total += exp(logits[row + c] - best);
        }
        let lse = best + log(total);
        let t = u32(targets[r]);
        for (var c = 0u; c < ls.classes; c++) {
            let softmax = exp(logits[row + c] - lse);
            grad[row + c] = (softmax - select(0.0, 1.0, c == t)) / f32(ls.rows);
        }
        if (t < ls.classes) {
            acc.x += lse - logits[row + t];
            acc.y += select(0.0, 1.0, best_at == t);
        }
    }
    quad[lid] = acc;
    single[lid] = 0.0;
    tree(lid);
    if (lid == 0u) {
        stats[0] = quad[0].x / f32(ls.rows);
        stats[1] = quad[0].y;
    }
}

fn sigmoid(l: f32) -> f32 {
    return 1.0 / (1.0 + exp(-l));
}

// Workgroup `chunk`: (sum p m, sum p, sum m, sum pred m) and sum pred over its
// WORKGROUP * PER_THREAD elements.
@compute @workgroup_size(WORKGROUP)
fn dice_partial(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let chunk = flat_group(wid, groups);
    var acc = vec4<f32>(0.0);
    var predicted = 0.0;
    for (var r = 0u; r < PER_THREAD; r++) {
        let i = (chunk * PER_THREAD + r) * WORKGROUP + lid;
        if (i < ls.count) {
            let p = sigmoid(logits[i]);
            let m = targets[i];
            let hit = select(0.0, 1.0, logits[i] > 0.0);
            acc += vec4<f32>(p * m, p, m, hit * m);
            predicted += hit;
        }
    }
    quad[lid] = acc;
    single[lid] = predicted;
    tree(lid);
    if (lid == 0u && chunk < ls.chunks) {
        partials[chunk * 5u] = quad[0].x;
        partials[chunk * 5u + 1u] = quad[0].y;
        partials[chunk * 5u + 2u] = quad[0].z;
        partials[chunk * 5u + 3u] = quad[0].w;
        partials[chunk * 5u + 4u] = single[0];
    }
}

@compute @workgroup_size(WORKGROUP)
fn dice_total(@builtin(local_invocation_index) lid: u32) {
    var acc = vec4<f32>(0.0);
    var predicted = 0.0;
    for (var chunk = lid; chunk < ls.chunks; chunk += WORKGROUP) {
        let at = chunk * 5u;
        acc += vec4<f32>(partials[at], partials[at + 1u], partials[at + 2u], partials[at + 3u]);
        predicted += partials[at + 4u];
    }
    quad[lid] = acc;
    single[lid] = predicted;
    tree(lid);
    if (lid == 0u) {
        let sums = quad[0];
        stats[0] = 1.0 - (2.0 * sums.x + 1.0) / (sums.y + sums.z + 1.0);
        stats[1] = sums.w;
        stats[2] = single[0] + sums.z - sums.w;
        stats[3] = sums.x;
        stats[4] = sums.y;
        stats[5] = sums.z;
    }
}

@compute @workgroup_size(WORKGROUP)
fn dice_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = flat_index(wid, groups, lid);
    if (i >= ls.count) {
        return;
    }
    let total = stats[4] + stats[5] + 1.0;
    let p = sigmoid(logits[i]);
    let d_p = -(2.0 * targets[i] * total - (2.0 * stats[3] + 1.0)) / (total * total);
    grad[i] = d_p * p * (1.0 - p);
}
