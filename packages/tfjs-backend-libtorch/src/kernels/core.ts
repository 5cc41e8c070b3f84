// Storage-level kernels: identity, reshape and cast share storage or convert dtype without TF.js copies.
import { util, type DataType, type KernelConfig } from '@tensorflow/tfjs-core';
import { BACKEND_NAME } from '../backend.js';
import { kernel, op, scalarType } from './util.js';

const reshape = op('aten::reshape');
const to = op('aten::to.dtype');
const ne = op('aten::ne.Scalar');

const reshapeKernel = kernel('Reshape', ({ x, attrs }) =>
  reshape(x('x'), attrs['shape'] as number[]),
).kernelFunc;

export const coreKernels: KernelConfig[] = [
  {
    // Identity shares the data: one more reference, no new tensor (TF.js clones through it, and counts data
    // ids around custom gradients, so a new id here would read as a leak).
    kernelName: 'Identity',
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs['x']!;
      (backend as { incRef(id: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    },
  },
  {
    // A reshape is an ATen view (no copy). String tensors have no ATen tensor: they share the data id.
    kernelName: 'Reshape',
    backendName: BACKEND_NAME,
    kernelFunc: (params) => {
      const x = params.inputs['x']!;
      if (x.dtype !== 'string') return reshapeKernel(params);
      const shape = util.inferFromImplicitShape(
        params.attrs!['shape'] as number[],
        util.sizeFromShape(x.shape),
      );
      (params.backend as { incRef(id: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape, dtype: x.dtype };
    },
  },
  kernel('Cast', ({ x, inputs, attrs }) => {
    const dtype = attrs['dtype'] as DataType;
    const from = inputs['x']!.dtype;
    if (dtype === 'bool' && from !== 'bool') return ne(x('x'), 0);
    // TF.js truncates float -> int toward zero, as ATen does.
    return to(x('x'), scalarType(dtype));
  }),
];
