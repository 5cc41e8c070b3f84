// A small, generic N-API surface over libtorch: tensors are opaque handles owning an at::Tensor, and any ATen
// operator is called by schema name through the c10 dispatcher. TF.js semantics live in TypeScript.
#include <napi.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

std::atomic<int64_t> g_live{0};
c10::Device g_device(c10::kCPU);

// dtype codes shared with TypeScript (src/addon.ts): 0 float32, 1 int32, 2 bool.
at::ScalarType toScalarType(int code) {
  switch (code) {
    case 0: return at::kFloat;
    case 1: return at::kInt;
    case 2: return at::kBool;
    case 3: return at::kDouble;
    default: throw std::runtime_error("unsupported dtype code " + std::to_string(code));
  }
}

int fromScalarType(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return 0;
    case at::kInt: return 1;
    case at::kBool: return 2;
    case at::kDouble: return 3;
    default: return -1;
  }
}

struct Handle {
  at::Tensor tensor;
  bool live = true;
  explicit Handle(at::Tensor t) : tensor(std::move(t)) { g_live++; }
  void release() {
    if (live) {
      live = false;
      tensor.reset();
      g_live--;
    }
  }
  ~Handle() { release(); }
};

// The finalizer is a "basic" one (it does not touch JS), so Node runs it during garbage collection. A regular
// finalizer is deferred to a later turn of the event loop: in a synchronous training loop (no await) the
// disposed handles' bookkeeping then piled up, ~180 KB per DCGAN step.
Napi::Value wrap(Napi::Env env, at::Tensor t) {
  return Napi::External<Handle>::New(env, new Handle(std::move(t)), [](Napi::BasicEnv, Handle* h) { delete h; });
}

Handle* unwrapHandle(const Napi::Value& v, const char* what) {
  if (!v.IsExternal()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a tensor handle");
  Handle* h = v.As<Napi::External<Handle>>().Data();
  if (!h->live) throw Napi::Error::New(v.Env(), std::string(what) + ": tensor handle was disposed");
  return h;
}

const at::Tensor& unwrap(const Napi::Value& v, const char* what) { return unwrapHandle(v, what)->tensor; }

int64_t bigintValue(const Napi::Value& v) {
  bool lossless = true;
  return v.As<Napi::BigInt>().Int64Value(&lossless);
}

std::vector<int64_t> toIntVector(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value e = arr.Get(i);
    out[i] = e.IsBigInt() ? bigintValue(e) : e.As<Napi::Number>().Int64Value();
  }
  return out;
}

// ---- tensors ---------------------------------------------------------------------------------------------

// fromBuffer(typedArray, shape, dtypeCode) -> handle (the data is copied; the device is the current default).
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ta = info[0].As<Napi::TypedArray>();
  auto shape = toIntVector(info[1], "fromBuffer shape");
  at::ScalarType st = toScalarType(info[2].As<Napi::Number>().Int32Value());
  c10::InferenceMode guard;
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(st));
  size_t bytes = t.numel() * t.element_size();
  if (ta.ByteLength() != bytes) {
    throw Napi::RangeError::New(env, "fromBuffer: " + std::to_string(ta.ByteLength()) + " bytes given, shape needs " +
                                         std::to_string(bytes));
  }
  if (bytes > 0) {
    auto* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    std::memcpy(t.data_ptr(), src, bytes);
  }
  if (st == at::kBool && bytes > 0) t = t.ne(0);  // TF.js bool data may hold any non-zero byte
  if (g_device != c10::Device(c10::kCPU)) t = t.to(g_device);
  return wrap(env, std::move(t));
}

Napi::Value makeTypedArray(Napi::Env env, const at::Tensor& cpu) {
  size_t n = cpu.numel();
  int code = fromScalarType(cpu.scalar_type());
  size_t esize = cpu.element_size();
  auto buf = Napi::ArrayBuffer::New(env, n * esize);
  if (n > 0) std::memcpy(buf.Data(), cpu.data_ptr(), n * esize);
  switch (code) {
    case 0: return Napi::Float32Array::New(env, n, buf, 0);
    case 1: return Napi::Int32Array::New(env, n, buf, 0);
    case 2: return Napi::Uint8Array::New(env, n, buf, 0);
    case 3: return Napi::Float64Array::New(env, n, buf, 0);
    default: throw Napi::TypeError::New(env, std::string("toBuffer: unsupported dtype ") + c10::toString(cpu.scalar_type()));
  }
}

at::Tensor contiguousCpu(const at::Tensor& t) {
  at::Tensor c = t.device().is_cpu() ? t : t.cpu();
  return c.contiguous();
}

Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  c10::InferenceMode guard;
  return makeTypedArray(info.Env(), contiguousCpu(unwrap(info[0], "toBuffer")));
}

