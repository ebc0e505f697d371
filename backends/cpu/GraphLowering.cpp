//===- GraphLowering.cpp - kiln IR -> LLVM-dialect graph functions --------===//
//
// Each kiln function becomes `void kiln_graph_<name>(void **buffers,
// const KilnRuntimeContext *rt)`. Values live in one of the buffers the
// runtime passes (weights, arena, ids, positions, logits, KV caches) at an
// offset fixed by the shared memory plan (include/kiln/Backend/MemoryPlan.h:
// views cost nothing, other results share the arena by live intervals),
// so the generated code allocates nothing; the cpu backend adds one scratch
// region for W8A8's int8 inputs.
//
//  - matrix work calls the kernels (kiln_uk_linear, kiln_uk_attention);
//    element-wise work becomes loops (scf + arith + math), which LLVM
//    vectorises for the target CPU.
//
//===----------------------------------------------------------------------===//
#include "CPUBackend.h"
#include "kernels/KernelABI.h"

#include "kiln/Backend/MemoryPlan.h"
#include "kiln/IR/Adapters.h"
#include "kiln/IR/KilnOps.h"
#include "kiln/Interpreter/Interpreter.h"
#include "kiln/Quant/Quant.h"
#include "kiln/Support/Checksum.h"
#include "kiln/Support/Error.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cstring>
#include <functional>

using namespace mlir;

namespace kiln::cpu {

namespace {

// The buffers of a graph call (include/kiln/Backend/MemoryPlan.h).
enum Buffer : int {
  kWeights = kWeightsBuffer,
  kArena = kArenaBuffer,
  kInputIds = kInputIdsBuffer,
  kPositions = kPositionsBuffer,
  kLogits = kLogitsBuffer,
  kFirstCache = kFirstCacheBuffer
};

int64_t numElements(Type t) { return cast<RankedTensorType>(t).getNumElements(); }
ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }
int64_t lastDim(Value v) { return shapeOf(v).back(); }

[[noreturn]] void unsupported(Operation *op, const std::string &why) {
  throw Error("cpu backend: cannot lower '" + op->getName().getStringRef().str() + "': " + why);
}

class GraphBuilder {
public:
  GraphBuilder(func::FuncOp func, ModuleOp out, WeightPacker &packer, const LoweringOptions &options)
      : func_(func), out_(out), packer_(packer), options_(options), b_(func.getContext()), loc_(func.getLoc()) {}

  GraphInfo lower() {
    plan();
    GraphInfo info;
    info.name = func_.getSymName().str();
    info.symbol = "kiln_graph_" + info.name;
    info.batch = shapeOf(func_.getArgument(0))[0];
    info.tokens = shapeOf(func_.getArgument(0))[1];
    info.arenaBytes = arenaBytes_;
    emit(info.symbol);
    return info;
  }

private:
  //===--------------------------------------------------------------------===//
  // Memory plan
  //===--------------------------------------------------------------------===//

  void plan() {
    MemoryPlan plan = planMemory(func_, "cpu backend");
    places_ = std::move(plan.places);
    arenaBytes_ = plan.arenaBytes;
    Block &body = func_.getBody().front();
    // One scratch region after the plan for the int8 copies of W8A8 inputs
    // (ops run one at a time, so they all share it).
    for (Operation &op : body) {
      auto l = dyn_cast<LinearOp>(op);
      auto h = dyn_cast<LMHeadOp>(op);
      if ((l && l.getInputQuant()) || (h && h.getInputQuant())) {
        Value input = l ? l.getInput() : h.getInput();
        int64_t M = rows(input), K = lastDim(input), Kp = (K + 3) / 4 * 4;
        scratchBytes_ = std::max<int64_t>(scratchBytes_, round64(M * Kp) + round64(M * 4) + round64(M * ((K + 31) / 32) * 4));
      }
      // ... and for the bf16 copies of the inputs of products computed in bf16.
      if ((l && !l.getInputQuant() && bf16Math(l.getWeight())) || (h && !h.getInputQuant() && bf16Math(h.getEmbedding()))) {
        Value input = l ? l.getInput() : h.getInput();
        scratchBytes_ = std::max<int64_t>(scratchBytes_, round64(rows(input) * (lastDim(input) + 1) / 2 * 4));
      }
    }
    scratchOffset_ = round64(int64_t(arenaBytes_));
    if (scratchBytes_ > 0)
      arenaBytes_ = uint64_t(scratchOffset_ + scratchBytes_);
  }

  //===--------------------------------------------------------------------===//
  // Code emission
  //===--------------------------------------------------------------------===//

  Type ptrTy() { return LLVM::LLVMPointerType::get(b_.getContext()); }
  Value i64(int64_t v) { return b_.create<arith::ConstantIntOp>(loc_, v, 64); }
  Value f32(double v) { return b_.create<arith::ConstantFloatOp>(loc_, APFloat(float(v)), b_.getF32Type()); }

  Value elementPtr(Value base, Value index, Type elem) {
    return b_.create<LLVM::GEPOp>(loc_, ptrTy(), elem, base, ValueRange{index});
  }
  Value load(Value base, Value index, Type elem = Type()) {
    elem = elem ? elem : b_.getF32Type();
    return b_.create<LLVM::LoadOp>(loc_, elem, elementPtr(base, index, elem));
  }
  void store(Value value, Value base, Value index) {
    b_.create<LLVM::StoreOp>(loc_, value, elementPtr(base, index, value.getType()));
  }
  Value add(Value a, Value b) { return b_.create<arith::AddIOp>(loc_, a, b); }
  Value mul(Value a, Value b) { return b_.create<arith::MulIOp>(loc_, a, b); }

  /// for (iv = 0; iv < n; ++iv) body(iv as i64).
  void loop(int64_t n, function_ref<void(Value)> body) {
    // i64 induction variables: no index type survives into the LLVM dialect.
    b_.create<scf::ForOp>(loc_, i64(0), i64(n), i64(1), ValueRange{}, [&](OpBuilder &nested, Location, Value iv, ValueRange) {
      OpBuilder::InsertionGuard guard(b_);
      b_.setInsertionPoint(nested.getInsertionBlock(), nested.getInsertionPoint());
      body(iv);
      b_.create<scf::YieldOp>(loc_);
    });
  }
  /// Base pointer of a value (weights need the layout their consumer reads).
  Value ptr(Value v, const std::string &weightLayout = "rowmajor") {
    const Place &p = places_.at(v);
    if (p.buffer == kWeights && globalOf(v).getAdapter())
      return elementPtr(bases_.back(), i64(int64_t(packer_.adapterOffset(globalOf(v), weightLayout))), b_.getI8Type());
    if (p.buffer == kWeights)
      return elementPtr(bases_[kWeights], i64(int64_t(packer_.offset(globalOf(v), weightLayout))), b_.getI8Type());
    return elementPtr(bases_[size_t(p.buffer)], i64(p.offset), b_.getF32Type());
  }
  int64_t stride(Value v) { return places_.at(v).rowStride; }
  std::string weightFormat(Value v) {
    GlobalOp global = globalOf(v);
    return global ? packer_.format(global) : "f32";
  }
  /// The storage format of this function's KV caches (all updates agree).
  CacheFormat cacheFormat() {
    std::optional<CacheFormat> format;
    func_.walk([&](CacheUpdateOp c) {
      if (format && *format != c.getFormat())
        unsupported(c, "KV cache updates of different formats in one function");
      format = c.getFormat();
    });
    return format.value_or(CacheFormat::f32);
  }

