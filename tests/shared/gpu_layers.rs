//! The GPU layer library (`gpu::nn`) against candle on the CPU, on random shapes: every forward
//! and gradient within a relative error (max |gpu - cpu| / max |cpu|) of 1e-4. References are
//! computed in f64 from the same f32 inputs, so the error measured is the GPU's own. Natively on
//! lavapipe (`tests/native/gpu_layers.rs`) and in the browser on WebGPU, SwiftShader
//! (`tests/browser/gpu_layers.rs`); every readback is awaited, nothing blocks.

use candle_core::{DType, Device, Tensor, Var};
use lens2logit::gpu::nn::{
    Add, BatchNorm2d, Concat, ConcatGrads, Conv2d, ConvGrads, ConvTensors, CrossEntropy,
    DeviceAdamW, DiceLoss, Distance, FlipTurn, ForensicObjective, GlobalAvgPool, GpuTensor,
    Kernels, Linear, LinearGrads, MaxPool2d, NormGrads, Relu, Upsample,
};
use lens2logit::gpu::Gpu;
use lens2logit::model::losses;
use lens2logit::model::ops::max_pool2d;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use super::compare::{self, values};

const BOUND: f32 = 1e-4;

/// One line of the report: stderr natively, the console in the browser (the runner shows it with
/// `--nocapture` or on a failure), written at once so a failing check's earlier lines are there.
fn report(line: &str) {
    #[cfg(target_arch = "wasm32")]
    web_sys::console::log_1(&line.into());
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{line}");
}

/// Seeded normal values as an f32 tensor.
fn randn(shape: &[usize], seed: u64, mean: f32, std: f32) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(mean, std).unwrap();
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| normal.sample(&mut rng)).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

fn f64_var(t: &Tensor) -> Var {
    Var::from_tensor(&t.to_dtype(DType::F64).unwrap()).unwrap()
}

fn upload(gpu: &Gpu, name: &str, t: &Tensor) -> GpuTensor {
    GpuTensor::from_slice(gpu, name, t.dims(), &values(t)).unwrap()
}

fn zeros(gpu: &Gpu, name: &str, shape: &[usize]) -> GpuTensor {
    GpuTensor::zeros(gpu, name, shape).unwrap()
}

/// Records one compute pass and submits it.
fn submit(gpu: &Gpu, record: impl FnOnce(&mut wgpu::ComputePass)) {
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        record(&mut pass);
    }
    gpu.queue.submit([encoder.finish()]);
}

async fn read(gpu: &Gpu, t: &GpuTensor) -> Vec<f32> {
    t.read(gpu).await.unwrap()
}

/// The relative error against a CPU tensor.
fn relative(ours: &[f32], reference: &Tensor) -> f32 {
    compare::relative(ours, &values(reference))
}

/// Asserts and reports one comparison.
fn check(what: &str, ours: &[f32], reference: &Tensor, bound: f32) {
    let err = relative(ours, reference);
    report(&format!("{what}: relative error {err:.2e}"));
    assert!(
        err <= bound,
        "{what}: relative error {err:e} over {bound:e}"
    );
}

