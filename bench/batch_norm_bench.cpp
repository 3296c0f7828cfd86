// BatchNorm in the benchmark: every BatchNorm layer shape of ResNet-50 (batch 32 on a GPU, batch 1
// on the SIMT engine), NCHW and NHWC, float32 and float16 activations (float32 parameters), for
// the training and inference forwards and both backwards. Each is validated in full against the
// float64 reference, then timed on a GPU beside cuDNN (training forward and backward) or measured
// in requested bytes on the SIMT engine. floor_bytes() is each op's DRAM floor.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <random>
#include <vector>

#include "benchmarks.hpp"
#include "cudnn_batch_norm.hpp"
#include "cunorm/reference.hpp"

namespace bench {
namespace {

const DtypePair kDtypes[] = {{CUNORM_FLOAT32, CUNORM_FLOAT32, "f32/f32"}, {CUNORM_FLOAT16, CUNORM_FLOAT32, "f16/f32"}};

enum class Op { kForwardTraining, kForwardInference, kBackward, kBackwardInference };
const char* op_name(Op op) {
  switch (op) {
    case Op::kForwardTraining: return "batch_norm_forward_training";
    case Op::kForwardInference: return "batch_norm_forward_inference";
    case Op::kBackward: return "batch_norm_backward";
    case Op::kBackwardInference: return "batch_norm_backward_inference";
  }
  return "?";
}

// ResNet-50's BatchNorm inputs (channels, height = width), torchvision's v1.5 layout.
struct Layer {
  int64_t c, hw;
};
const Layer kResNet50[] = {{64, 112}, {64, 56},  {256, 56},  {128, 56}, {128, 28}, {512, 28},
                           {256, 28}, {256, 14}, {1024, 14}, {512, 14}, {512, 7},  {2048, 7}};

// The DRAM floor: x (and dy) read once and y (or dx) written once; per channel, gamma and beta
// read, running statistics read (and written by the training forward), saved statistics written
// by the training forward and read by the backward, dgamma and dbeta written.
Floor floor_bytes(Op op, int64_t elements, int64_t c, const DtypePair& d) {
  const double tensor = static_cast<double>(elements) * static_cast<double>(element_size(d.dtype));
  const double param = static_cast<double>(c) * static_cast<double>(element_size(d.param));
  const double stat = static_cast<double>(c) * 4.0;
  Floor floor;
  switch (op) {
    case Op::kForwardTraining:  // x, y; gamma, beta; running mean and var read and written; saved
      floor.activations = 2.0 * tensor;
      floor.other = 2.0 * param + 4.0 * stat + 2.0 * stat;
      break;
    case Op::kForwardInference:  // x, y; gamma, beta; running mean and var
      floor.activations = 2.0 * tensor;
      floor.other = 2.0 * param + 2.0 * stat;
      break;
    case Op::kBackward:
    case Op::kBackwardInference:  // x, dy, dx; gamma; two statistics; dgamma, dbeta
      floor.activations = 3.0 * tensor;
      floor.other = param + 2.0 * stat + 2.0 * param;
      break;
  }
  return floor;
}

// The (N, C, H, W) a run uses for a layer: batch 32 on a GPU, batch 1 on the SIMT engine (each
// layer's own shape, so no two rows repeat one).
struct Shape {
  int64_t n, c, h, w;
  int64_t elements() const { return n * c * h * w; }
  std::string label() const {
    return std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
  }
};
Shape shape_of(const Layer& layer, bool gpu) { return {gpu ? 32 : 1, layer.c, layer.hw, layer.hw}; }

// Adds every value of `actual` against `expected` within `tolerance` (plus `slack[i]` when given).
void compare(Validation& v, const HostArray& actual, const std::vector<double>& expected,
             const cunorm::reference::Tolerance& tolerance, const std::vector<double>* slack = nullptr) {
  for (std::size_t i = 0; i < expected.size(); ++i) {
    v.add(actual.get(i), expected[i], tolerance, slack != nullptr ? (*slack)[i] : 0.0);
  }
}

// The buffers of one call (each op uses some).
struct Buffers {
  const void *x, *dy, *gamma, *beta;
  float *running_mean, *running_var, *saved_mean, *saved_invstd;
  void *out, *dgamma, *dbeta;
};

// The op on `handle`, N x C x S in `layout`.
void call(cunormHandle_t handle, Op op, const DtypePair& d, cunormLayout_t layout, int64_t n, int64_t c, int64_t s,
          const Buffers& b) {
  switch (op) {
    case Op::kForwardTraining:
      check(cunormBatchNormForwardTraining(handle, layout, n, c, s, d.dtype, d.param, b.x, b.gamma, b.beta, 1e-5f, 0.1f,
                                           b.running_mean, b.running_var, b.out, b.saved_mean, b.saved_invstd),
            "cunormBatchNormForwardTraining", handle);
      break;
    case Op::kForwardInference:
      check(cunormBatchNormForwardInference(handle, layout, n, c, s, d.dtype, d.param, b.x, b.gamma, b.beta,
                                            b.running_mean, b.running_var, 1e-5f, b.out),
            "cunormBatchNormForwardInference", handle);
      break;
    case Op::kBackward:
      check(cunormBatchNormBackward(handle, layout, n, c, s, d.dtype, d.param, b.dy, b.x, b.gamma, b.saved_mean,
                                    b.saved_invstd, b.out, b.dgamma, b.dbeta),
            "cunormBatchNormBackward", handle);
      break;
    case Op::kBackwardInference:
      check(cunormBatchNormBackwardInference(handle, layout, n, c, s, d.dtype, d.param, b.dy, b.x, b.gamma,
                                             b.running_mean, b.running_var, 1e-5f, b.out, b.dgamma, b.dbeta),
            "cunormBatchNormBackwardInference", handle);
      break;
  }
}

// The launch plan of the op at `shape` on the GPU the plan handle models: the call on buffers of
// that size, which nothing reads or writes; and the size of every buffer at that shape.
void plan(Op op, const DtypePair& d, cunormLayout_t layout, int64_t n, int64_t c, int64_t s, Row& row) {
  const std::size_t tensor = static_cast<std::size_t>(n * c * s) * element_size(d.dtype);
  const std::size_t params = static_cast<std::size_t>(c) * element_size(d.param);
  const std::size_t stats = static_cast<std::size_t>(c) * sizeof(float);
  std::size_t workspace = 0;
  check(cunormBatchNormWorkspaceSize(machine.plan_handle, layout, n, c, s, d.dtype, d.param, &workspace),
        "cunormBatchNormWorkspaceSize", machine.plan_handle);
  std::map<std::string, double> gpu_bytes = tensor_and_parameter_bytes(tensor, params);
  gpu_bytes["running_mean"] = static_cast<double>(stats);
  gpu_bytes["running_var"] = static_cast<double>(stats);
  gpu_bytes["saved_mean"] = static_cast<double>(stats);
  gpu_bytes["saved_invstd"] = static_cast<double>(stats);
  gpu_bytes["workspace"] = static_cast<double>(workspace);
  plan_at_gpu_shape(
      [&](cunormHandle_t handle) {
        const DeviceBuffer x(tensor, handle), dy(tensor, handle), out(tensor, handle), gamma(params, handle),
            beta(params, handle), running_mean(stats, handle), running_var(stats, handle), saved_mean(stats, handle),
            saved_invstd(stats, handle), dgamma(params, handle), dbeta(params, handle);
        call(handle, op, d, layout, n, c, s,
             {x.get(), dy.get(), gamma.get(), beta.get(), running_mean.floats(), running_var.floats(),
              saved_mean.floats(), saved_invstd.floats(), out.get(), dgamma.get(), dbeta.get()});
      },
      gpu_bytes, row);
}

struct Problem {
  Op op;
  DtypePair d;
  cunormLayout_t layout;
  int64_t n, c, h, w;
  HostArray x, dy, gamma, beta, running_mean, running_var;
  int copies;
  DeviceBuffer d_x, d_dy, d_gamma, d_beta, d_out, d_running_mean, d_running_var, d_saved_mean, d_saved_invstd, d_dgamma,
      d_dbeta;