// Async read: the device->host copy and densifying run on a worker thread.
class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, at::Tensor t)
      : Napi::AsyncWorker(env), tensor_(std::move(t)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      c10::InferenceMode guard;
      result_ = contiguousCpu(tensor_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    try {
      deferred_.Resolve(makeTypedArray(Env(), result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
    result_.reset();
    tensor_.reset();
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  at::Tensor tensor_, result_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value ToBufferAsync(const Napi::CallbackInfo& info) {
  auto* w = new ReadWorker(info.Env(), unwrap(info[0], "toBufferAsync"));
  auto p = w->promise();
  w->Queue();
  return p;
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  if (info[0].IsExternal()) info[0].As<Napi::External<Handle>>().Data()->release();
  return info.Env().Undefined();
}

Napi::Value Shape(const Napi::CallbackInfo& info) {
  const at::Tensor& t = unwrap(info[0], "shape");
  auto arr = Napi::Array::New(info.Env(), t.dim());
  for (int64_t i = 0; i < t.dim(); i++) arr.Set(i, Napi::Number::New(info.Env(), static_cast<double>(t.size(i))));
  return arr;
}

// meta(handle) -> [dtypeCode, ...shape] in one call.
Napi::Value Meta(const Napi::CallbackInfo& info) {
  const at::Tensor& t = unwrap(info[0], "meta");
  auto arr = Napi::Array::New(info.Env(), t.dim() + 1);
  arr.Set(uint32_t(0), Napi::Number::New(info.Env(), fromScalarType(t.scalar_type())));
  for (int64_t i = 0; i < t.dim(); i++) arr.Set(i + 1, Napi::Number::New(info.Env(), static_cast<double>(t.size(i))));
  return arr;
}

Napi::Value Strides(const Napi::CallbackInfo& info) {
  const at::Tensor& t = unwrap(info[0], "strides");
  auto arr = Napi::Array::New(info.Env(), t.dim());
  for (int64_t i = 0; i < t.dim(); i++) arr.Set(i, Napi::Number::New(info.Env(), static_cast<double>(t.stride(i))));
  return arr;
}

Napi::Value Dtype(const Napi::CallbackInfo& info) {
  const at::Tensor& t = unwrap(info[0], "dtype");
  int code = fromScalarType(t.scalar_type());
  if (code < 0) return Napi::String::New(info.Env(), c10::toString(t.scalar_type()));
  return Napi::Number::New(info.Env(), code);
}

Napi::Value LiveCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(g_live.load()));
}

// ---- operators -------------------------------------------------------------------------------------------

std::vector<c10::OperatorHandle> g_ops;

// op(name, overload) -> id; throws when the schema is unknown.
Napi::Value Op(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>();
  std::string overload = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  auto h = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!h.has_value()) {
    throw Napi::Error::New(info.Env(), "libtorch has no operator " + name + (overload.empty() ? "" : "." + overload));
  }
  g_ops.push_back(*h);
  return Napi::Number::New(info.Env(), static_cast<double>(g_ops.size() - 1));
}

Napi::Value Schema(const Napi::CallbackInfo& info) {
  size_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id >= g_ops.size()) throw Napi::RangeError::New(info.Env(), "unknown operator id");
  std::ostringstream os;
  os << g_ops[id].schema();
  return Napi::String::New(info.Env(), os.str());
}

c10::IValue toIValue(const Napi::Value& v, const c10::TypePtr& type, const std::string& argName);

c10::IValue scalarIValue(const Napi::Value& v, const std::string& argName) {
  if (v.IsBigInt()) return c10::IValue(bigintValue(v));
  if (v.IsBoolean()) return c10::IValue(v.As<Napi::Boolean>().Value());
  if (v.IsNumber()) return c10::IValue(v.As<Napi::Number>().DoubleValue());
  throw Napi::TypeError::New(v.Env(), argName + ": expected a number, bigint or boolean (Scalar)");
}

c10::IValue toIValue(const Napi::Value& v, const c10::TypePtr& type, const std::string& argName) {
  Napi::Env env = v.Env();
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      return c10::IValue(unwrap(v, argName.c_str()));
    case c10::TypeKind::OptionalType:
      if (v.IsNull() || v.IsUndefined()) return c10::IValue();
      return toIValue(v, type->expectRef<c10::OptionalType>().getElementType(), argName);
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
    case c10::TypeKind::ScalarTypeType:
    case c10::TypeKind::LayoutType:
    case c10::TypeKind::MemoryFormatType:
      if (v.IsBigInt()) return c10::IValue(bigintValue(v));
      if (!v.IsNumber()) throw Napi::TypeError::New(env, argName + ": expected an integer");
      return c10::IValue(v.As<Napi::Number>().Int64Value());
    case c10::TypeKind::FloatType:
      if (!v.IsNumber()) throw Napi::TypeError::New(env, argName + ": expected a number");
      return c10::IValue(v.As<Napi::Number>().DoubleValue());
    case c10::TypeKind::BoolType:
      if (!v.IsBoolean()) throw Napi::TypeError::New(env, argName + ": expected a boolean");
      return c10::IValue(v.As<Napi::Boolean>().Value());
    case c10::TypeKind::NumberType:
      return scalarIValue(v, argName);
    case c10::TypeKind::StringType:
      if (!v.IsString()) throw Napi::TypeError::New(env, argName + ": expected a string");
      return c10::IValue(v.As<Napi::String>().Utf8Value());
    case c10::TypeKind::DeviceObjType:
      if (!v.IsString()) throw Napi::TypeError::New(env, argName + ": expected a device string");
      return c10::IValue(c10::Device(v.As<Napi::String>().Utf8Value()));
    case c10::TypeKind::ListType: {
      if (!v.IsArray()) throw Napi::TypeError::New(env, argName + ": expected an array");
      auto arr = v.As<Napi::Array>();
      const auto& elem = type->expectRef<c10::ListType>().getElementType();
      switch (elem->kind()) {
        case c10::TypeKind::IntType:
        case c10::TypeKind::SymIntType:
          return c10::IValue(toIntVector(v, argName.c_str()));
        case c10::TypeKind::FloatType: {
          std::vector<double> out(arr.Length());
          for (uint32_t i = 0; i < arr.Length(); i++) out[i] = arr.Get(i).As<Napi::Number>().DoubleValue();
          return c10::IValue(out);
        }
        case c10::TypeKind::BoolType: {
          c10::List<bool> out;
          for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(arr.Get(i).As<Napi::Boolean>().Value());
          return c10::IValue(out);
        }
        case c10::TypeKind::TensorType: {
          std::vector<at::Tensor> out;
          out.reserve(arr.Length());
          for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(unwrap(arr.Get(i), argName.c_str()));
          return c10::IValue(out);
        }
        case c10::TypeKind::OptionalType: {
          c10::List<c10::optional<at::Tensor>> out;
          for (uint32_t i = 0; i < arr.Length(); i++) {
            Napi::Value e = arr.Get(i);
            if (e.IsNull() || e.IsUndefined()) out.push_back(c10::nullopt);
            else out.push_back(unwrap(e, argName.c_str()));
          }
          return c10::IValue(out);
        }
        default:
          break;
      }
      throw Napi::TypeError::New(env, argName + ": unsupported list element type " + elem->str());
    }
    default:
      throw Napi::TypeError::New(env, argName + ": unsupported argument type " + type->str());
  }
}