/// Convolutions (stem, 3x3, strided, 1x1 projections, a bias, many channels, a large tile):
/// forward and every gradient.
pub async fn conv2d(gpu: &Gpu, kernels: &Kernels) {
    // (batch, cin, h, w, cout, k, stride, pad, bias)
    let cases = [
        (2, 3, 19, 17, 8, 7, 2, 3, false),
        (2, 16, 12, 12, 24, 3, 1, 1, false),
        (2, 16, 13, 11, 32, 3, 2, 1, false),
        (2, 16, 12, 12, 32, 1, 2, 0, false),
        (2, 16, 9, 9, 1, 1, 1, 0, true),
        (1, 70, 6, 6, 72, 3, 1, 1, true),
        (4, 8, 64, 64, 16, 3, 1, 1, false),
    ];
    for (i, &(b, cin, h, w, cout, k, s, p, has_bias)) in cases.iter().enumerate() {
        let seed = 10 * i as u64;
        let x = randn(&[b, cin, h, w], seed, 0.0, 1.0);
        let weight = randn(&[cout, cin, k, k], seed + 1, 0.0, 0.2);
        let bias = randn(&[cout], seed + 2, 0.0, 1.0);
        // reference in f64 with candle's conv2d and autograd
        let (xv, wv, bv) = (f64_var(&x), f64_var(&weight), f64_var(&bias));
        let mut y_ref = xv.as_tensor().conv2d(wv.as_tensor(), p, s, 1, 1).unwrap();
        if has_bias {
            y_ref = y_ref
                .broadcast_add(&bv.as_tensor().reshape((1, cout, 1, 1)).unwrap())
                .unwrap();
        }
        let dy = randn(y_ref.dims(), seed + 3, 0.0, 1.0);
        let grads = (y_ref.clone() * dy.to_dtype(DType::F64).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();

        let gx = upload(gpu, "x", &x);
        let gw = upload(gpu, "weight", &weight);
        let gb = upload(gpu, "bias", &bias);
        let gy = zeros(gpu, "y", y_ref.dims());
        let gdy = upload(gpu, "dy", &dy);
        let gdx = zeros(gpu, "dx", x.dims());
        let gdw = zeros(gpu, "dweight", weight.dims());
        let gdb = zeros(gpu, "dbias", &[cout]);
        let conv = Conv2d::new(
            gpu,
            kernels,
            &ConvTensors {
                x: &gx,
                weight: &gw,
                bias: has_bias.then_some(&gb),
                y: &gy,
            },
            s,
            p,
            Some(ConvGrads {
                dy: &gdy,
                dx: Some(&gdx),
                dweight: &gdw,
                dbias: has_bias.then_some(&gdb),
            }),
        )
        .unwrap();
        submit(gpu, |pass| {
            conv.forward(pass);
            conv.backward(pass).unwrap();
        });
        let name = format!("conv k{k} s{s} p{p} {b}x{cin}x{h}x{w} -> {cout}");
        // one staging buffer for everything the step wrote
        let out = GpuTensor::read_all(gpu, &[&gy, &gdx, &gdw, &gdb])
            .await
            .unwrap();
        let get = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
        check(&format!("{name} y"), &out[0], &y_ref, BOUND);
        check(&format!("{name} dx"), &out[1], &get(&xv), BOUND);
        check(&format!("{name} dweight"), &out[2], &get(&wv), BOUND);
        if has_bias {
            check(&format!("{name} dbias"), &out[3], &get(&bv), BOUND);
        }
    }
}

/// Shapes that do not fit, or a backward pass of a layer built without gradients, are errors.
pub async fn misfits(gpu: &Gpu, kernels: &Kernels) {
    let x = zeros(gpu, "x", &[1, 3, 8, 8]);
    let w = zeros(gpu, "w", &[4, 3, 3, 3]);
    let wrong = zeros(gpu, "y", &[1, 4, 7, 7]);
    let conv = |y| {
        Conv2d::new(
            gpu,
            kernels,
            &ConvTensors {
                x: &x,
                weight: &w,
                bias: None,
                y,
            },
            1,
            1,
            None,
        )
    };
    assert!(conv(&wrong).is_err());
    let y = zeros(gpu, "y", &[1, 4, 8, 8]);
    let layer = conv(&y).unwrap();
    submit(gpu, |pass| assert!(layer.backward(pass).is_err()));
    let gamma = zeros(gpu, "gamma", &[3]);
    assert!(BatchNorm2d::new(gpu, kernels, &x, &gamma, &gamma, &y, None).is_err());
    assert!(MaxPool2d::new(gpu, kernels, &x, &y, (9, 1, 0), None).is_err());
    assert!(GpuTensor::from_slice(gpu, "t", &[2], &[1.0]).is_err());
}

/// The classifier head: forward and every gradient.
pub async fn linear(gpu: &Gpu, kernels: &Kernels) {
    for (i, &(b, inputs, outputs)) in [(8, 512, 10), (3, 70, 130)].iter().enumerate() {
        let seed = 100 + 10 * i as u64;
        let x = randn(&[b, inputs], seed, 0.0, 1.0);
        let weight = randn(&[outputs, inputs], seed + 1, 0.0, 0.1);
        let bias = randn(&[outputs], seed + 2, 0.0, 1.0);
        let (xv, wv, bv) = (f64_var(&x), f64_var(&weight), f64_var(&bias));
        let y_ref = candle_nn::Module::forward(
            &candle_nn::Linear::new(wv.as_tensor().clone(), Some(bv.as_tensor().clone())),
            xv.as_tensor(),
        )
        .unwrap();
        let dy = randn(y_ref.dims(), seed + 3, 0.0, 1.0);
        let grads = (y_ref.clone() * dy.to_dtype(DType::F64).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (gx, gw, gb) = (
            upload(gpu, "x", &x),
            upload(gpu, "w", &weight),
            upload(gpu, "b", &bias),
        );
        let gy = zeros(gpu, "y", &[b, outputs]);
        let gdy = upload(gpu, "dy", &dy);
        let gdx = zeros(gpu, "dx", &[b, inputs]);
        let gdw = zeros(gpu, "dw", &[outputs, inputs]);
        let gdb = zeros(gpu, "db", &[outputs]);
        let linear = Linear::new(
            gpu,
            kernels,
            &gx,
            &gw,
            &gb,
            &gy,
            Some(LinearGrads {
                dy: &gdy,
                dx: Some(&gdx),
                dweight: &gdw,
                dbias: &gdb,
            }),
        )
        .unwrap();
        submit(gpu, |pass| {
            linear.forward(pass);
            linear.backward(pass).unwrap();
        });
        let name = format!("linear {b}x{inputs} -> {outputs}");
        let get = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
        check(&format!("{name} y"), &read(gpu, &gy).await, &y_ref, BOUND);
        check(
            &format!("{name} dx"),
            &read(gpu, &gdx).await,
            &get(&xv),
            BOUND,
        );
        check(
            &format!("{name} dweight"),
            &read(gpu, &gdw).await,
            &get(&wv),
            BOUND,
        );
        check(
            &format!("{name} dbias"),
            &read(gpu, &gdb).await,
            &get(&bv),
            BOUND,
        );
    }
}

/// One training step (batch statistics, running update, gradients) then evaluation (running
/// statistics) forward and backward, against candle-nn's BatchNorm in f64.
async fn batch_norm_case(
    gpu: &Gpu,
    kernels: &Kernels,
    shape: [usize; 4],
    mean: f32,
    std: f32,
    seed: u64,
) {
    let c = shape[1];
    let x = randn(&shape, seed, mean, std);
    let gamma = randn(&[c], seed + 1, 1.0, 0.5);
    let beta = randn(&[c], seed + 2, 0.0, 1.0);
    let run_mean = randn(&[c], seed + 3, 0.0, 1.0);
    let run_var = randn(&[c], seed + 4, 0.0, 1.0)
        .abs()
        .unwrap()
        .affine(1.0, 0.5)
        .unwrap();
    let dy = randn(&shape, seed + 5, 0.0, 1.0);
    let reference = BatchNormReference::new(&x, &gamma, &beta, (&run_mean, &run_var), &dy);

    let gx = upload(gpu, "x", &x);
    let (gg, gb) = (upload(gpu, "gamma", &gamma), upload(gpu, "beta", &beta));
    let gy = zeros(gpu, "y", &shape);
    let gdy = upload(gpu, "dy", &dy);
    let gdx = zeros(gpu, "dx", &shape);
    let (gdg, gdb) = (zeros(gpu, "dgamma", &[c]), zeros(gpu, "dbeta", &[c]));
    let bn = BatchNorm2d::new(
        gpu,
        kernels,
        &gx,
        &gg,
        &gb,
        &gy,
        Some(NormGrads {
            dy: &gdy,
            dx: &gdx,
            dgamma: &gdg,
            dbeta: &gdb,
        }),
    )
    .unwrap();
    bn.set_running(gpu, &values(&run_mean), &values(&run_var))
        .unwrap();
    let name = format!("batch norm {shape:?} mean {mean} std {std}");
    let r = &reference;
    for (mode, train, (y_ref, grads)) in [("train", true, &r.train), ("eval", false, &r.eval)] {
        submit(gpu, |pass| {
            bn.forward(pass, train);
            bn.backward(pass, train).unwrap();
        });
        let outputs = [("y", &gy, y_ref), ("dx", &gdx, &grads[0])];
        let param_grads = [("dgamma", &gdg, &grads[1]), ("dbeta", &gdb, &grads[2])];
        for (what, output, expected) in outputs.into_iter().chain(param_grads) {
            check(
                &format!("{name} {mode} {what}"),
                &read(gpu, output).await,
                expected,
                BOUND,
            );
        }
        if train {
            let (mean_gpu, var_gpu) = bn.read_running(gpu).await.unwrap();
            let (mean_after, var_after) = &r.running_after_train;
            check(
                &format!("{name} running mean"),
                &mean_gpu,
                mean_after,
                BOUND,
            );
            check(&format!("{name} running var"), &var_gpu, var_after, BOUND);
        }
    }
}

/// candle-nn's BatchNorm in f64: y and [dx, dgamma, dbeta] of sum(y * dy) in a training step,
/// the running statistics after it, then y and the gradients in evaluation.
struct BatchNormReference {
    train: (Tensor, [Tensor; 3]),
    running_after_train: (Tensor, Tensor),
    eval: (Tensor, [Tensor; 3]),
}

impl BatchNormReference {
    fn new(
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        (run_mean, run_var): (&Tensor, &Tensor),
        dy: &Tensor,
    ) -> Self {
        let f64_of = |t: &Tensor| t.to_dtype(DType::F64).unwrap();
        let (xv, gv, bv) = (f64_var(x), f64_var(gamma), f64_var(beta));
        let reference = candle_nn::BatchNorm::new(
            x.dim(1).unwrap(),
            f64_of(run_mean),
            f64_of(run_var),
            gv.as_tensor().clone(),
            bv.as_tensor().clone(),
            1e-5,
        )
        .unwrap();
        let step = |train: bool| {
            let y = candle_nn::ModuleT::forward_t(&reference, xv.as_tensor(), train).unwrap();
            let g = (y.clone() * f64_of(dy))
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let grads = [&xv, &gv, &bv].map(|v| g.get(v.as_tensor()).unwrap().clone());
            (y, grads)
        };
        let train = step(true);
        let running_after_train = (
            reference.running_mean().clone(),
            reference.running_var().clone(),
        );
        Self {
            train,
            running_after_train,
            eval: step(false),
        }
    }
}

/// A training step then evaluation, on two shapes (one with many channels).
pub async fn batch_norm_train_and_eval(gpu: &Gpu, kernels: &Kernels) {
    batch_norm_case(gpu, kernels, [4, 6, 9, 11], 0.5, 2.0, 200).await;
    batch_norm_case(gpu, kernels, [3, 70, 5, 4], -1.0, 0.3, 210).await;
}

/// A large mean with a small spread over 8x64x64x64: a one-pass or serial f32 reduction loses
/// the variance here; the two-level, corrected two-pass reduction does not.
pub async fn batch_norm_ill_conditioned(gpu: &Gpu, kernels: &Kernels) {
    batch_norm_case(gpu, kernels, [8, 64, 64, 64], 1000.0, 0.01, 300).await;
}

/// dL/dx of sum(y * dy) for every var, in order.
fn grads_of(y: &Tensor, dy: &Tensor, vars: &[&Var]) -> Vec<Tensor> {
    let dy = dy.to_dtype(y.dtype()).unwrap();
    let g = (y.clone() * dy)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    vars.iter()
        .map(|v| g.get(v.as_tensor()).unwrap().clone())
        .collect()
}

/// ReLU forward and backward, a residual sum, and a gradient accumulated into another: exact.
pub async fn relu_add_and_accumulate(gpu: &Gpu, kernels: &Kernels) {
    let shape = [3, 5, 7, 9];
    let x = randn(&shape, 400, 0.0, 1.0);
    let other = randn(&shape, 401, 0.0, 1.0);
    let dy = randn(&shape, 402, 0.0, 1.0);
    let xv = f64_var(&x);
    let y_ref = xv.as_tensor().relu().unwrap();
    let dx_ref = grads_of(&y_ref, &dy, &[&xv]).remove(0);
    let (gx, go, gdy) = (
        upload(gpu, "x", &x),
        upload(gpu, "other", &other),
        upload(gpu, "dy", &dy),
    );
    let (gy, gdx, gsum) = (
        zeros(gpu, "y", &shape),
        zeros(gpu, "dx", &shape),
        zeros(gpu, "sum", &shape),
    );
    let relu = Relu::new(gpu, kernels, &gx, &gy, Some((&gdy, &gdx))).unwrap();
    let add = Add::new(gpu, kernels, &gx, &go, &gsum).unwrap();
    // dx += other after the relu's backward: a gradient meeting another
    let acc = Add::accumulate(gpu, kernels, &go, &gdx).unwrap();
    submit(gpu, |pass| {
        relu.forward(pass);
        relu.backward(pass).unwrap();
        add.record(pass);
    });
    check("relu y", &read(gpu, &gy).await, &y_ref, 0.0);
    check("relu dx", &read(gpu, &gdx).await, &dx_ref, 0.0);
    check("add", &read(gpu, &gsum).await, &(&x + &other).unwrap(), 0.0);
    submit(gpu, |pass| acc.record(pass));
    check(
        "accumulate",
        &read(gpu, &gdx).await,
        &(dx_ref.to_dtype(DType::F32).unwrap() + &other).unwrap(),
        0.0,
    );
}

/// train::augment's recipe on candle tensors: flips, then quarter turns (transpose, flip rows).
fn augment_reference(x: &Tensor, flip_h: bool, flip_v: bool, turns: u8) -> Tensor {
    let flip = |t: &Tensor, dim: usize| {
        let n = t.dim(dim).unwrap();
        let idx = Tensor::from_vec((0..n as u32).rev().collect::<Vec<_>>(), n, t.device()).unwrap();
        t.index_select(&idx, dim).unwrap()
    };
    let mut y = x.clone();
    if flip_h {
        y = flip(&y, 3);
    }
    if flip_v {
        y = flip(&y, 2);
    }
    for _ in 0..turns {
        y = flip(&y.transpose(2, 3).unwrap().contiguous().unwrap(), 2);
    }
    y
}

/// Every flip and quarter turn, forward and adjoint: exact.
pub async fn augmentation_and_adjoint(gpu: &Gpu, kernels: &Kernels) {
    for (shape, all_turns) in [([2, 3, 6, 6], true), ([2, 2, 4, 7], false)] {
        let x = randn(&shape, 500, 0.0, 1.0);
        let dy = randn(&shape, 501, 0.0, 1.0);
        let (gx, gdy) = (upload(gpu, "x", &x), upload(gpu, "dy", &dy));
        let (gy, gdx) = (zeros(gpu, "y", &shape), zeros(gpu, "dx", &shape));
        let aug = FlipTurn::new(gpu, kernels, &gx, &gy, Some((&gdy, &gdx))).unwrap();
        if !all_turns {
            assert!(
                aug.set(gpu, false, false, 1).is_err(),
                "a turn of a non-square tile"
            );
        }
        for choice in 0..16u8 {
            let (flip_h, flip_v, turns) = (choice & 1 == 1, choice & 2 == 2, choice >> 2);
            if turns % 2 == 1 && !all_turns {
                continue;
            }
            let xv = f64_var(&x);
            let y_ref = augment_reference(xv.as_tensor(), flip_h, flip_v, turns);
            let dx_ref = grads_of(&y_ref, &dy, &[&xv]).remove(0);
            aug.set(gpu, flip_h, flip_v, turns).unwrap();
            submit(gpu, |pass| {
                aug.forward(pass);
                aug.backward(pass).unwrap();
            });
            let what = format!("augment {shape:?} h{flip_h} v{flip_v} turns {turns}");
            assert_eq!(relative(&read(gpu, &gy).await, &y_ref), 0.0, "{what} y");
            assert_eq!(relative(&read(gpu, &gdx).await, &dx_ref), 0.0, "{what} dx");
        }
    }
    report("augment: all 16 choices exact, forward and adjoint");
}

/// Max pools (forward exact) and the global average pool.
pub async fn pooling(gpu: &Gpu, kernels: &Kernels) {
    // (shape, k, stride, pad): the ResNet stem's pool on odd and even sides, the U-Nets' pool
    for (shape, k, s, p) in [
        ([2, 4, 11, 9], 3, 2, 1),
        ([2, 3, 8, 12], 3, 2, 1),
        ([2, 5, 8, 6], 2, 2, 0),
    ] {
        let x = randn(&shape, 600, 0.0, 1.0);
        let xv = Var::from_tensor(&x).unwrap();
        let y_ref = max_pool2d(xv.as_tensor(), k, s, p).unwrap();
        let dy = randn(y_ref.dims(), 601, 0.0, 1.0);
        let dx_ref = grads_of(&y_ref, &dy, &[&xv]).remove(0);
        let (gx, gdy) = (upload(gpu, "x", &x), upload(gpu, "dy", &dy));
        let (gy, gdx) = (zeros(gpu, "y", y_ref.dims()), zeros(gpu, "dx", &shape));
        let pool = MaxPool2d::new(gpu, kernels, &gx, &gy, (k, s, p), Some((&gdy, &gdx))).unwrap();
        submit(gpu, |pass| {
            pool.forward(pass);
            pool.backward(pass).unwrap();
        });
        let name = format!("max pool {k}x{k}/{s} pad {p} {shape:?}");
        check(&format!("{name} y"), &read(gpu, &gy).await, &y_ref, 0.0);
        check(
            &format!("{name} dx"),
            &read(gpu, &gdx).await,
            &dx_ref,
            BOUND,
        );
    }
    for shape in [[2, 6, 5, 7], [2, 3, 64, 64]] {
        let x = randn(&shape, 610, 0.5, 1.0);
        let xv = f64_var(&x);
        let y_ref = xv.as_tensor().mean((2, 3)).unwrap();
        let dy = randn(y_ref.dims(), 611, 0.0, 1.0);
        let dx_ref = grads_of(&y_ref, &dy, &[&xv]).remove(0);
        let (gx, gdy) = (upload(gpu, "x", &x), upload(gpu, "dy", &dy));
        let (gy, gdx) = (zeros(gpu, "y", y_ref.dims()), zeros(gpu, "dx", &shape));
        let pool = GlobalAvgPool::new(gpu, kernels, &gx, &gy, Some((&gdy, &gdx))).unwrap();
        submit(gpu, |pass| {
            pool.forward(pass);
            pool.backward(pass).unwrap();
        });
        check(
            &format!("global average pool {shape:?} y"),
            &read(gpu, &gy).await,
            &y_ref,
            BOUND,
        );
        check(
            &format!("global average pool {shape:?} dx"),
            &read(gpu, &gdx).await,
            &dx_ref,
            BOUND,
        );
    }
}

/// Nearest upsampling (forward exact) and a three-part concatenation (exact, one gradient
/// accumulating).
pub async fn upsampling_and_concatenation(gpu: &Gpu, kernels: &Kernels) {
    for (shape, f) in [([2, 3, 4, 5], 2), ([1, 2, 3, 3], 3)] {
        let [b, c, h, w] = shape;
        let big = [b, c, h * f, w * f];
        let x = randn(&shape, 700, 0.0, 1.0);
        let xv = f64_var(&x);
        let y_ref = xv.as_tensor().upsample_nearest2d(h * f, w * f).unwrap();
        let dy = randn(&big, 701, 0.0, 1.0);
        let dx_ref = grads_of(&y_ref, &dy, &[&xv]).remove(0);
        let (gx, gdy) = (upload(gpu, "x", &x), upload(gpu, "dy", &dy));
        let (gy, gdx) = (zeros(gpu, "y", &big), zeros(gpu, "dx", &shape));
        let up = Upsample::new(gpu, kernels, &gx, &gy, Some((&gdy, &gdx))).unwrap();
        submit(gpu, |pass| {
            up.forward(pass);
            up.backward(pass).unwrap();
        });
        check(
            &format!("upsample x{f} {shape:?} y"),
            &read(gpu, &gy).await,
            &y_ref,
            0.0,
        );
        check(
            &format!("upsample x{f} {shape:?} dx"),
            &read(gpu, &gdx).await,
            &dx_ref,
            BOUND,
        );
    }
    // three parts, as U-Net++'s widest node; the second part's gradient accumulates
    let shapes = [[2, 3, 4, 5], [2, 5, 4, 5], [2, 2, 4, 5]];
    let parts: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| randn(s, 710 + i as u64, 0.0, 1.0))
        .collect();
    let vars: Vec<Var> = parts.iter().map(f64_var).collect();
    let y_ref = Tensor::cat(&vars.iter().map(|v| v.as_tensor()).collect::<Vec<_>>(), 1).unwrap();
    let dy = randn(y_ref.dims(), 720, 0.0, 1.0);
    let dx_ref = grads_of(&y_ref, &dy, &vars.iter().collect::<Vec<_>>());
    let earlier = randn(&shapes[1], 721, 0.0, 1.0);
    let gparts: Vec<GpuTensor> = parts.iter().map(|t| upload(gpu, "part", t)).collect();
    let gdxs: Vec<GpuTensor> = shapes.iter().map(|s| zeros(gpu, "dpart", s)).collect();
    gdxs[1].write(gpu, &values(&earlier)).unwrap();
    let (gy, gdy) = (zeros(gpu, "y", y_ref.dims()), upload(gpu, "dy", &dy));
    let plain = Concat::new(
        gpu,
        kernels,
        &gparts.iter().collect::<Vec<_>>(),
        &gy,
        Some(ConcatGrads {
            dy: &gdy,
            dxs: vec![&gdxs[0], &gdxs[2]],
            accumulate: false,
        }),
    );
    assert!(plain.is_err(), "two gradients for three parts");
    let cat = Concat::new(
        gpu,
        kernels,
        &gparts.iter().collect::<Vec<_>>(),
        &gy,
        Some(ConcatGrads {
            dy: &gdy,
            dxs: gdxs.iter().collect(),
            accumulate: true,
        }),
    )
    .unwrap();
    submit(gpu, |pass| {
        cat.forward(pass);
        cat.backward(pass).unwrap();
    });
    check("concat y", &read(gpu, &gy).await, &y_ref, 0.0);
    check("concat dx[0]", &read(gpu, &gdxs[0]).await, &dx_ref[0], 0.0);
    let accumulated = (dx_ref[1].to_dtype(DType::F32).unwrap() + &earlier).unwrap();
    check(
        "concat dx[1] accumulated",
        &read(gpu, &gdxs[1]).await,
        &accumulated,
        0.0,
    );
    check("concat dx[2]", &read(gpu, &gdxs[2]).await, &dx_ref[2], 0.0);
}

/// Cross-entropy and Dice: loss, gradient, and the accuracy and IoU counted on the device.
pub async fn losses_and_metrics(gpu: &Gpu, kernels: &Kernels) {
    for (rows, classes) in [(8, 4), (300, 11)] {
        let logits = randn(&[rows, classes], 800 + rows as u64, 0.0, 2.0);
        let labels: Vec<u32> = (0..rows).map(|i| ((i * 7 + 3) % classes) as u32).collect();
        let targets = Tensor::new(labels.as_slice(), &Device::Cpu).unwrap();
        let lv = f64_var(&logits);
        let loss_ref = candle_nn::loss::cross_entropy(lv.as_tensor(), &targets).unwrap();
        let grad_ref = loss_ref
            .backward()
            .unwrap()
            .get(lv.as_tensor())
            .unwrap()
            .clone();
        let accuracy = losses::accuracy(&logits, &targets).unwrap();
        let gl = upload(gpu, "logits", &logits);
        let label_values: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
        let gt = GpuTensor::from_slice(gpu, "targets", &[rows], &label_values).unwrap();
        let (gg, gs) = (
            zeros(gpu, "grad", &[rows, classes]),
            zeros(gpu, "stats", &[2]),
        );
        let ce = CrossEntropy::new(gpu, kernels, &gl, &gt, &gg, &gs).unwrap();
        submit(gpu, |pass| ce.record(pass));
        let stats = read(gpu, &gs).await;
        let name = format!("cross-entropy {rows}x{classes}");
        check(
            &format!("{name} loss"),
            &stats[..1],
            &loss_ref.reshape(1).unwrap(),
            BOUND,
        );
        check(
            &format!("{name} grad"),
            &read(gpu, &gg).await,
            &grad_ref,
            BOUND,
        );
        assert_eq!(stats[1] / rows as f32, accuracy, "{name} accuracy");
    }
    for shape in [[2, 1, 9, 7], [4, 1, 64, 64]] {
        let logits = randn(&shape, 900, 0.0, 2.0);
        let mask_values: Vec<f32> = values(&randn(&shape, 901, 0.0, 1.0))
            .iter()
            .map(|&v| (v > 0.3) as u8 as f32)
            .collect();
        let mask = Tensor::from_vec(mask_values, &shape, &Device::Cpu).unwrap();
        let lv = f64_var(&logits);
        let loss_ref =
            losses::dice_loss(lv.as_tensor(), &mask.to_dtype(DType::F64).unwrap()).unwrap();
        let grad_ref = loss_ref
            .backward()
            .unwrap()
            .get(lv.as_tensor())
            .unwrap()
            .clone();
        let iou = losses::iou(&logits, &mask).unwrap();
        let (gl, gm) = (upload(gpu, "logits", &logits), upload(gpu, "mask", &mask));
        let (gg, gs) = (zeros(gpu, "grad", &shape), zeros(gpu, "stats", &[6]));
        let dice = DiceLoss::new(gpu, kernels, &gl, &gm, &gg, &gs).unwrap();
        submit(gpu, |pass| dice.record(pass));
        let stats = read(gpu, &gs).await;
        let name = format!("dice {shape:?}");
        check(
            &format!("{name} loss"),
            &stats[..1],
            &loss_ref.reshape(1).unwrap(),
            BOUND,
        );
        check(
            &format!("{name} grad"),
            &read(gpu, &gg).await,
            &grad_ref,
            BOUND,
        );
        assert!(
            (stats[1] / stats[2] - iou).abs() < 1e-6,
            "{name} IoU {} vs {iou}",
            stats[1] / stats[2]
        );
    }
}

/// Five AdamW steps (the learning rate changed after three) against candle-nn's.
pub async fn adamw_steps(gpu: &Gpu, kernels: &Kernels) {
    use candle_nn::{Optimizer, ParamsAdamW};
    let config = ParamsAdamW {
        lr: 0.01,
        weight_decay: 0.01,
        ..Default::default()
    };
    let shapes: [&[usize]; 2] = [&[16, 3, 3, 3], &[300]];
    let thetas: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| randn(s, 1000 + i as u64, 0.0, 1.0))
        .collect();
    let vars: Vec<Var> = thetas
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let mut reference = candle_nn::AdamW::new(vars.clone(), config.clone()).unwrap();
    let gthetas: Vec<GpuTensor> = thetas.iter().map(|t| upload(gpu, "theta", t)).collect();
    let ggrads: Vec<GpuTensor> = thetas
        .iter()
        .map(|t| zeros(gpu, "grad", t.dims()))
        .collect();
    let pairs: Vec<(&GpuTensor, &GpuTensor)> = gthetas.iter().zip(&ggrads).collect();
    let mut adamw = DeviceAdamW::new(gpu, kernels, &pairs, config).unwrap();
    for step in 0..5u64 {
        if step == 3 {
            reference.set_learning_rate(0.003);
            adamw.set_learning_rate(0.003);
        }
        // a loss whose gradient is g: sum(theta * g)
        let mut loss = Tensor::zeros((), DType::F32, &Device::Cpu).unwrap();
        for (i, (v, g)) in vars.iter().zip(&ggrads).enumerate() {
            let grad = randn(v.dims(), 1100 + 10 * step + i as u64, 0.0, 1.0);
            g.write(gpu, &values(&grad)).unwrap();
            loss = (loss + (v.as_tensor() * &grad).unwrap().sum_all().unwrap()).unwrap();
        }
        reference.backward_step(&loss).unwrap();
        submit(gpu, |pass| adamw.step(gpu, pass));
    }
    for (i, (v, g)) in vars.iter().zip(&gthetas).enumerate() {
        check(
            &format!("adamw 5 steps, parameter {i}"),
            &read(gpu, g).await,
            v.as_tensor(),
            BOUND,
        );
    }
}