  Problem(Op op_, const DtypePair& d_, cunormLayout_t layout_, int64_t n_, int64_t c_, int64_t h_, int64_t w_,
          std::mt19937_64& rng)
      : op(op_),
        d(d_),
        layout(layout_),
        n(n_),
        c(c_),
        h(h_),
        w(w_),
        x(d_.dtype, static_cast<std::size_t>(n_ * c_ * h_ * w_)),
        dy(d_.dtype, x.count()),
        gamma(d_.param, static_cast<std::size_t>(c_)),
        beta(d_.param, static_cast<std::size_t>(c_)),
        running_mean(CUNORM_FLOAT32, static_cast<std::size_t>(c_)),
        running_var(CUNORM_FLOAT32, static_cast<std::size_t>(c_)),
        copies(input_copies(x.byte_size())),
        d_x(x.byte_size() * static_cast<std::size_t>(copies)),
        d_dy(x.byte_size() * static_cast<std::size_t>(copies)),
        d_gamma(gamma.byte_size()),
        d_beta(gamma.byte_size()),
        d_out(x.byte_size()),
        d_running_mean(running_mean.byte_size()),
        d_running_var(running_mean.byte_size()),
        d_saved_mean(running_mean.byte_size()),
        d_saved_invstd(running_mean.byte_size()),
        d_dgamma(gamma.byte_size()),
        d_dbeta(gamma.byte_size()) {
    x.fill_uniform(rng, -3.0, 3.0);
    dy.fill_uniform(rng, -1.0, 1.0);
    gamma.fill_uniform(rng, 0.5, 1.5);
    beta.fill_uniform(rng, -0.5, 0.5);
    running_mean.fill_uniform(rng, -0.5, 0.5);
    running_var.fill_uniform(rng, 1.0, 4.0);
    d_x.upload(x, static_cast<std::size_t>(copies));
    d_dy.upload(dy, static_cast<std::size_t>(copies));
    d_gamma.upload(gamma);
    d_beta.upload(beta);
    d_running_mean.upload(running_mean);
    d_running_var.upload(running_var);
    // The backward reads the training forward's saved statistics.
    if (op == Op::kBackward) run_training_forward(d_x.get());
  }

