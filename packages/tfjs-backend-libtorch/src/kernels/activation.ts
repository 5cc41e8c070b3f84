// The activations TF.js fuses into FusedConv2D, FusedDepthwiseConv2D and _FusedMatMul.
import { op, type Handle } from './util.js';

const relu = op('aten::relu');
const hardtanh = op('aten::hardtanh');
const elu = op('aten::elu');
const sigmoid = op('aten::sigmoid');
const leakyRelu = op('aten::leaky_relu');
const where = op('aten::where.self');
const gt = op('aten::gt.Scalar');
const mul = op('aten::mul.Tensor');

/** TF.js prelu: x where x > 0, else alpha * x (alpha broadcast against x). */
export function prelu(x: Handle, alpha: Handle): Handle {
  return where(gt(x, 0), x, mul(x, alpha));
}

export function applyActivation(
  x: Handle,
  activation: string | undefined,
  preluWeights: Handle | undefined,
  leakyreluAlpha: number | undefined,
): Handle {
  switch (activation ?? 'linear') {
    case 'linear':
      return x;
    case 'relu':
      return relu(x);
    case 'relu6':
      return hardtanh(x, 0, 6);
    case 'elu':
      return elu(x);
    case 'sigmoid':
      return sigmoid(x);
    case 'leakyrelu':
      return leakyRelu(x, leakyreluAlpha ?? 0.2);
    case 'prelu':
      if (preluWeights === undefined) throw new Error('prelu activation needs preluActivationWeights');
      return prelu(x, preluWeights);
    default:
      throw new Error(`libtorch backend: unknown fused activation '${activation}'`);
  }
}