/// The mean over 7x7 windows (stride 1, no padding) as a convolution: what
/// `avg_pool2d_with_stride(7, 1)` computes, but differentiable (candle has no backward for an
/// average pool whose stride is not its size).
fn box_mean_7x7(t: &Tensor) -> Tensor {
    let (b, c, h, w) = t.dims4().unwrap();
    let kernel = Tensor::full(1.0 / 49.0, (1, 1, 7, 7), t.device())
        .unwrap()
        .to_dtype(t.dtype())
        .unwrap();
    t.reshape((b * c, 1, h, w))
        .unwrap()
        .conv2d(&kernel, 0, 1, 1, 1)
        .unwrap()
        .reshape((b, c, h - 6, w - 6))
        .unwrap()
}

/// `train::session`'s `ssim_distance`, its pool swapped for `box_mean_7x7`.
fn ssim_distance(x: &Tensor, y: &Tensor) -> Tensor {
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let pool = box_mean_7x7;
    let (mx, my) = (pool(x), pool(y));
    let sxx = (pool(&x.sqr().unwrap()) - mx.sqr().unwrap()).unwrap();
    let syy = (pool(&y.sqr().unwrap()) - my.sqr().unwrap()).unwrap();
    let sxy = (pool(&x.mul(y).unwrap()) - mx.mul(&my).unwrap()).unwrap();
    let num = ((mx.mul(&my).unwrap() * 2.0).unwrap() + c1)
        .unwrap()
        .mul(&((sxy * 2.0).unwrap() + c2).unwrap())
        .unwrap();
    let den = ((mx.sqr().unwrap() + my.sqr().unwrap()).unwrap() + c1)
        .unwrap()
        .mul(&((sxx + syy).unwrap() + c2).unwrap())
        .unwrap();
    num.div(&den)
        .unwrap()
        .mean_all()
        .unwrap()
        .affine(-1.0, 1.0)
        .unwrap()
}