  int64_t s() const { return h * w; }

  Buffers buffers(const void* xc, const void* dyc) const {
    return {xc,
            dyc,
            d_gamma.get(),
            d_beta.get(),
            d_running_mean.floats(),
            d_running_var.floats(),
            d_saved_mean.floats(),
            d_saved_invstd.floats(),
            d_out.get(),
            d_dgamma.get(),
            d_dbeta.get()};
  }

  void run_training_forward(const void* xc) {
    call(machine.handle, Op::kForwardTraining, d, layout, n, c, s(), buffers(xc, nullptr));
  }

  // The op on copy `copy` of the inputs.
  void run(int copy) {
    call(machine.handle, op, d, layout, n, c, s(),
         buffers(d_x.part(static_cast<std::size_t>(copy), x.byte_size()),
                 d_dy.part(static_cast<std::size_t>(copy), x.byte_size())));
  }

  // What the SIMT engine watches: the activations (x, dy and the output, as the floor counts
  // them) and every other buffer the call is given.
  Watched activations() const {
    const bool backward = op == Op::kBackward || op == Op::kBackwardInference;
    Watched w{{"x", d_x.get(), x.byte_size()}};
    if (backward) w.push_back({"dy", d_dy.get(), x.byte_size()});
    w.push_back({backward ? "dx" : "y", d_out.get(), x.byte_size()});
    return w;
  }
  Watched others() const {
    const std::size_t channel_bytes = running_mean.byte_size();
    Watched w{{"gamma", d_gamma.get(), gamma.byte_size()}};
    if (op == Op::kForwardTraining || op == Op::kForwardInference)
      w.push_back({"beta", d_beta.get(), gamma.byte_size()});
    if (op != Op::kBackward) {
      w.push_back({"running_mean", d_running_mean.get(), channel_bytes});
      w.push_back({"running_var", d_running_var.get(), channel_bytes});
    }
    if (op == Op::kForwardTraining || op == Op::kBackward) {
      w.push_back({"saved_mean", d_saved_mean.get(), channel_bytes});
      w.push_back({"saved_invstd", d_saved_invstd.get(), channel_bytes});
    }
    if (op == Op::kBackward || op == Op::kBackwardInference) {
      w.push_back({"dgamma", d_dgamma.get(), gamma.byte_size()});
      w.push_back({"dbeta", d_dbeta.get(), gamma.byte_size()});
    }
    return w;
  }
  std::size_t workspace_bytes() const {
    std::size_t bytes = 0;
    check(cunormBatchNormWorkspaceSize(machine.handle, layout, n, c, s(), d.dtype, d.param, &bytes),
          "cunormBatchNormWorkspaceSize");
    return bytes;
  }

