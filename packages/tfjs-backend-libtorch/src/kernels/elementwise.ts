// Element-wise kernels: unary math, broadcasting binary math and comparisons, select, and the tensor
// factories (Fill, Range, LinSpace, ZerosLike, OnesLike). Most are one ATen call; extra calls are only made
// where TF.js semantics (output dtype, NaN handling, division by zero) differ from ATen's.
import {
  util,
  type DataType,
  type KernelConfig,
  type NamedAttrMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { CODE_DTYPE } from '../addon.js';
import type { LibtorchBackend } from '../backend.js';
import { prelu } from './activation.js';
import { kernel, op, scalarType, SCALAR_TYPE, type Handle } from './util.js';

const to = op('aten::to.dtype');
const clone = op('aten::clone');
const reshape = op('aten::reshape');
const clamp = op('aten::clamp');
const ceil = op('aten::ceil');
const floor = op('aten::floor');
const div = op('aten::div.Tensor');
const le = op('aten::le.Scalar');
const eqScalar = op('aten::eq.Scalar');
const maskedFill = op('aten::masked_fill.Scalar');
const nanToNum = op('aten::nan_to_num');
const add = op('aten::add.Tensor');
const sub = op('aten::sub.Tensor');
const square = op('aten::square');
const divMode = op('aten::div.Tensor_mode');
const remainder = op('aten::remainder.Tensor');
const stack = op('aten::stack');
const sumDims = op('aten::sum.dim_IntList');
const where = op('aten::where.self');
const full = op('aten::full');
const arange = op('aten::arange.start_step');
const linspace = op('aten::linspace');

type Dtypes = readonly DataType[];
const ALL: Dtypes = ['float32', 'int32', 'bool'];
const NUMERIC: Dtypes = ['float32', 'int32'];
const FLOAT: Dtypes = ['float32'];

/** The TF.js dtype of a tensor an ATen call returned (the addon narrows the others to these three). */
function dtypeOf(b: LibtorchBackend, h: Handle): DataType {
  const code = b.addon.dtype(h);
  const dtype = typeof code === 'number' ? CODE_DTYPE[code] : undefined;
  if (dtype === undefined) throw new Error(`libtorch backend: unexpected result dtype ${String(code)}`);
  return dtype;
}

/** `h` in `dtype`: ATen promotes where TF.js keeps the input's dtype (sin of int32 is int32 in TF.js), so
 * results are cast back. A float goes into int32 or bool the way a TF.js typed-array store takes it:
 * truncated, with NaN and Infinity becoming 0 (ATen's float to int conversion is undefined for those). */
function asDtype(b: LibtorchBackend, h: Handle, dtype: DataType): Handle {
  const from = dtypeOf(b, h);
  if (from === dtype) return h;
  if (from !== 'float32') return to(h, scalarType(dtype));
  const ints = to(nanToNum(h, 0, 0, 0), SCALAR_TYPE.int32);
  return dtype === 'int32' ? ints : to(ints, scalarType(dtype));
}

/** The input as ATen can take it: ops that ATen does not implement for int or bool run in float32. */
function accepted(h: Handle, dtype: DataType, native: Dtypes): Handle {
  return native.includes(dtype) ? h : to(h, SCALAR_TYPE.float32);
}

/** A Scalar argument matching a tensor's dtype: a double Scalar would promote an int32 tensor to float.
 * For int32, the bound is truncated (as TF.js's int32 store would) and kept inside the int32 range. */
function scalarFor(dtype: DataType, v: number): number | bigint {
  if (dtype !== 'int32') return v;
  if (Number.isNaN(v)) return 0n;
  return BigInt(Math.trunc(Math.min(Math.max(v, -(2 ** 31)), 2 ** 31 - 1)));
}

type UnaryFn = (x: Handle, attrs: NamedAttrMap, dtype: DataType) => Handle;

/**
 * A one-input kernel. `native`: input dtypes the ATen op implements (others run in float32); `out`: the
 * TF.js output dtype, 'same' for the input's (the cpu backend's rule for most unary kernels).
 */
function unary(
  name: string,
  fn: UnaryFn,
  native: Dtypes = ALL,
  out: DataType | 'same' = 'same',
): KernelConfig {
  return kernel(name, ({ x, inputs, attrs, b }) => {
    const dtype = inputs['x']!.dtype;
    const input = accepted(x('x'), dtype, native);
    const result = fn(input, attrs, native.includes(dtype) ? dtype : 'float32');
    return asDtype(b, result, out === 'same' ? dtype : out);
  });
}

/** A unary kernel that is a single ATen operator with no arguments besides the tensor. */
function unaryOp(name: string, schema: string, native: Dtypes = ALL, out: DataType | 'same' = 'same') {
  const f = op(schema);
  return unary(name, (x) => f(x), native, out);
}

type BinaryFn = (a: Handle, b: Handle, dtype: DataType) => Handle;

/**
 * A broadcasting two-input kernel (inputs a, b; TF.js makes their dtypes match before it runs). `out`: the
 * output dtype, 'a' for a's dtype (the cpu backend's rule for arithmetic); `native` as in `unary`.
 */
function binary(name: string, fn: BinaryFn, out: DataType | 'a' = 'a', native: Dtypes = ALL): KernelConfig {
  return kernel(name, ({ x, inputs, b }) => {
    const aDtype = inputs['a']!.dtype;
    const bDtype = inputs['b']!.dtype;
    const inNative = native.includes(aDtype) && native.includes(bDtype);
    const a = inNative ? x('a') : to(x('a'), SCALAR_TYPE.float32);
    const bb = inNative ? x('b') : to(x('b'), SCALAR_TYPE.float32);
    const result = fn(a, bb, inNative ? aDtype : 'float32');
    return asDtype(b, result, out === 'a' ? aDtype : out);
  });
}

/** A binary kernel that is a single ATen operator. */
function binaryOp(name: string, schema: string, out: DataType | 'a' = 'a', native: Dtypes = ALL) {
  const f = op(schema);
  return binary(name, (a, b) => f(a, b), out, native);
}

/**
 * Integer floor division and remainder: ATen rejects a zero divisor (ZeroDivisionError), where TF.js yields
 * 0 (NaN or Infinity stored into an int32 array). The fast path is one call; only when it throws are the
 * zero divisors replaced by 1 and their results zeroed.
 */
function intDivSafe(f: (a: Handle, b: Handle) => Handle, a: Handle, b: Handle): Handle {
  try {
    return f(a, b);
  } catch (error) {
    if (!/ZeroDivisionError/.test((error as Error).message)) throw error;
    const zero = eqScalar(b, 0n);
    return maskedFill(f(a, maskedFill(b, zero, 1n)), zero, 0n);
  }
}

/** TF.js FloorDiv is floor(a / b) and always int32 (the cast is `asDtype`'s). ATen's 'floor' rounding mode
 * is not used for floats: it follows Python, where 100 // -Infinity is -1, not floor(-0) = 0. */
function floorDiv(a: Handle, b: Handle, dtype: DataType): Handle {
  if (dtype === 'int32') return intDivSafe((p, q) => divMode(p, q, 'floor'), a, b);
  return floor(div(a, b));
}

/** TF.js mod takes the divisor's sign, like ATen's remainder (not fmod). */
function mod(a: Handle, b: Handle, dtype: DataType): Handle {
  return dtype === 'int32' ? intDivSafe((p, q) => remainder(p, q), a, b) : remainder(a, b);
}

/** TF.js step: 1 where x > 0, alpha elsewhere, NaN kept. clamp keeps NaN and ceil maps (0, 1] to 1. */
function step(x: Handle, attrs: NamedAttrMap): Handle {
  const alpha = (attrs['alpha'] as number | undefined) ?? 0;
  const ones = ceil(clamp(x, 0, 1));
  return alpha === 0 ? ones : maskedFill(ones, le(x, 0), alpha);
}

/** AddN: one add for two tensors, else stack and sum (one pass, no chain of intermediates). */
function addN(tensors: Handle[], dtype: DataType): Handle {
  if (tensors.length === 1) return clone(tensors[0]!);
  if (tensors.length === 2) return add(tensors[0]!, tensors[1]!);
  return sumDims(stack(tensors), [0], false, scalarType(dtype));
}

/** Select's condition as ATen's where takes it: bool, and a rank-1 condition over a higher-rank t selects
 * whole rows (TF.js's legacy where), so it gets trailing unit dimensions. */
function selectCondition(cond: Handle, condDtype: DataType, condRank: number, tRank: number): Handle {
  const c = condDtype === 'bool' ? cond : to(cond, SCALAR_TYPE.bool);
  return condRank === 1 && tRank > 1 ? reshape(c, [-1, ...new Array<number>(tRank - 1).fill(1)]) : c;
}

/** The device new tensors go on: the one the addon was set to when the backend was registered. */
const devices = new WeakMap<LibtorchBackend, string>();
function deviceOf(b: LibtorchBackend): string {
  let d = devices.get(b);
  if (d === undefined) {
    d = b.addon.info().device;
    devices.set(b, d);
  }
  return d;
}

/** Fill's dtype: the attribute, else what TF.js infers from the value. */
function fillDtype(attrs: NamedAttrMap): DataType {
  const dtype = attrs['dtype'] as DataType | undefined;
  return dtype ?? (typeof attrs['value'] === 'string' ? 'string' : 'float32');
}

/** A Fill value as a Scalar for `dtype`: int32 stores wrap like an Int32Array's; bool is truthiness. */
function fillValue(value: number, dtype: DataType): number | bigint | boolean {
  if (dtype === 'bool') return value !== 0 && !Number.isNaN(value);
  if (dtype === 'int32') return BigInt(value | 0);
  return value;
}

const fillNumeric = kernel('Fill', ({ attrs, b }) => {
  const dtype = fillDtype(attrs);
  const value = fillValue(Number(attrs['value']), dtype);
  return full(attrs['shape'] as number[], value, scalarType(dtype), null, deviceOf(b));
});

/** A string tensor of `shape` holding `value` everywhere. The backend keeps string tensors as encoded bytes
 * in JS (there is no ATen string tensor), so it is written there directly. */
function fillStrings(b: LibtorchBackend, shape: number[], value: string): TensorInfo {
  const bytes = util.encodeString(value);
  const values = new Array<Uint8Array>(util.sizeFromShape(shape)).fill(bytes);
  return { dataId: b.write(values, shape, 'string'), shape, dtype: 'string' };
}

/** Fill, also for strings (which `kernel` cannot return: they have no handle). */
const fill: KernelConfig = {
  ...fillNumeric,
  kernelFunc: (args) => {
    if (fillDtype(args.attrs ?? {}) !== 'string') return fillNumeric.kernelFunc(args);
    const { shape, value } = args.attrs as { shape: number[]; value: number | string };
    return fillStrings(args.backend as LibtorchBackend, shape, String(value));
  },
};

/** How many elements TF.js's range has: |ceil((stop - start) / step)|, none when the step points away from
 * stop (an increasing range with a negative step, or a decreasing one with a step over 1). A decreasing
 * range with step exactly 1 gets step -1. Returns [count, step]. */
function rangeLength(start: number, stop: number, step: number): [number, number] {
  if (start === stop || (start < stop && step < 0) || (stop < start && step > 1)) return [0, step];
  const s = stop < start && step === 1 ? -1 : step;
  return [Math.abs(Math.ceil((stop - start) / step)), s];
}

/** start, start + step, ... (n values). int32 with whole start and step is exact in integers; otherwise
 * the end is put half a step past the last value so that ATen's float count rounds to exactly n. */
function rangeValues(b: LibtorchBackend, start: number, step: number, n: number, dtype: DataType): Handle {
  const device = deviceOf(b);
  if (n === 0) return full([0], 0, scalarType(dtype), null, device);
  if (dtype === 'int32' && Number.isInteger(start) && Number.isInteger(step)) {
    const s = BigInt(start);
    const d = BigInt(step);
    return arange(s, s + d * BigInt(n), d, SCALAR_TYPE.int32, null, device);
  }
  const values = arange(start, start + (n - 0.5) * step, step, SCALAR_TYPE.float32, null, device);
  return dtype === 'float32' ? values : to(values, scalarType(dtype));
}

const relu = op('aten::relu');
const elu = op('aten::elu');
const eluBackward = op('aten::elu_backward');
const leakyRelu = op('aten::leaky_relu');

export const elementwiseKernels: KernelConfig[] = [
  // Unary math. ATen promotes int and bool inputs of the transcendental ops to float by itself.
  unaryOp('Abs', 'aten::abs', NUMERIC),
  unaryOp('Acos', 'aten::acos'),
  unaryOp('Acosh', 'aten::acosh'),
  unaryOp('Asin', 'aten::asin'),
  unaryOp('Asinh', 'aten::asinh'),
  unaryOp('Atan', 'aten::atan'),
  unaryOp('Atanh', 'aten::atanh'),
  unaryOp('Ceil', 'aten::ceil', NUMERIC),
  unaryOp('Cos', 'aten::cos'),
  unaryOp('Cosh', 'aten::cosh'),
  unaryOp('Erf', 'aten::erf'),
  unaryOp('Exp', 'aten::exp', ALL, 'float32'),
  unaryOp('Expm1', 'aten::expm1'),
  unaryOp('Floor', 'aten::floor', NUMERIC),
  unaryOp('Log', 'aten::log'),
  unaryOp('Log1p', 'aten::log1p'),
  unaryOp('Neg', 'aten::neg', NUMERIC),
  unaryOp('Reciprocal', 'aten::reciprocal'),
  // ATen rounds half to even, as TF.js does.
  unaryOp('Round', 'aten::round', NUMERIC),
  unaryOp('Rsqrt', 'aten::rsqrt'),
  // sign(NaN) is 0 in ATen and in TF.js's cpu backend.
  unaryOp('Sign', 'aten::sign'),
  unaryOp('Sin', 'aten::sin'),
  unaryOp('Sinh', 'aten::sinh'),
  unaryOp('Sqrt', 'aten::sqrt'),
  unaryOp('Square', 'aten::square'),
  unaryOp('Tan', 'aten::tan'),
  unaryOp('Tanh', 'aten::tanh'),
  unaryOp('Sigmoid', 'aten::sigmoid'),
  unaryOp('IsNan', 'aten::isnan', ALL, 'bool'),
  unaryOp('IsInf', 'aten::isinf', ALL, 'bool'),
  unaryOp('IsFinite', 'aten::isfinite', ALL, 'bool'),
  unaryOp('LogicalNot', 'aten::logical_not', ALL, 'bool'),

  // Activations. relu and clamp keep NaN, as Math.max/min do in TF.js.
  unary('Relu', (x) => relu(x), NUMERIC),
  unary('Relu6', (x, _, dtype) => clamp(x, scalarFor(dtype, 0), scalarFor(dtype, 6)), NUMERIC),
  // TF.js elu has alpha 1: x >= 0 ? x : exp(x) - 1.
  unary('Elu', (x) => elu(x), FLOAT),
  unaryOp('Selu', 'aten::selu', FLOAT),
  unaryOp('Softplus', 'aten::softplus', FLOAT),
  unary('Step', step, FLOAT),
  unary('LeakyRelu', (x, attrs) => leakyRelu(x, attrs['alpha'] as number), FLOAT, 'float32'),
  unary(
    'ClipByValue',
    (x, attrs, dtype) =>
      clamp(
        x,
        scalarFor(dtype, attrs['clipValueMin'] as number),
        scalarFor(dtype, attrs['clipValueMax'] as number),
      ),
    NUMERIC,
  ),
  kernel('Prelu', ({ x, b }) => asDtype(b, prelu(x('x'), x('alpha')), 'float32')),
  // EluGrad from the output y: dy where y > 0, dy * (y + 1) elsewhere (alpha = scale = 1).
  kernel('EluGrad', ({ x, b }) => asDtype(b, eluBackward(x('dy'), 1, 1, 1, true, x('y')), 'float32')),

  // Arithmetic: the output keeps a's dtype, as in TF.js (ATen would promote int32 / int32 to float).
  binaryOp('Add', 'aten::add.Tensor'),
  binaryOp('Sub', 'aten::sub.Tensor', 'a', NUMERIC),
  binaryOp('Multiply', 'aten::mul.Tensor'),
  binaryOp('RealDiv', 'aten::div.Tensor'),
  binary('FloorDiv', floorDiv, 'int32', NUMERIC),
  binary('Mod', mod, 'a', NUMERIC),
  // int32 ** int32 stays int32, as in TF.js (2 ** -1 truncates to 0 in both).
  binaryOp('Pow', 'aten::pow.Tensor_Tensor', 'a', NUMERIC),
  // maximum and minimum propagate NaN, as Math.max and Math.min do.
  binaryOp('Maximum', 'aten::maximum'),
  binaryOp('Minimum', 'aten::minimum'),
  binary('SquaredDifference', (a, b) => square(sub(a, b)), 'a', NUMERIC),
  binaryOp('Atan2', 'aten::atan2'),
  binaryOp('BitwiseAnd', 'aten::bitwise_and.Tensor'),
  kernel('AddN', ({ inputs, b }) => {
    // TF.js passes AddN's inputs as an array.
    const tensors = Object.values(inputs).filter((t): t is TensorInfo => t !== undefined);
    return addN(
      tensors.map((t) => b.handle(t)),
      tensors[0]!.dtype,
    );
  }),

  // Comparisons and logic return bool.
  binaryOp('Equal', 'aten::eq.Tensor', 'bool'),
  binaryOp('NotEqual', 'aten::ne.Tensor', 'bool'),
  binaryOp('Greater', 'aten::gt.Tensor', 'bool'),
  binaryOp('GreaterEqual', 'aten::ge.Tensor', 'bool'),
  binaryOp('Less', 'aten::lt.Tensor', 'bool'),
  binaryOp('LessEqual', 'aten::le.Tensor', 'bool'),
  binaryOp('LogicalAnd', 'aten::logical_and', 'bool'),
  binaryOp('LogicalOr', 'aten::logical_or', 'bool'),
  binaryOp('LogicalXor', 'aten::logical_xor', 'bool'),

  // where promotes t and e as TF.js's upcastType does (bool < int32 < float32).
  kernel('Select', ({ x, inputs }) => {
    const cond = inputs['condition']!;
    const c = selectCondition(x('condition'), cond.dtype, cond.shape.length, inputs['t']!.shape.length);
    return where(c, x('t'), x('e'));
  }),

  // Factories. zeros_like and ones_like keep the dtype and device.
  unaryOp('ZerosLike', 'aten::zeros_like'),
  unaryOp('OnesLike', 'aten::ones_like'),
  fill,
  kernel('Range', ({ attrs, b }) => {
    const start = attrs['start'] as number;
    const [n, step] = rangeLength(start, attrs['stop'] as number, attrs['step'] as number);
    return rangeValues(b, start, step, n, (attrs['dtype'] as DataType | undefined) ?? 'float32');
  }),
  kernel('LinSpace', ({ attrs, b }) =>
    linspace(
      attrs['start'] as number,
      attrs['stop'] as number,
      attrs['num'] as number,
      SCALAR_TYPE.float32,
      null,
      deviceOf(b),
    ),
  ),
];