/// The gradient of `lambda * D(out, reference) - sum(out * task_grad)` with respect to out,
/// with D as `train::session`'s attack step.
fn forensic_reference(
    distance: Distance,
    lambda: f64,
    out: &Tensor,
    reference: &Tensor,
    task_grad: &Tensor,
) -> Tensor {
    let ov = f64_var(out);
    let (o, r) = (ov.as_tensor(), reference.to_dtype(DType::F64).unwrap());
    let d = match distance {
        Distance::L2 => o.sub(&r).unwrap().sqr().unwrap().mean_all().unwrap(),
        Distance::Ssim => ssim_distance(o, &r),
    };
    let task = (o * task_grad.to_dtype(DType::F64).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let objective = ((d * lambda).unwrap() - task).unwrap();
    objective.backward().unwrap().get(o).unwrap().clone()
}

/// The attack's objective gradient, L2 and SSIM, with references far and near.
pub async fn forensic_objective_gradient(gpu: &Gpu, kernels: &Kernels) {
    for (i, shape) in [[2, 3, 9, 11], [1, 3, 16, 16], [2, 3, 7, 7], [2, 3, 40, 33]]
        .into_iter()
        .enumerate()
    {
        let seed = 1200 + 10 * i as u64;
        let out = randn(&shape, seed, 0.5, 0.2);
        let far = randn(&shape, seed + 1, 0.5, 0.2);
        // the default processing's output is near the attacked one in practice
        let near = (&out + randn(&shape, seed + 2, 0.0, 0.05)).unwrap();
        for (kind, reference) in [("independent", &far), ("near", &near)] {
            for (distance, lambda) in [(Distance::L2, 0.7), (Distance::Ssim, 2.5)] {
                let zero = Tensor::zeros(&shape, DType::F32, &Device::Cpu).unwrap();
                // a task gradient as large as the distance's, so an error in either shows
                let scale = forensic_reference(distance, lambda, &out, reference, &zero)
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap();
                let task_grad = randn(&shape, seed + 3, 0.0, scale as f32);
                let expected = forensic_reference(distance, lambda, &out, reference, &task_grad);
                let (go, gr, gt) = (
                    upload(gpu, "out", &out),
                    upload(gpu, "reference", reference),
                    upload(gpu, "task grad", &task_grad),
                );
                let gu = zeros(gpu, "upstream", &shape);
                let op = ForensicObjective::new(
                    gpu,
                    kernels,
                    distance,
                    lambda as f32,
                    &go,
                    &gr,
                    &gt,
                    &gu,
                )
                .unwrap();
                submit(gpu, |pass| op.record(pass));
                check(
                    &format!("forensic {distance:?} {shape:?} {kind} reference upstream"),
                    &read(gpu, &gu).await,
                    &expected,
                    BOUND,
                );
            }
        }
    }
}

/// The test's differentiable pool is `train::session`'s avg_pool2d_with_stride(7, 1).
pub fn forensic_reference_pool_is_the_sessions() {
    let x = randn(&[2, 3, 9, 11], 1300, 0.5, 0.2)
        .to_dtype(DType::F64)
        .unwrap();
    let pooled = x.avg_pool2d_with_stride(7, 1).unwrap();
    let diff = (box_mean_7x7(&x) - pooled)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!(diff < 1e-12, "box mean differs from avg_pool2d by {diff:e}");
}

/// SSIM on a tile smaller than its window, or tensors of different shapes, are errors.
pub async fn forensic_objective_misfits(gpu: &Gpu, kernels: &Kernels) {
    let small = zeros(gpu, "small", &[1, 3, 5, 5]);
    let build = |distance, t: &GpuTensor, upstream: &GpuTensor| {
        ForensicObjective::new(gpu, kernels, distance, 1.0, t, t, t, upstream)
    };
    let message = build(Distance::Ssim, &small, &small)
        .err()
        .expect("SSIM on a 5x5 tile")
        .to_string();
    assert!(message.contains("5x5"), "{message}");
    assert!(build(Distance::L2, &small, &small).is_ok());
    let wrong = zeros(gpu, "wrong", &[1, 3, 5, 6]);
    assert!(build(Distance::L2, &small, &wrong).is_err());
}