  // After the first run: every output value against the reference (running statistics from their
  // values before that run).
  Validation validate() const {
    namespace ref = cunorm::reference;
    const std::size_t channels = static_cast<std::size_t>(c);
    const std::vector<double> xs = x.to_doubles(), gs = gamma.to_doubles(), bs = beta.to_doubles();
    std::vector<double> rm = running_mean.to_doubles(), rv = running_var.to_doubles();
    const HostArray out = d_out.download(d.dtype, x.count());
    std::vector<double> expected(x.count());
    Validation v;
    if (op == Op::kForwardInference) {
      ref::batch_norm_forward_inference(layout, n, c, s(), xs.data(), gs.data(), bs.data(), rm.data(), rv.data(), 1e-5,
                                        expected.data());
      compare(v, out, expected, ref::output_tolerance(d.dtype));
      return v;
    }
    const HostArray saved_mean = d_saved_mean.download(CUNORM_FLOAT32, channels);
    const HostArray saved_invstd = d_saved_invstd.download(CUNORM_FLOAT32, channels);
    if (op == Op::kForwardTraining) {
      std::vector<double> mean(channels), invstd(channels);
      ref::batch_norm_forward_training(layout, n, c, s(), xs.data(), gs.data(), bs.data(), 1e-5, 0.1,
                                       CUNORM_RUNNING_VAR_UNBIASED, rm.data(), rv.data(), expected.data(), mean.data(),
                                       invstd.data());
      const auto stats = ref::statistics_tolerance();
      compare(v, out, expected, ref::output_tolerance(d.dtype));
      compare(v, saved_mean, mean, stats);
      compare(v, saved_invstd, invstd, stats);
      compare(v, d_running_mean.download(CUNORM_FLOAT32, channels), rm, stats);
      compare(v, d_running_var.download(CUNORM_FLOAT32, channels), rv, stats);
      return v;
    }
    // Backward: the statistics the kernels used (saved, or running turned into invstd).
    const std::vector<double> dys = dy.to_doubles();
    std::vector<double> dgamma(channels), dbeta(channels), centre(channels), inverse(channels);
    for (std::size_t k = 0; k < channels; ++k) {
      centre[k] = op == Op::kBackward ? saved_mean.get(k) : rm[k];
      inverse[k] = op == Op::kBackward ? saved_invstd.get(k) : 1.0 / std::sqrt(rv[k] + 1e-5);
    }
    if (op == Op::kBackward) {
      ref::batch_norm_backward(layout, n, c, s(), dys.data(), xs.data(), gs.data(), centre.data(), inverse.data(),
                               expected.data(), dgamma.data(), dbeta.data());
    } else {
      ref::batch_norm_backward_inference(layout, n, c, s(), dys.data(), xs.data(), gs.data(), rm.data(), rv.data(),
                                         1e-5, expected.data(), dgamma.data(), dbeta.data());
    }
    // dgamma and dbeta are float32 sums over N*S terms of each channel.
    std::vector<double> slack_gamma(channels), slack_beta(channels);
    const double factor = ref::float32_sum_error_factor(std::min<int64_t>(n * s(), 512));
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const std::size_t k = layout == CUNORM_LAYOUT_NCHW ? i / static_cast<std::size_t>(s()) % channels : i % channels;
      slack_gamma[k] += factor * std::abs(dys[i] * (xs[i] - centre[k]) * inverse[k]);
      slack_beta[k] += factor * std::abs(dys[i]);
    }
    const auto param = ref::output_tolerance(d.param);
    compare(v, out, expected, ref::output_tolerance(d.dtype));
    compare(v, d_dgamma.download(d.param, channels), dgamma, param, &slack_gamma);
    compare(v, d_dbeta.download(d.param, channels), dbeta, param, &slack_beta);
    return v;
  }