// TF.js knows float32, int32 and bool: results in other dtypes (int64 indices, float64) are narrowed, unless
// the caller keeps float64 (float64 statistics outside TF.js).
at::Tensor normalized(const at::Tensor& t, bool keepDouble) {
  if (keepDouble && t.scalar_type() == at::kDouble) return t;
  switch (t.scalar_type()) {
    case at::kFloat:
    case at::kInt:
    case at::kBool:
      return t;
    case at::kLong:
    case at::kShort:
    case at::kChar:
    case at::kByte:
      return t.to(at::kInt);
    default:
      return t.to(at::kFloat);
  }
}

Napi::Value fromIValue(Napi::Env env, const c10::IValue& v, bool keepDouble) {
  if (v.isTensor()) {
    // Outputs an operator was asked not to compute (output_mask false) come back undefined.
    if (!v.toTensor().defined()) return env.Null();
    return wrap(env, normalized(v.toTensor(), keepDouble));
  }
  if (v.isTensorList()) {
    auto list = v.toTensorList();
    auto arr = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) arr.Set(i, wrap(env, normalized(list.get(i), keepDouble)));
    return arr;
  }
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    auto arr = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); i++) arr.Set(i, fromIValue(env, elems[i], keepDouble));
    return arr;
  }
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isNone()) return env.Null();
  throw Napi::TypeError::New(env, "unsupported return type " + v.tagKind());
}

