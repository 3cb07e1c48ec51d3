//! U-Net++ (Zhou et al. 2018), the nested U-Net the paper segments cars with: its skip paths are
//! dense, node X(i, j) (level i, column j) convolving X(i, 0) .. X(i, j-1) together with
//! X(i+1, j-1) upsampled, so the decoder sees the encoder's features refined at every depth.
//! Three levels of 16, 32 and 64 channels, no deep supervision: sized, like the small U-Net, to
//! train in the browser (the paper's model has a deeper, pretrained encoder; weights do not carry
//! over).

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::blocks::{conv_biased, Conv};
use super::ops::{max_pool2d, upsample_nearest};
use super::unet::DoubleConv;
use crate::Result;

const WIDTHS: [usize; 3] = [16, 32, 64];

pub struct UNetPlusPlus {
    /// nodes[i][j]: X(i, j), for i + j < levels.
    nodes: Vec<Vec<DoubleConv>>,
    head: Conv,
}

impl UNetPlusPlus {
    pub fn small(vb: VarBuilder) -> Result<Self> {
        let levels = WIDTHS.len();
        let nodes = (0..levels)
            .map(|i| {
                (0..levels - i)
                    .map(|j| {
                        let cin = match (i, j) {
                            (0, 0) => 3,
                            (_, 0) => WIDTHS[i - 1],
                            _ => j * WIDTHS[i] + WIDTHS[i + 1],
                        };
                        DoubleConv::new(cin, WIDTHS[i], vb.pp(format!("x{i}_{j}")))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            nodes,
            head: conv_biased(WIDTHS[0], 1, 1, vb.pp("head"))?,
        })
    }

    /// (B, 3, H, W), H and W divisible by 4 -> logits (B, 1, H, W).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let levels = self.nodes.len();
        // x[i][j] as the nodes are; the encoder column first, then column by column
        let mut out: Vec<Vec<Tensor>> = Vec::with_capacity(levels);
        for i in 0..levels {
            let input = match out.last() {
                None => x.clone(),
                Some(above) => max_pool2d(&above[0], 2, 2, 0)?,
            };
            out.push(vec![self.nodes[i][0].forward(&input, train)?]);
        }
        for j in 1..levels {
            for i in 0..levels - j {
                let (h, w) = (out[i][0].dim(2)?, out[i][0].dim(3)?);
                let below = upsample_nearest(&out[i + 1][j - 1], h, w)?;
                let mut inputs: Vec<&Tensor> = out[i].iter().collect();
                inputs.push(&below);
                let node = self.nodes[i][j].forward(&Tensor::cat(&inputs, 1)?, train)?;
                out[i].push(node);
            }
        }
        self.head.forward(&out[0][levels - 1])
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};

    use super::*;

    #[test]
    fn every_node_shapes_the_output_and_receives_gradient() {
        let vars = VarMap::new();
        let net =
            UNetPlusPlus::small(VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu)).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 3, 16, 16), &Device::Cpu).unwrap();
        let y = net.forward(&x, true).unwrap();
        assert_eq!(y.dims(), [2, 1, 16, 16]);
        let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let data = vars.data().lock().unwrap();
        // six nodes (three encoder, three nested), each with two convolutions
        let convs: Vec<&String> = data
            .keys()
            .filter(|n| n.contains("conv") && n.ends_with("weight"))
            .collect();
        assert_eq!(convs.len(), 12, "{convs:?}");
        for name in convs {
            let g = grads.get(data[name].as_tensor()).unwrap();
            let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
            assert!(norm > 0.0, "{name} receives no gradient");
        }
    }
}