  double cudnn_ms() const {
    if (op != Op::kForwardTraining && op != Op::kBackward) return 0.0;
    const CudnnBatchNormInputs inputs{layout,        n,           c, h, w, d.dtype, &d_x, &d_dy, x.byte_size(), copies,
                                      d_gamma.get(), d_beta.get()};
    return cudnn_batch_norm_ms(
        op == Op::kForwardTraining ? CudnnBatchNormPass::kForwardTraining : CudnnBatchNormPass::kBackward, inputs);
  }
};

}  // namespace

void run_batch_norm_benchmarks(Report& report) {
  const Op ops[] = {Op::kForwardTraining, Op::kForwardInference, Op::kBackward, Op::kBackwardInference};
  const cunormLayout_t layouts[] = {CUNORM_LAYOUT_NCHW, CUNORM_LAYOUT_NHWC};
  const std::size_t rows = std::size(ops) * std::size(layouts) * std::size(kDtypes) * std::size(kResNet50);
  if (machine.on_gpu) {
    report.header("BatchNorm on ResNet-50's layer shapes, batch 32 (shape: N x C x H x W)", true, rows);
    std::printf("%s\n", cudnn_description().c_str());
  } else {
    report.header("BatchNorm on ResNet-50's layer shapes, batch 1 (shape: N x C x H x W)", false, rows);
  }
  std::mt19937_64 rng(2025);
  for (Op op : ops) {
    for (cunormLayout_t layout : layouts) {
      for (const DtypePair& d : kDtypes) {
        for (const Layer& layer : kResNet50) {
          const Shape shape = shape_of(layer, machine.on_gpu), gpu_shape = shape_of(layer, true);
          Row row;
          row.op = op_name(op);
          row.layout = layout == CUNORM_LAYOUT_NCHW ? "NCHW" : "NHWC";
          row.dtypes = d.label;
          row.shape = shape.label();
          row.gpu_shape = gpu_shape.label();
          row.elements = static_cast<double>(shape.elements());
          row.gpu_elements = static_cast<double>(gpu_shape.elements());
          row.floor = floor_bytes(op, shape.elements(), shape.c, d);
          row.gpu_floor = floor_bytes(op, gpu_shape.elements(), gpu_shape.c, d);
          progress(row.op + " " + row.layout + " " + row.dtypes + " " + row.shape);
          Problem problem(op, d, layout, shape.n, shape.c, shape.h, shape.w, rng);
          validate_and_measure(problem, row);
          plan(op, d, layout, gpu_shape.n, gpu_shape.c, gpu_shape.h * gpu_shape.w, row);
          if (machine.on_gpu) row.cudnn_ms = problem.cudnn_ms();
          report.add(row);
        }
      }
    }
  }
}

}  // namespace bench