// call(id, args[], keepFloat64?) -> handle | [handles] | number | boolean | null. Missing trailing arguments take the
// schema's defaults.
Napi::Value Call(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id >= g_ops.size()) throw Napi::RangeError::New(env, "unknown operator id");
  const c10::OperatorHandle& op = g_ops[id];
  const c10::FunctionSchema& schema = op.schema();
  const auto& args = schema.arguments();
  auto jsArgs = info[1].As<Napi::Array>();
  uint32_t given = jsArgs.Length();
  if (given > args.size()) {
    throw Napi::TypeError::New(env, schema.name() + ": " + std::to_string(given) + " arguments given, schema takes " +
                                        std::to_string(args.size()));
  }
  torch::jit::Stack stack;
  stack.reserve(args.size());
  for (size_t i = 0; i < args.size(); i++) {
    if (i < given) {
      Napi::Value v = jsArgs.Get(i);
      if (!v.IsUndefined()) {
        stack.emplace_back(toIValue(v, args[i].type(), schema.name() + " argument '" + args[i].name() + "'"));
        continue;
      }
    }
    if (!args[i].default_value().has_value()) {
      throw Napi::TypeError::New(env, schema.name() + ": argument '" + args[i].name() + "' is required");
    }
    stack.push_back(*args[i].default_value());
  }
  try {
    c10::InferenceMode guard;
    op.callBoxed(&stack);
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, schema.name() + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, schema.name() + ": " + e.what());
  }
  bool keepDouble = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  if (stack.empty()) return env.Undefined();
  if (stack.size() == 1) return fromIValue(env, stack[0], keepDouble);
  auto arr = Napi::Array::New(env, stack.size());
  for (size_t i = 0; i < stack.size(); i++) arr.Set(i, fromIValue(env, stack[i], keepDouble));
  return arr;
}

// ---- runtime settings ------------------------------------------------------------------------------------

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::RangeError::New(info.Env(), "setNumThreads: need at least 1 thread");
  at::set_num_threads(n);
  return info.Env().Undefined();
}

Napi::Value SetDevice(const Napi::CallbackInfo& info) {
  std::string d = info[0].As<Napi::String>();
  try {
    c10::Device dev(d);
    if (dev.is_cuda() && !at::hasCUDA()) throw std::runtime_error("this libtorch has no CUDA");
    g_device = dev;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), "setDevice('" + d + "'): " + e.what());
  }
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("version", Napi::String::New(env, TORCH_VERSION));
  o.Set("threads", Napi::Number::New(env, at::get_num_threads()));
  o.Set("cuda", Napi::Boolean::New(env, at::hasCUDA()));
  o.Set("mkldnn", Napi::Boolean::New(env, at::hasMKLDNN()));
  o.Set("device", Napi::String::New(env, g_device.str()));
  o.Set("parallel", Napi::String::New(env, at::get_parallel_info()));
  return o;
}

// glibc's allocator statistics (bytes): in use, free inside the heap, and in mmapped blocks. For leak and
// fragmentation checks.
Napi::Value MallocStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 m = mallinfo2();
  o.Set("inUse", Napi::Number::New(env, static_cast<double>(m.uordblks + m.hblkhd)));
  o.Set("heapFree", Napi::Number::New(env, static_cast<double>(m.fordblks)));
  o.Set("mmapped", Napi::Number::New(env, static_cast<double>(m.hblkhd)));
#endif
  return o;
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

// Activations of a few MB are allocated and freed on every kernel call. glibc serves such blocks with mmap
// and returns them to the OS on free, so each new tensor page-faults its memory in again (measured: ~200
// faults and ~1.4 ms for a 3 MB ReLU output, against 0.06 ms once memory is reused). Blocks up to 32 MB now
// come from the heap, which is not trimmed below 1 GB free, so freed memory is reused (a 2-thread DCGAN-28
// step: 120 against 169 ms). TFJS_LIBTORCH_MALLOC_TUNING=0 leaves glibc's defaults.
void tuneMalloc() {
#ifdef M_MMAP_THRESHOLD
  const char* off = std::getenv("TFJS_LIBTORCH_MALLOC_TUNING");
  if (off != nullptr && std::string(off) == "0") return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tuneMalloc();
  exports.Set("fromBuffer", Napi::Function::New(env, guarded<FromBuffer>));
  exports.Set("toBuffer", Napi::Function::New(env, guarded<ToBuffer>));
  exports.Set("toBufferAsync", Napi::Function::New(env, guarded<ToBufferAsync>));
  exports.Set("dispose", Napi::Function::New(env, guarded<Dispose>));
  exports.Set("shape", Napi::Function::New(env, guarded<Shape>));
  exports.Set("meta", Napi::Function::New(env, guarded<Meta>));
  exports.Set("strides", Napi::Function::New(env, guarded<Strides>));
  exports.Set("dtype", Napi::Function::New(env, guarded<Dtype>));
  exports.Set("liveCount", Napi::Function::New(env, guarded<LiveCount>));
  exports.Set("op", Napi::Function::New(env, guarded<Op>));
  exports.Set("schema", Napi::Function::New(env, guarded<Schema>));
  exports.Set("call", Napi::Function::New(env, guarded<Call>));
  exports.Set("setNumThreads", Napi::Function::New(env, guarded<SetNumThreads>));
  exports.Set("setDevice", Napi::Function::New(env, guarded<SetDevice>));
  exports.Set("info", Napi::Function::New(env, guarded<Info>));
  exports.Set("mallocStats", Napi::Function::New(env, guarded<MallocStats>));
  return exports;
}

}  // namespace

NODE_API_MODULE(tfjs_libtorch, Init)