  static int64_t round64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

  /// W8A8 / W4A8 (a product with `input_quant`): quantize the input rows
  /// into the scratch region, then the integer product. `transposed`: the
  /// weight is an LM head's [vocab, dim] table.
  void emitIntegerProduct(Operation *op, Value input, Value weight, std::optional<InputQuantization> mode,
                          std::optional<APFloat> scale, Value bias, Value result, bool transposed) {
    std::string format = weightFormat(weight), t = transposed ? ".t" : "";
    bool int4 = format.rfind("int4", 0) == 0;
    if (format != "int8-sym" && !int4)
      unsupported(op, "an int8 input needs int8 per-channel or int4 weights, got " + format);
    int64_t m = rows(input), k = lastDim(input), Kp = (k + 3) / 4 * 4;
    Value M = i64(m), K = i64(k), N = i64(lastDim(result));
    Value xq = scratch();
    Value xscale = elementPtr(bases_[kArena], i64(scratchOffset_ + round64(m * Kp)), b_.getI8Type());
    Value xsums = int4 ? elementPtr(bases_[kArena], i64(scratchOffset_ + round64(m * Kp) + round64(m * 4)), b_.getI8Type())
                       : null();
    double staticScale = mode == InputQuantization::Static ? scale->convertToDouble() : 0.0;
    callKernel("kiln_uk_quantize_rows", {rt_, ptr(input), M, K, f32(staticScale), xq, xscale, xsums});
    if (!bias)
      bias = null();
    if (int4) {
      bool symmetric = format.size() >= 4 && format.compare(format.size() - 4, 4, "-sym") == 0;
      callKernel("kiln_uk_linear_w4a8", {rt_, xq, xscale, xsums, ptr(weight, "q4x4" + t), ptr(weight, "q4x4.scales" + t),
                                         symmetric ? null() : ptr(weight, "q4x4.zeros" + t), bias, ptr(result), M, K, N,
                                         i64(int4Group(weight))});
      return;
    }
    callKernel("kiln_uk_linear_w8a8", {rt_, xq, xscale, ptr(weight, "q8x4" + t), ptr(weight, "q8x4.scales" + t),
                                       ptr(weight, "q8x4.sums" + t), bias, ptr(result), M, K, N});
  }
  Value null() { return b_.create<LLVM::ZeroOp>(loc_, ptrTy()).getResult(); }

  /// The scratch region after the memory plan (int8 or bf16 copies of a product's input).
  Value scratch() { return elementPtr(bases_[kArena], i64(scratchOffset_), b_.getI8Type()); }
  /// Whether v's producer (a layer norm or a GELU epilogue, about to be
  /// emitted) should write v in bf16 to the scratch region instead of f32: its
  /// only user is the next op, a product computed in bf16 that reads v dense
  /// (an even row length: then the rows are contiguous pairs). Nothing but
  /// weight references lies between them, so nothing else can use the
  /// scratch region meanwhile.
  bool stageBF16(Value v, Operation *producer) {
    if (!options_.bf16Math || !v.hasOneUse() || lastDim(v) % 2 != 0 || stride(v) != lastDim(v))
      return false;
    auto l = dyn_cast<LinearOp>(*v.getUsers().begin());
    Operation *next = producer->getNextNode();
    while (next && isa<WeightOp>(next)) // weight references emit no code
      next = next->getNextNode();
    if (!l || l.getOperation() != next || l.getInput() != v || l.getInputQuant() || !bf16Math(l.getWeight()))
      return false;
    bf16Staged_.insert(v);
    return true;
  }

  /// --cpu-math=bf16: products with dense f32 or bf16 weights (not adapter
  /// slots, whose low-rank branch is f32, nor 2:4-sparse ones) run in bf16.
  bool bf16Math(Value weight) {
    if (!options_.bf16Math)
      return false;
    GlobalOp global = globalOf(weight);
    std::string format = weightFormat(weight);
    return global && !global.getAdapter() && (format == "bf16" || (format == "f32" && !isSparse24(weight)));
  }
  /// The input rounded to bf16 into the scratch region (unless its producer
  /// wrote it there, bf16Staged_), then the product.
  void emitBF16Product(Value input, Value weight, Value bias, Value result, bool transposed) {
    Value M = i64(rows(input)), K = i64(lastDim(input)), N = i64(lastDim(result));
    Value xb = scratch();
    if (!bf16Staged_.erase(input))
      callKernel("kiln_uk_round_rows_bf16", {rt_, ptr(input), M, K, xb});
    callKernel("kiln_uk_linear_bf16x2", {rt_, xb, ptr(weight, transposed ? "bf16x2.t" : "bf16x2"), bias ? bias : null(),
                                          ptr(result), M, K, N});
  }

  /// A weight pruned 2:4 along its reduction axis 0 (kiln-prune{pattern=2:4}).
  bool isSparse24(Value v) {
    GlobalOp global = globalOf(v);
    auto sparsity = global ? global.getSparsityAttr() : DictionaryAttr();
    return sparsity && sparsity.getAs<StringAttr>("pattern").getValue() == "2:4" &&
           sparsity.getAs<IntegerAttr>("axis").getInt() == 0;
  }

  /// The group size of an int4 weight (its whole reduction axis if ungrouped).
  int64_t int4Group(Value v) {
    GlobalOp global = globalOf(v);
    QuantSpec spec = quantSpecOf(global);
    auto shape = mlir::cast<mlir::RankedTensorType>(global.getType()).getShape();
    return spec.groupSize > 0 ? spec.groupSize : shape[spec.axis];
  }
  int64_t rows(Value v) { return numElements(v.getType()) / lastDim(v); }
  void requireDense(Operation *op, Value v) {
    if (stride(v) != lastDim(v))
      unsupported(op, "the kernels need a dense input");
  }

