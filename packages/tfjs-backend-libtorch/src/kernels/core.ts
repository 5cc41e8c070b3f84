// Storage-level kernels: identity, reshape and cast share storage or convert dtype without TF.js copies.
import type { DataType, KernelConfig } from '@tensorflow/tfjs-core';
import { kernel, op, scalarType } from './util.js';

const alias = op('aten::alias');
const reshape = op('aten::reshape');
const to = op('aten::to.dtype');
const ne = op('aten::ne.Scalar');

export const coreKernels: KernelConfig[] = [
  kernel('Identity', ({ x }) => alias(x('x'))),
  kernel('Reshape', ({ x, attrs }) => reshape(x('x'), attrs['shape'] as number[])),
  kernel('Cast', ({ x, inputs, attrs }) => {
    const dtype = attrs['dtype'] as DataType;
    const from = inputs['x']!.dtype;
    if (dtype === 'bool' && from !== 'bool') return ne(x('x'), 0);
    // TF.js truncates float -> int toward zero, as ATen does.
    return to(x('x'), scalarType(dtype));
  }),
];