  void declareKernels() {
    OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPointToEnd(out_.getBody());
    auto i64t = b_.getI64Type();
    auto voidTy = LLVM::LLVMVoidType::get(b_.getContext());
    if (!out_.lookupSymbol("kiln_uk_linear"))
      b_.create<LLVM::LLVMFuncOp>(loc_, "kiln_uk_linear",
                                  LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), ptrTy(), ptrTy(), ptrTy(), i64t, i64t, i64t}));
    if (!out_.lookupSymbol("kiln_uk_linear_q8"))
      b_.create<LLVM::LLVMFuncOp>(loc_, "kiln_uk_linear_q8",
                                  LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), ptrTy(), ptrTy(), ptrTy(),
                                                                       ptrTy(), i64t, i64t, i64t}));
    if (!out_.lookupSymbol("kiln_uk_quantize_rows"))
      b_.create<LLVM::LLVMFuncOp>(loc_, "kiln_uk_quantize_rows",
                                  LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), i64t, i64t, b_.getF32Type(),
                                                                       ptrTy(), ptrTy(), ptrTy()}));
    if (!out_.lookupSymbol("kiln_uk_linear_w4a8"))
      b_.create<LLVM::LLVMFuncOp>(loc_, "kiln_uk_linear_w4a8",
                                  LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), ptrTy(), ptrTy(), ptrTy(), ptrTy(),
                                                                       ptrTy(), ptrTy(), ptrTy(), i64t, i64t, i64t, i64t}));
    if (!out_.lookupSymbol("kiln_uk_linear_w8a8"))
      b_.create<LLVM::LLVMFuncOp>(loc_, "kiln_uk_linear_w8a8",
                                  LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), ptrTy(), ptrTy(), ptrTy(),
                                                                       ptrTy(), ptrTy(), ptrTy(), i64t, i64t, i64t}));
    if (!out_.lookupSymbol("kiln_uk_linear_q4"))
      b_.create<LLVM::LLVMFuncOp>(loc_, "kiln_uk_linear_q4",
                                  LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), ptrTy(), ptrTy(), ptrTy(),
                                                                       ptrTy(), i64t, i64t, i64t, i64t}));
    for (const char *half : {"kiln_uk_linear_f16", "kiln_uk_linear_bf16"})
      if (!out_.lookupSymbol(half))
        b_.create<LLVM::LLVMFuncOp>(loc_, half,
                                    LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), ptrTy(), ptrTy(), ptrTy(),
                                                                         i64t, i64t, i64t}));
    if (!out_.lookupSymbol("kiln_uk_round_rows_bf16"))
      b_.create<LLVM::LLVMFuncOp>(loc_, "kiln_uk_round_rows_bf16",
                                  LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), i64t, i64t, ptrTy()}));
    if (!out_.lookupSymbol("kiln_uk_linear_bf16x2"))
      b_.create<LLVM::LLVMFuncOp>(loc_, "kiln_uk_linear_bf16x2",
                                  LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), ptrTy(), ptrTy(), ptrTy(), i64t, i64t, i64t}));
    if (!out_.lookupSymbol("kiln_uk_linear_s24"))
      b_.create<LLVM::LLVMFuncOp>(loc_, "kiln_uk_linear_s24",
                                  LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), ptrTy(), ptrTy(), ptrTy(), i64t, i64t, i64t}));
    if (!out_.lookupSymbol("kiln_uk_attention_q8kv"))
      b_.create<LLVM::LLVMFuncOp>(
          loc_, "kiln_uk_attention_q8kv",
          LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), i64t, ptrTy(), ptrTy(), ptrTy(), ptrTy(), i64t, i64t,
                                               i64t, i64t, b_.getF32Type()}));
    if (!out_.lookupSymbol("kiln_uk_cache_write_q8"))
      b_.create<LLVM::LLVMFuncOp>(loc_, "kiln_uk_cache_write_q8",
                                  LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), i64t, ptrTy(), i64t, ptrTy(), i64t,
                                                                       i64t, i64t}));
    if (!out_.lookupSymbol("kiln_uk_gelu_tanh"))
      b_.create<LLVM::LLVMFuncOp>(loc_, "kiln_uk_gelu_tanh",
                                  LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), ptrTy(), i64t, ptrTy()}));
    if (!out_.lookupSymbol("kiln_uk_layer_norm"))
      b_.create<LLVM::LLVMFuncOp>(loc_, "kiln_uk_layer_norm",
                                  LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), i64t, ptrTy(), i64t, ptrTy(), i64t,
                                                                       ptrTy(), ptrTy(), ptrTy(), i64t, i64t, i64t,
                                                                       b_.getF32Type(), ptrTy()}));
    if (!out_.lookupSymbol("kiln_uk_attention"))
      b_.create<LLVM::LLVMFuncOp>(
          loc_, "kiln_uk_attention",
          LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy(), i64t, ptrTy(), ptrTy(), ptrTy(), ptrTy(), i64t, i64t,
                                               i64t, i64t, b_.getF32Type()}));
  }

  void callKernel(StringRef name, ValueRange args) {
    int kind = llvm::StringSwitch<int>(name)
                   .Case("kiln_uk_linear", KILN_PROFILE_LINEAR_F32)
                   .Case("kiln_uk_linear_f16", KILN_PROFILE_LINEAR_F16)
                   .Cases("kiln_uk_linear_bf16", "kiln_uk_linear_bf16x2", KILN_PROFILE_LINEAR_BF16)
                   .Case("kiln_uk_linear_q8", KILN_PROFILE_LINEAR_INT8)
                   .Case("kiln_uk_linear_q4", KILN_PROFILE_LINEAR_INT4)
                   .Case("kiln_uk_linear_w8a8", KILN_PROFILE_LINEAR_W8A8)
                   .Case("kiln_uk_linear_w4a8", KILN_PROFILE_LINEAR_W4A8)
                   .Case("kiln_uk_linear_s24", KILN_PROFILE_LINEAR_S24)
                   .Cases("kiln_uk_quantize_rows", "kiln_uk_round_rows_bf16", KILN_PROFILE_QUANTIZE_ROWS)
                   .Cases("kiln_uk_attention", "kiln_uk_attention_q8kv", KILN_PROFILE_ATTENTION)
                   .Case("kiln_uk_cache_write_q8", KILN_PROFILE_CACHE_WRITE)
                   .Case("kiln_uk_gelu_tanh", KILN_PROFILE_ELEMENTWISE)
                   .Case("kiln_uk_layer_norm", KILN_PROFILE_LAYER_NORM)
                   .Default(KILN_PROFILE_OTHER);
    if (inHead_ && kind >= KILN_PROFILE_LINEAR_F32 && kind <= KILN_PROFILE_LINEAR_S24)
      kind = KILN_PROFILE_LM_HEAD;
    mark(kind);
    auto fn = out_.lookupSymbol<LLVM::LLVMFuncOp>(name);
    b_.create<LLVM::CallOp>(loc_, fn, args);
  }

  /// Emits `body` once per distinct `key` (the op kind and every static size, stride and
  /// constant it bakes in) as a private noinline function of `args.size()` pointers, and
  /// calls it here with `args`. The 12 blocks' identical loops (layer norms, GELU, adds, cache
  /// writes) are then optimized and compiled once, not once per block and graph: LLVM's O3 and
  /// code generation of the inlined copies were most of a GPT-2 124M compile.
  void outlined(const std::string &key, ArrayRef<Value> args, function_ref<void(ArrayRef<Value>)> body) {
    std::string name = "kiln_loop_" + checksumHex(checksum64(key.data(), key.size()));
    auto fn = out_.lookupSymbol<LLVM::LLVMFuncOp>(name);
    if (!fn) {
      OpBuilder::InsertionGuard guard(b_);
      b_.setInsertionPointToEnd(out_.getBody());
      SmallVector<Type> types(args.size(), ptrTy());
      fn = b_.create<LLVM::LLVMFuncOp>(loc_, name, LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(b_.getContext()), types),
                                       LLVM::Linkage::Internal);
      fn->setAttr("passthrough", b_.getArrayAttr({b_.getStringAttr("noinline")}));
      Block *entry = fn.addEntryBlock(b_);
      b_.setInsertionPointToStart(entry);
      body(SmallVector<Value>(entry->getArguments().begin(), entry->getArguments().end()));
      b_.create<LLVM::ReturnOp>(loc_, ValueRange{});
    }
    b_.create<LLVM::CallOp>(loc_, fn, args);
  }

  /// if (rt->profile_mark) rt->profile_mark(rt->profiler, event): what runs from here on
  /// (KernelABI.h). A mark repeating the op's previous one is left out.
  void mark(int kind) {
    int32_t event = KILN_PROFILE_EVENT(kind, layer_);
    if (event == lastMark_)
      return;
    lastMark_ = event;
    Value fn = b_.create<LLVM::LoadOp>(loc_, ptrTy(), elementPtr(rt_, i64(3), ptrTy())); // after 2 pointers, 2 i32
    Value set = b_.create<LLVM::ICmpOp>(loc_, LLVM::ICmpPredicate::ne, fn, null());
    auto ifOp = b_.create<scf::IfOp>(loc_, set, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b_);
    b_.setInsertionPointToStart(&ifOp.getThenRegion().front());
    Value profiler = b_.create<LLVM::LoadOp>(loc_, ptrTy(), elementPtr(rt_, i64(4), ptrTy()));
    auto voidTy = LLVM::LLVMVoidType::get(b_.getContext());
    auto fnTy = LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), b_.getI32Type()});
    b_.create<LLVM::CallOp>(loc_, fnTy, ValueRange{fn, profiler, b_.create<arith::ConstantIntOp>(loc_, event, 32)});
  }

  /// The block (h.N) an op's weights belong to; -1 for other weights (wte, wpe, ln_f).
  void noteLayer(Operation &op) {
    for (Value v : op.getOperands())
      if (GlobalOp global = v.getDefiningOp<WeightOp>() ? globalOf(v) : GlobalOp()) {
        llvm::StringRef name = global.getSymName();
        int layer = -1;
        if (name.consume_front("h.")) {
          llvm::StringRef digits = name.take_while([](char c) { return c >= '0' && c <= '9'; });
          if (digits.getAsInteger(10, layer))
            layer = -1;
        }
        layer_ = layer;
        return;
      }
  }

  void emit(const std::string &symbol) {
    declareKernels();
    b_.setInsertionPointToEnd(out_.getBody());
    auto voidTy = LLVM::LLVMVoidType::get(b_.getContext());
    auto fn = b_.create<LLVM::LLVMFuncOp>(loc_, symbol, LLVM::LLVMFunctionType::get(voidTy, {ptrTy(), ptrTy()}));
    Block *entry = fn.addEntryBlock(b_);
    b_.setInsertionPointToStart(entry);
    Value buffers = entry->getArgument(0);
    rt_ = entry->getArgument(1);
    // After the caches: the block of the session's adapter (kiln/IR/Adapters.h), if the model has any.
    int numBuffers = kFirstCache + int(func_.getNumArguments()) - 2 +
                     (adapterSlots(func_->getParentOfType<ModuleOp>()).empty() ? 0 : 1);
    for (int i = 0; i < numBuffers; ++i)
      bases_.push_back(b_.create<LLVM::LoadOp>(loc_, ptrTy(), elementPtr(buffers, i64(i), ptrTy())));

    for (Operation &op : func_.getBody().front()) {
      loc_ = op.getLoc();
      noteLayer(op);
      lastMark_ = -1;
      if (isa<EmbeddingOp>(op))
        mark(KILN_PROFILE_EMBEDDING);
      else if (isa<AddOp, GeluOp>(op))
        mark(KILN_PROFILE_ELEMENTWISE);
      else if (isa<LayerNormOp, ResidualLayerNormOp>(op))
        mark(KILN_PROFILE_LAYER_NORM);
      else if (isa<CacheUpdateOp>(op))
        mark(KILN_PROFILE_CACHE_WRITE);
      else if (isa<SelectLastOp>(op))
        mark(KILN_PROFILE_SELECT_LAST);
      inHead_ = isa<LMHeadOp>(op);
      llvm::TypeSwitch<Operation *>(&op)
          .Case<WeightOp, SplitOp, SplitHeadsOp, MergeHeadsOp, func::ReturnOp>([](auto) {})
          .Case<EmbeddingOp>([&](EmbeddingOp e) { emitEmbedding(e); })
          .Case<AddOp>([&](AddOp a) { emitAdd(a); })
          .Case<LayerNormOp>([&](LayerNormOp ln) {
            emitLayerNorm(ln, ln.getInput(), Value(), ln.getGamma(), ln.getBeta(), ln.getEpsilon(), Value(),
                          ln.getResult());
          })
          .Case<ResidualLayerNormOp>([&](ResidualLayerNormOp rl) {
            emitLayerNorm(rl, rl.getInput(), rl.getResidual(), rl.getGamma(), rl.getBeta(), rl.getEpsilon(), rl.getSum(),
                          rl.getNormalized());
          })
          .Case<LinearOp>([&](LinearOp l) {
            requireDense(l, l.getInput());
            Value bias = l.getBias() ? ptr(l.getBias()) : b_.create<LLVM::ZeroOp>(loc_, ptrTy()).getResult();
            Value M = i64(rows(l.getInput())), K = i64(lastDim(l.getInput())), N = i64(lastDim(l.getResult()));
            std::string format = weightFormat(l.getWeight());
            if (l.getInputQuant())
              emitIntegerProduct(l, l.getInput(), l.getWeight(), l.getInputQuant(), l.getInputScale(),
                                 l.getBias() ? ptr(l.getBias()) : Value(), l.getResult(), false);
            else if (bf16Math(l.getWeight()))
              emitBF16Product(l.getInput(), l.getWeight(), bias, l.getResult(), false);
            else if (format == "f32" && isSparse24(l.getWeight()))
              callKernel("kiln_uk_linear_s24", {rt_, ptr(l.getInput()), ptr(l.getWeight(), "s24"), bias,
                                                ptr(l.getResult()), M, K, N});
            else if (format == "f32")
              callKernel("kiln_uk_linear", {rt_, ptr(l.getInput()), ptr(l.getWeight(), "panel16"), bias,
                                            ptr(l.getResult()), M, K, N});
            else if (format == "int8-sym")
              callKernel("kiln_uk_linear_q8", {rt_, ptr(l.getInput()), ptr(l.getWeight(), "panel16_q8"),
                                               ptr(l.getWeight(), "q8_scales"), bias, ptr(l.getResult()), M, K, N});
            else if (format == "f16" || format == "bf16")
              callKernel("kiln_uk_linear_" + format, {rt_, ptr(l.getInput()), ptr(l.getWeight(), "panel16_" + format),
                                                      bias, ptr(l.getResult()), M, K, N});
            else if (format.rfind("int4", 0) == 0)
              callKernel("kiln_uk_linear_q4", {rt_, ptr(l.getInput()), ptr(l.getWeight(), "q4"),
                                               ptr(l.getWeight(), "q4_params"), bias, ptr(l.getResult()), M, K, N,
                                               i64(int4Group(l.getWeight()))});
            else
              unsupported(l, "linear weights of format " + format + " have no cpu kernel (f32, f16, bf16, int8, int4 do)");
            if (auto epilogue = l.getGeluEpilogue()) {
              mark(KILN_PROFILE_ELEMENTWISE);
              bool stage = *epilogue == GeluApproximation::tanh && stageBF16(l.getResult(), l);
              emitGeluLoop(ptr(l.getResult()), ptr(l.getResult()), numElements(l.getType()), *epilogue, stage);
            }
          })
          .Case<LMHeadOp>([&](LMHeadOp h) {
            requireDense(h, h.getInput());
            std::string format = weightFormat(h.getEmbedding());
            if (h.getInputQuant()) {
              emitIntegerProduct(h, h.getInput(), h.getEmbedding(), h.getInputQuant(), h.getInputScale(), Value(),
                                 h.getResult(), true);
              return;
            }
            if (bf16Math(h.getEmbedding())) {
              emitBF16Product(h.getInput(), h.getEmbedding(), Value(), h.getResult(), true);
              return;
            }
            if (format == "int8-sym") {
              callKernel("kiln_uk_linear_q8",
                         {rt_, ptr(h.getInput()), ptr(h.getEmbedding(), "panel16t_q8"), ptr(h.getEmbedding(), "q8t_scales"),
                          b_.create<LLVM::ZeroOp>(loc_, ptrTy()).getResult(), ptr(h.getResult()), i64(rows(h.getInput())),
                          i64(lastDim(h.getInput())), i64(lastDim(h.getResult()))});
              return;
            }
            if (format.rfind("int4", 0) == 0) {
              callKernel("kiln_uk_linear_q4",
                         {rt_, ptr(h.getInput()), ptr(h.getEmbedding(), "q4t"), ptr(h.getEmbedding(), "q4t_params"),
                          b_.create<LLVM::ZeroOp>(loc_, ptrTy()).getResult(), ptr(h.getResult()), i64(rows(h.getInput())),
                          i64(lastDim(h.getInput())), i64(lastDim(h.getResult())), i64(int4Group(h.getEmbedding()))});
              return;
            }
            if (format == "f16" || format == "bf16") {
              callKernel("kiln_uk_linear_" + format,
                         {rt_, ptr(h.getInput()), ptr(h.getEmbedding(), "panel16t_" + format),
                          b_.create<LLVM::ZeroOp>(loc_, ptrTy()).getResult(), ptr(h.getResult()), i64(rows(h.getInput())),
                          i64(lastDim(h.getInput())), i64(lastDim(h.getResult()))});
              return;
            }
            if (format != "f32")
              unsupported(h, "an LM head of format " + format + " has no cpu kernel (f32, f16, bf16, int8, int4 do)");
            callKernel("kiln_uk_linear",
                       {rt_, ptr(h.getInput()), ptr(h.getEmbedding(), "panel16t"),
                        b_.create<LLVM::ZeroOp>(loc_, ptrTy()).getResult(), ptr(h.getResult()), i64(rows(h.getInput())),
                        i64(lastDim(h.getInput())), i64(lastDim(h.getResult()))});
          })
          .Case<GeluOp>([&](GeluOp g) { emitGelu(g); })
          .Case<CacheUpdateOp>([&](CacheUpdateOp c) { emitCacheUpdate(c); })
          .Case<AttentionOp>([&](AttentionOp a) {
            auto q = shapeOf(a.getQuery()), kc = shapeOf(a.getKeyCache());
            int64_t S = q[2], qs = stride(a.getQuery()), os = stride(a.getResult());
            // Batched decode: one call per sequence, over its own cache, as decode makes it.
            perSequence(q[0], [&](Value b) {
              Value row = mul(b, i64(S));
              callKernel(cacheFormat() == CacheFormat::int8 ? "kiln_uk_attention_q8kv" : "kiln_uk_attention",
                         {rt_, elementPtr(ptr(a.getQuery()), mul(row, i64(qs)), b_.getF32Type()), i64(qs),
                          cacheBase(a.getKeyCache(), b), cacheBase(a.getValueCache(), b),
                          elementPtr(bases_[kPositions], row, b_.getI32Type()),
                          elementPtr(ptr(a.getResult()), mul(row, i64(os)), b_.getF32Type()), i64(S), i64(q[1]),
                          i64(kc[2]), i64(q[3]), f32(a.getScale().convertToDouble())});
            });
          })
          .Case<SelectLastOp>([&](SelectLastOp s) { emitSelectLast(s); })
          .Default([&](Operation *other) {
            unsupported(other, isa<MatMulOp, SoftmaxOp, CausalMaskOp, ScaleOp>(other)
                                   ? "unfused attention (the cpu pipeline runs kiln-fuse-attention; this block did not match)"
                                   : "no lowering");
          });
    }
    b_.create<LLVM::ReturnOp>(loc_, ValueRange{});
  }

  /// Gathers rows from the table in its "panel16t" layout, the one the LM
  /// head reads: a tied embedding is stored once, not twice.
  void emitEmbedding(EmbeddingOp e) {
    int64_t dim = lastDim(e.getResult()), tableRows = shapeOf(e.getTable())[0];
    std::string format = weightFormat(e.getTable());
    bool int8 = format == "int8-sym", half = format == "f16" || format == "bf16", int4 = format.rfind("int4", 0) == 0;
    if (format != "f32" && !int8 && !half && !int4)
      unsupported(e, "an embedding table of format " + format + " has no cpu lowering (f32, f16, bf16, int8, int4 do)");
    // The LM head reading the same table with int8 inputs decides its layout.
    auto w = e.getTable().getDefiningOp<WeightOp>();
    bool integerHead = false;
    func_.walk([&](LMHeadOp h) {
      auto hw = h.getEmbedding().getDefiningOp<WeightOp>();
      if (w && hw && hw.getGlobalAttr() == w.getGlobalAttr() && h.getInputQuant())
        integerHead = true;
    });
    if (integerHead && (int8 || int4)) {
      emitEmbeddingFromIntegerHead(e, int4);
      return;
    }
    if (int4) {
      emitEmbeddingInt4(e);
      return;
    }
    // Quantized tables are gathered from the LM head's panels and widened
    // (and for int8 scaled per row) in registers.
    Value table = ptr(e.getTable(), int8 ? "panel16t_q8" : half ? "panel16t_" + format : "panel16t"),
          out = ptr(e.getResult());
    Value scales = int8 ? ptr(e.getTable(), "q8t_scales") : Value();
    Value ids = elementPtr(bases_[size_t(places_.at(e.getIds()).buffer)], i64(0), b_.getI32Type());
    loop(rows(e.getResult()), [&](Value s) {
      Value id = b_.create<arith::ExtSIOp>(loc_, b_.getI64Type(), load(ids, s, b_.getI32Type()));
      // A padding slot (negative id) reads row 0 and stores zeros; the
      // runtime has already checked ids against the table size.
      Value valid = b_.create<arith::CmpIOp>(loc_, arith::CmpIPredicate::sge, id, i64(0));
      Value row = b_.create<arith::SelectOp>(loc_, valid, id, i64(0));
      row = b_.create<arith::MinSIOp>(loc_, row, i64(tableRows - 1));
      // Element (row, d) of panel16t: ((row / 16) * dim + d) * 16 + row % 16.
      Value panelBase = mul(b_.create<arith::DivUIOp>(loc_, row, i64(16)), i64(dim * 16));
      Value lane = b_.create<arith::RemUIOp>(loc_, row, i64(16));
      Value rowScale = int8 ? load(scales, row) : Value();
      loop(dim, [&](Value d) {
        Value index = add(add(panelBase, mul(d, i64(16))), lane);
        Value v = int8   ? b_.create<arith::MulFOp>(loc_,
                                                    b_.create<arith::SIToFPOp>(loc_, b_.getF32Type(),
                                                                               load(table, index, b_.getI8Type())),
                                                    rowScale)
                  : half ? widenHalf(load(table, index, b_.getI16Type()), format == "f16")
                         : load(table, index);
        store(b_.create<arith::SelectOp>(loc_, valid, v, f32(0)), out, add(mul(s, i64(dim)), d));
      });
    });
  }

  /// The shared loop of the quantized gathers: out[s, d] = valueAt(row, d)
  /// for each slot's token row (zeros for padding slots).
  void emitGather(EmbeddingOp e, const std::function<Value(Value row, Value d)> &valueAt) {
    int64_t dim = lastDim(e.getResult()), tableRows = shapeOf(e.getTable())[0];
    Value out = ptr(e.getResult());
    Value ids = elementPtr(bases_[size_t(places_.at(e.getIds()).buffer)], i64(0), b_.getI32Type());
    loop(rows(e.getResult()), [&](Value s) {
      Value id = b_.create<arith::ExtSIOp>(loc_, b_.getI64Type(), load(ids, s, b_.getI32Type()));
      Value valid = b_.create<arith::CmpIOp>(loc_, arith::CmpIPredicate::sge, id, i64(0));
      Value row = b_.create<arith::SelectOp>(loc_, valid, id, i64(0));
      row = b_.create<arith::MinSIOp>(loc_, row, i64(tableRows - 1));
      loop(dim, [&](Value d) {
        store(b_.create<arith::SelectOp>(loc_, valid, valueAt(row, d), f32(0)), out, add(mul(s, i64(dim)), d));
      });
    });
  }
  Value divu(Value a, int64_t b) { return b_.create<arith::DivUIOp>(loc_, a, i64(b)); }
  Value remu(Value a, int64_t b) { return b_.create<arith::RemUIOp>(loc_, a, i64(b)); }
  /// Nibble `high ? 1 : 0` of byte `index` of `table`, as f32.
  Value nibbleAt(Value table, Value index, Value high) {
    Value byte = b_.create<arith::ExtUIOp>(loc_, b_.getI32Type(), load(table, index, b_.getI8Type()));
    Value shift = b_.create<arith::TruncIOp>(loc_, b_.getI32Type(), mul(high, i64(4)));
    Value nibble = b_.create<arith::AndIOp>(loc_, b_.create<arith::ShRUIOp>(loc_, byte, shift),
                                            b_.create<arith::ConstantIntOp>(loc_, 15, 32));
    return b_.create<arith::UIToFPOp>(loc_, b_.getF32Type(), nibble);
  }

  /// An int4 table from the LM head's "q4t" rows: element (row, d) is
  /// nibble d of the row (kernels/KernelABI.h) with its group's {scale, zero}.
  void emitEmbeddingInt4(EmbeddingOp e) {
    int64_t dim = lastDim(e.getResult()), group = int4Group(e.getTable()), groups = (dim + group - 1) / group;
    Value table = ptr(e.getTable(), "q4t"), params = ptr(e.getTable(), "q4t_params");
    emitGather(e, [&](Value row, Value d) {
      Value i = remu(d, 32);
      Value byteIndex = add(add(mul(row, i64(dim / 2)), mul(divu(d, 32), i64(16))), remu(i, 16));
      Value p = mul(add(mul(row, i64(groups)), divu(d, group)), i64(2));
      Value centered = b_.create<arith::SubFOp>(loc_, nibbleAt(table, byteIndex, divu(i, 16)), load(params, add(p, i64(1))));
      return b_.create<arith::MulFOp>(loc_, centered, load(params, p)).getResult();
    });
  }

  /// A tied table whose LM head takes int8 inputs is stored once, in the
  /// head's "q8x4.t" / "q4x4.t" panels; the lookup gathers from those.
  void emitEmbeddingFromIntegerHead(EmbeddingOp e, bool int4) {
    int64_t dim = lastDim(e.getResult());
    Value table = e.getTable();
    if (!int4) {
      int64_t Kp = (dim + 3) / 4 * 4;
      Value q = ptr(table, "q8x4.t"), scales = ptr(table, "q8x4.scales.t");
      emitGather(e, [&](Value row, Value d) {
        Value index = add(add(mul(divu(row, 16), i64(Kp * 16)), mul(divu(d, 4), i64(64))),
                          add(mul(remu(row, 16), i64(4)), remu(d, 4)));
        Value v = b_.create<arith::SIToFPOp>(loc_, b_.getF32Type(), load(q, index, b_.getI8Type()));
        return b_.create<arith::MulFOp>(loc_, v, load(scales, row)).getResult();
      });
      return;
    }
    int64_t group = int4Group(table), groups = (dim + group - 1) / group, chunks = dim / 32;
    bool symmetric = weightFormat(table).find("-sym") != std::string::npos;
    Value q = ptr(table, "q4x4.t"), scales = ptr(table, "q4x4.scales.t");
    Value zeros = symmetric ? Value() : ptr(table, "q4x4.zeros.t");
    emitGather(e, [&](Value row, Value d) {
      Value i = remu(d, 32), p = divu(row, 16), j = remu(row, 16);
      Value index = add(add(mul(add(mul(p, i64(chunks)), divu(d, 32)), i64(256)), mul(divu(i, 8), i64(64))),
                        add(mul(j, i64(4)), remu(i, 4)));
      Value high = divu(remu(i, 8), 4);
      Value param = add(mul(add(mul(p, i64(groups)), divu(d, group)), i64(16)), j);
      Value zero = symmetric ? f32(8.0)
                             : b_.create<arith::SIToFPOp>(loc_, b_.getF32Type(), load(zeros, param, b_.getI32Type())).getResult();
      Value centered = b_.create<arith::SubFOp>(loc_, nibbleAt(q, index, high), zero);
      return b_.create<arith::MulFOp>(loc_, centered, load(scales, param)).getResult();
    });
  }

  void emitAdd(AddOp a) {
    int64_t cols = lastDim(a.getResult()), n = rows(a.getResult());
    int64_t ls = stride(a.getLhs()), rs = stride(a.getRhs()), os = stride(a.getResult());
    std::string key = "add " + std::to_string(n) + "x" + std::to_string(cols) + " " + std::to_string(ls) + " " +
                      std::to_string(rs) + " " + std::to_string(os);
    outlined(key, {ptr(a.getLhs()), ptr(a.getRhs()), ptr(a.getResult())}, [&](ArrayRef<Value> p) {
      Value l = p[0], r = p[1], o = p[2];
      loop(n, [&](Value row) {
        loop(cols, [&](Value c) {
          Value sum = b_.create<arith::AddFOp>(loc_, load(l, add(mul(row, i64(ls)), c)), load(r, add(mul(row, i64(rs)), c)));
          store(sum, o, add(mul(row, i64(os)), c));
        });
      });
    });
  }

  /// Layer norm of `input` (+ `residual`, whose sum is stored to `sum`) over the last axis:
  /// the kernel library's, with vectorised reductions and the rows spread over the pool (a
  /// generated loop's float sums cannot be reassociated, so they ran one add at a time).
  void emitLayerNorm(Operation *op, Value input, Value residual, Value gamma, Value beta, APFloat epsilon, Value sum,
                     Value result) {
    int64_t cols = lastDim(input), xs = stride(input), os = stride(result), nrows = rows(input);
    int64_t rs = residual ? stride(residual) : 0, ss = sum ? stride(sum) : 0;
    Value null = b_.create<LLVM::ZeroOp>(loc_, ptrTy()).getResult();
    Value outBF16 = stageBF16(result, op) ? scratch() : null;
    callKernel("kiln_uk_layer_norm", {rt_, ptr(input), i64(xs), residual ? ptr(residual) : null, i64(rs),
                                      sum ? ptr(sum) : null, i64(ss), ptr(gamma), ptr(beta), ptr(result), i64(os),
                                      i64(nrows), i64(cols), f32(double(float(epsilon.convertToDouble()))), outBF16});
  }

  void emitGelu(GeluOp g) {
    requireDense(g, g.getInput());
    emitGeluLoop(ptr(g.getInput()), ptr(g.getResult()), numElements(g.getType()), g.getApproximation());
  }

  /// The f32 value of 16-bit float bits, with integer operations only (no
  /// library call on CPUs without F16C): bf16 is the top half of an f32;
  /// f16 re-biases the exponent, with zero/subnormal and inf/NaN cases.
  Value widenHalf(Value bits, bool f16) {
    Type i32 = b_.getI32Type();
    auto c = [&](int64_t v) { return b_.create<arith::ConstantIntOp>(loc_, v, 32).getResult(); };
    Value h = b_.create<arith::ExtUIOp>(loc_, i32, bits);
    if (!f16)
      return b_.create<arith::BitcastOp>(loc_, b_.getF32Type(), b_.create<arith::ShLIOp>(loc_, h, c(16)));
    Value sign = b_.create<arith::ShLIOp>(loc_, b_.create<arith::AndIOp>(loc_, h, c(0x8000)), c(16));
    Value exp = b_.create<arith::AndIOp>(loc_, b_.create<arith::ShRUIOp>(loc_, h, c(10)), c(0x1f));
    Value mant = b_.create<arith::AndIOp>(loc_, h, c(0x3ff));
    Value mant23 = b_.create<arith::ShLIOp>(loc_, mant, c(13));
    Value normal = b_.create<arith::OrIOp>(
        loc_, sign, b_.create<arith::OrIOp>(loc_, b_.create<arith::ShLIOp>(loc_, b_.create<arith::AddIOp>(loc_, exp, c(112)), c(23)), mant23));
    Value special = b_.create<arith::OrIOp>(loc_, sign, b_.create<arith::OrIOp>(loc_, c(0x7f800000), mant23));
    // Zero and subnormals: mant * 2^-24, with the sign.
    Value small = b_.create<arith::MulFOp>(loc_, b_.create<arith::UIToFPOp>(loc_, b_.getF32Type(), mant), f32(5.9604644775390625e-08));
    Value smallBits = b_.create<arith::OrIOp>(loc_, sign, b_.create<arith::BitcastOp>(loc_, i32, small));
    Value isZeroExp = b_.create<arith::CmpIOp>(loc_, arith::CmpIPredicate::eq, exp, c(0));
    Value isMaxExp = b_.create<arith::CmpIOp>(loc_, arith::CmpIPredicate::eq, exp, c(0x1f));
    Value out = b_.create<arith::SelectOp>(loc_, isMaxExp, special, normal);
    out = b_.create<arith::SelectOp>(loc_, isZeroExp, smallBits, out);
    return b_.create<arith::BitcastOp>(loc_, b_.getF32Type(), out);
  }

  /// out[i] = gelu(in[i]) for i < n (in and out may be the same buffer).
  /// With toBF16 (tanh form only), the results go to the scratch region in bf16 instead.
  void emitGeluLoop(Value in, Value out, int64_t n, GeluApproximation approximation, bool toBF16 = false) {
    if (approximation == GeluApproximation::tanh) { // the kernel library's: vectorised, spread over the pool
      callKernel("kiln_uk_gelu_tanh", {rt_, in, out, i64(n), toBF16 ? scratch() : null()});
      return;
    }
    outlined("gelu " + std::to_string(n) + " erf", {in, out}, [&](ArrayRef<Value> p) { geluErfLoop(p[0], p[1], n); });
  }

  /// out[i] = gelu(in[i]) in the erf form (a generated loop; the tanh form has a kernel).
  void geluErfLoop(Value x, Value o, int64_t n) {
    loop(n, [&](Value i) {
      Value v = load(x, i);
      Value inner = b_.create<math::ErfOp>(loc_, b_.create<arith::MulFOp>(loc_, v, f32(0.7071067811865476)));
      Value half = b_.create<arith::MulFOp>(loc_, f32(0.5), v);
      store(b_.create<arith::MulFOp>(loc_, half, b_.create<arith::AddFOp>(loc_, f32(1), inner)), o, i);
    });
  }

  /// body(b) for each sequence b of a batch-B function (B == 1: once, b = 0).
  void perSequence(int64_t B, function_ref<void(Value)> body) {
    if (B == 1)
      body(i64(0));
    else
      loop(B, body);
  }
  /// Sequence b's cache: a batch-B function (B > 1) gets a table of B cache
  /// pointers in the cache's buffer, so each sequence keeps its own cache.
  Value cacheBase(Value cache, Value b) {
    if (shapeOf(cache)[0] == 1)
      return ptr(cache);
    return load(bases_[size_t(places_.at(cache).buffer)], b, ptrTy());
  }

  void emitCacheUpdate(CacheUpdateOp c) {
    auto cache = shapeOf(c.getCache()), upd = shapeOf(c.getUpdate());
    int64_t H = cache[1], C = cache[2], D = cache[3], S = upd[2], us = stride(c.getUpdate());
    Value positions = elementPtr(bases_[size_t(places_.at(c.getPositionIds()).buffer)], i64(0), b_.getI32Type());
    perSequence(cache[0], [&](Value b) {
      Value row = mul(b, i64(S));
      Value dst = cacheBase(c.getCache(), b), src = elementPtr(ptr(c.getUpdate()), mul(row, i64(us)), b_.getF32Type());
      Value pos = elementPtr(positions, row, b_.getI32Type());
      if (c.getFormat() == CacheFormat::int8) {
        callKernel("kiln_uk_cache_write_q8", {rt_, src, i64(us), pos, i64(S), dst, i64(H), i64(C), i64(D)});
        return;
      }
      std::string key = "cache-write " + std::to_string(S) + " " + std::to_string(H) + " " + std::to_string(C) + " " +
                        std::to_string(D) + " " + std::to_string(us);
      outlined(key, {src, dst, pos}, [&](ArrayRef<Value> a) {
        Value src = a[0], dst = a[1], pos = a[2];
        loop(S, [&](Value s) {
          Value p = b_.create<arith::ExtSIOp>(loc_, b_.getI64Type(), load(pos, s, b_.getI32Type()));
          Value valid = b_.create<arith::CmpIOp>(loc_, arith::CmpIPredicate::sge, p, i64(0));
          auto ifOp = b_.create<scf::IfOp>(loc_, valid, /*withElseRegion=*/false);
          OpBuilder::InsertionGuard guard(b_);
          b_.setInsertionPointToStart(&ifOp.getThenRegion().front());
          loop(H, [&](Value h) {
            Value dstRow = mul(add(mul(h, i64(C)), p), i64(D));
            Value srcRow = add(mul(s, i64(us)), mul(h, i64(D)));
            loop(D, [&](Value d) { store(load(src, add(srcRow, d)), dst, add(dstRow, d)); });
          });
        });
      });
    });
  }

  void emitSelectLast(SelectLastOp s) {
    int64_t S = shapeOf(s.getInput())[1], E = lastDim(s.getInput()), xs = stride(s.getInput());
    Value pos = elementPtr(bases_[size_t(places_.at(s.getPositionIds()).buffer)], i64(0), b_.getI32Type());
    // best = the first slot with the largest position id.
    Value firstPos = b_.create<arith::ExtSIOp>(loc_, b_.getI64Type(), load(pos, i64(0), b_.getI32Type()));
    auto forOp = b_.create<scf::ForOp>(
        loc_, i64(0), i64(S), i64(1), ValueRange{i64(0), firstPos}, [&](OpBuilder &nested, Location, Value iv, ValueRange acc) {
          OpBuilder::InsertionGuard guard(b_);
          b_.setInsertionPoint(nested.getInsertionBlock(), nested.getInsertionPoint());
          Value s64 = iv;
          Value p = b_.create<arith::ExtSIOp>(loc_, b_.getI64Type(), load(pos, s64, b_.getI32Type()));
          Value better = b_.create<arith::CmpIOp>(loc_, arith::CmpIPredicate::sgt, p, acc[1]);
          b_.create<scf::YieldOp>(loc_, ValueRange{b_.create<arith::SelectOp>(loc_, better, s64, acc[0]),
                                                   b_.create<arith::SelectOp>(loc_, better, p, acc[1])});
        });
    Value best = forOp.getResult(0);
    Value x = ptr(s.getInput()), o = ptr(s.getResult());
    loop(E, [&](Value e) { store(load(x, add(mul(best, i64(xs)), e)), o, e); });
  }

  func::FuncOp func_;
  ModuleOp out_;
  WeightPacker &packer_;
  LoweringOptions options_;
  OpBuilder b_;
  Location loc_;
  Value rt_;
  std::vector<Value> bases_;
  DenseMap<Value, Place> places_;
  uint64_t arenaBytes_ = 0;
  int64_t scratchOffset_ = 0, scratchBytes_ = 0; ///< bytes, in the arena
  DenseSet<Value> bf16Staged_; ///< values whose producer wrote them in bf16 to the scratch region
  int layer_ = -1;        ///< the block of the op being lowered (profile marks)
  int32_t lastMark_ = -1; ///< the op's last profile mark
  bool inHead_ = false;   ///< lowering an LM head: its linear kernel is marked as the head
};

} // namespace

std::vector<GraphInfo> lowerGraphs(ModuleOp kilnModule, ModuleOp out, WeightPacker &packer,
                                   const LoweringOptions &options) {
  std::vector<GraphInfo> graphs;
  for (auto func : kilnModule.getOps<func::FuncOp>())
    graphs.push_back(GraphBuilder(func, out, packer, options).lower());
  return graphs;
}

} // namespace kiln::cpu
