// LayerNorm and RMSNorm forward and backward in the benchmark: each shape is validated against the
// float64 reference (64 sampled rows of the output, every dgamma/dbeta), then timed on a GPU or
// measured in requested bytes on the SIMT engine. floor_bytes() is each op's DRAM floor.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <random>
#include <vector>

#include "benchmarks.hpp"
#include "cunorm/reference.hpp"

namespace bench {
namespace {

const DtypePair kDtypes[] = {{CUNORM_FLOAT32, CUNORM_FLOAT32, "f32/f32"},
                             {CUNORM_FLOAT16, CUNORM_FLOAT32, "f16/f32"},
                             {CUNORM_BFLOAT16, CUNORM_BFLOAT16, "bf16/bf16"}};

enum class Op { kLayerNormForward, kLayerNormBackward, kRmsNormForward, kRmsNormBackward };
const char* op_name(Op op) {
  switch (op) {
    case Op::kLayerNormForward: return "layer_norm_forward";
    case Op::kLayerNormBackward: return "layer_norm_backward";
    case Op::kRmsNormForward: return "rms_norm_forward";
    case Op::kRmsNormBackward: return "rms_norm_backward";
  }
  return "?";
}
bool is_layer_norm(Op op) { return op == Op::kLayerNormForward || op == Op::kLayerNormBackward; }
bool is_forward(Op op) { return op == Op::kLayerNormForward || op == Op::kRmsNormForward; }

// The DRAM floor of each op: activations read or written once (forward: x, y; backward: x, dy,
// dx); parameters and their gradients once, per-row statistics once.
Floor floor_bytes(Op op, int64_t rows, int64_t cols, const DtypePair& d) {
  const double n = static_cast<double>(rows * cols), s = static_cast<double>(element_size(d.dtype));
  const double p = static_cast<double>(cols) * static_cast<double>(element_size(d.param));
  const double stats = static_cast<double>(rows) * (is_layer_norm(op) ? 8.0 : 4.0);
  const double params = is_layer_norm(op) ? 2.0 * p : p;  // gamma (and beta), or dgamma (and dbeta)
  Floor floor;
  floor.activations = (is_forward(op) ? 2.0 : 3.0) * n * s;
  floor.other = params + stats + (is_forward(op) ? 0.0 : p);  // the backward also reads gamma
  return floor;
}

// The buffers of one call (mean is unused by RMSNorm, dy, dgamma and dbeta by the forwards).
struct Buffers {
  const void *x, *dy, *gamma, *beta;
  void* out;
  float *mean, *rstd;
  void *dgamma, *dbeta;
};

// The op on `handle`; the backward reads the statistics in mean and rstd.
void call(cunormHandle_t handle, Op op, const DtypePair& d, int64_t rows, int64_t cols, const Buffers& b) {
  switch (op) {
    case Op::kLayerNormForward:
      check(cunormLayerNormForward(handle, rows, cols, d.dtype, d.param, b.x, b.gamma, b.beta, 1e-5f, b.out, b.mean,
                                   b.rstd),
            "cunormLayerNormForward", handle);
      break;
    case Op::kRmsNormForward:
      check(cunormRMSNormForward(handle, rows, cols, d.dtype, d.param, b.x, b.gamma, 1e-5f, b.out, b.rstd),
            "cunormRMSNormForward", handle);
      break;
    case Op::kLayerNormBackward:
      check(cunormLayerNormBackward(handle, rows, cols, d.dtype, d.param, b.dy, b.x, b.mean, b.rstd, b.gamma, b.out,
                                    b.dgamma, b.dbeta),
            "cunormLayerNormBackward", handle);
      break;
    case Op::kRmsNormBackward:
      check(cunormRMSNormBackward(handle, rows, cols, d.dtype, d.param, b.dy, b.x, b.rstd, b.gamma, b.out, b.dgamma),
            "cunormRMSNormBackward", handle);
      break;
  }
}

// The launch plan of the op at rows x cols on the GPU the plan handle models: the call on buffers
// of that size, which nothing reads or writes; and the size of every buffer at that shape.
void plan(Op op, const DtypePair& d, int64_t rows, int64_t cols, Row& row) {
  const std::size_t tensor = static_cast<std::size_t>(rows * cols) * element_size(d.dtype);
  const std::size_t params = static_cast<std::size_t>(cols) * element_size(d.param);
  const std::size_t stats = static_cast<std::size_t>(rows) * sizeof(float);
  std::size_t workspace = 0;
  check(cunormLayerNormWorkspaceSize(machine.plan_handle, rows, cols, d.dtype, d.param, &workspace),
        "cunormLayerNormWorkspaceSize", machine.plan_handle);
  std::map<std::string, double> gpu_bytes = tensor_and_parameter_bytes(tensor, params);
  gpu_bytes["mean"] = static_cast<double>(stats);
  gpu_bytes["rstd"] = static_cast<double>(stats);
  gpu_bytes["workspace"] = static_cast<double>(workspace);
  plan_at_gpu_shape(
      [&](cunormHandle_t handle) {
        const DeviceBuffer x(tensor, handle), dy(tensor, handle), out(tensor, handle), gamma(params, handle),
            beta(params, handle), mean(stats, handle), rstd(stats, handle), dgamma(params, handle),
            dbeta(params, handle);
        call(handle, op, d, rows, cols,
             {x.get(), dy.get(), gamma.get(), beta.get(), out.get(), mean.floats(), rstd.floats(), dgamma.get(),
              dbeta.get()});
      },
      gpu_bytes, row);
}

// One problem: inputs on the device (x and dy in `copies` copies), the op's call, and its
// validation against the reference.
struct Problem {
  Op op;
  DtypePair d;
  int64_t rows, cols;
  HostArray x, dy, gamma, beta;
  int copies;
  DeviceBuffer d_x, d_dy, d_gamma, d_beta, d_out, d_mean, d_rstd, d_dgamma, d_dbeta;

  Problem(Op op_, const DtypePair& d_, int64_t rows_, int64_t cols_, std::mt19937_64& rng)
      : op(op_),
        d(d_),
        rows(rows_),
        cols(cols_),
        x(d_.dtype, static_cast<std::size_t>(rows_ * cols_)),
        dy(d_.dtype, static_cast<std::size_t>(rows_ * cols_)),
        gamma(d_.param, static_cast<std::size_t>(cols_)),
        beta(d_.param, static_cast<std::size_t>(cols_)),
        copies(input_copies(x.byte_size())),
        d_x(x.byte_size() * static_cast<std::size_t>(copies)),
        d_dy(x.byte_size() * static_cast<std::size_t>(copies)),
        d_gamma(gamma.byte_size()),
        d_beta(gamma.byte_size()),
        d_out(x.byte_size()),
        d_mean(static_cast<std::size_t>(rows_) * sizeof(float)),
        d_rstd(static_cast<std::size_t>(rows_) * sizeof(float)),
        d_dgamma(gamma.byte_size()),
        d_dbeta(gamma.byte_size()) {
    x.fill_uniform(rng, -3.0, 3.0);
    dy.fill_uniform(rng, -1.0, 1.0);
    gamma.fill_uniform(rng, 0.5, 1.5);
    beta.fill_uniform(rng, -0.5, 0.5);
    d_x.upload(x, static_cast<std::size_t>(copies));
    d_dy.upload(dy, static_cast<std::size_t>(copies));
    d_gamma.upload(gamma);
    d_beta.upload(beta);
    // The backward needs the forward's statistics.
    if (!is_forward(op)) run_forward(d_x.get());
  }

  Buffers buffers(const void* xc, const void* dyc) const {
    return {
        xc,           dyc, d_gamma.get(), d_beta.get(), d_out.get(), d_mean.floats(), d_rstd.floats(), d_dgamma.get(),
        d_dbeta.get()};
  }

  void run_forward(const void* xc) {
    const Op forward = is_layer_norm(op) ? Op::kLayerNormForward : Op::kRmsNormForward;
    call(machine.handle, forward, d, rows, cols, buffers(xc, nullptr));
  }

  // The op on copy `c` of the inputs.
  void run(int c) {
    call(machine.handle, op, d, rows, cols,
         buffers(d_x.part(static_cast<std::size_t>(c), x.byte_size()),
                 d_dy.part(static_cast<std::size_t>(c), x.byte_size())));
  }

  // What the SIMT engine watches: the activations (x, dy and the output, as the floor counts
  // them) and every other buffer the call is given.
  Watched activations() const {
    Watched w{{"x", d_x.get(), x.byte_size()}};
    if (!is_forward(op)) w.push_back({"dy", d_dy.get(), x.byte_size()});
    w.push_back({is_forward(op) ? "y" : "dx", d_out.get(), x.byte_size()});
    return w;
  }
  Watched others() const {
    Watched w{{"gamma", d_gamma.get(), gamma.byte_size()}};
    if (is_layer_norm(op)) w.push_back({"beta", d_beta.get(), gamma.byte_size()});
    if (is_layer_norm(op)) w.push_back({"mean", d_mean.get(), static_cast<std::size_t>(rows) * sizeof(float)});
    w.push_back({"rstd", d_rstd.get(), static_cast<std::size_t>(rows) * sizeof(float)});
    if (!is_forward(op)) w.push_back({"dgamma", d_dgamma.get(), gamma.byte_size()});
    if (!is_forward(op) && is_layer_norm(op)) w.push_back({"dbeta", d_dbeta.get(), gamma.byte_size()});
    return w;
  }
  std::size_t workspace_bytes() const {
    std::size_t bytes = 0;
    check(cunormLayerNormWorkspaceSize(machine.handle, rows, cols, d.dtype, d.param, &bytes),
          "cunormLayerNormWorkspaceSize");
    return bytes;
  }

  // Compares up to 64 rows spread over the tensor (and, for the backward, every dgamma/dbeta,
  // which sum over all rows).
  Validation validate() const {
    const auto tolerance = cunorm::reference::output_tolerance(d.dtype);
    const HostArray out = d_out.download(d.dtype, x.count());
    const HostArray rstd = d_rstd.download(CUNORM_FLOAT32, static_cast<std::size_t>(rows));
    const HostArray mean = d_mean.download(CUNORM_FLOAT32, static_cast<std::size_t>(rows));
    const std::vector<double> gs = gamma.to_doubles(), bs = beta.to_doubles();
    const int64_t step = std::max<int64_t>(1, rows / 64);
    const std::size_t n = static_cast<std::size_t>(cols);
    std::vector<double> xr(n), dyr(n), ref(n), dg(n), db(n), dg_sum(n, 0.0), db_sum(n, 0.0), dg_abs(n, 0.0),
        db_abs(n, 0.0);
    Validation v;
    for (int64_t r = 0; r < rows; ++r) {
      const bool sampled = r % step == 0;
      if (!sampled && is_forward(op)) continue;
      for (std::size_t j = 0; j < n; ++j) {
        xr[j] = x.get(static_cast<std::size_t>(r) * n + j);
        dyr[j] = dy.get(static_cast<std::size_t>(r) * n + j);
      }
      const float m = static_cast<float>(mean.get(static_cast<std::size_t>(r)));
      const float s = static_cast<float>(rstd.get(static_cast<std::size_t>(r)));
      switch (op) {
        case Op::kLayerNormForward:
          cunorm::reference::layer_norm_forward(1, cols, xr.data(), gs.data(), bs.data(), 1e-5, ref.data(),
                                                static_cast<double*>(nullptr), static_cast<double*>(nullptr));
          break;
        case Op::kRmsNormForward:
          cunorm::reference::rms_norm_forward(1, cols, xr.data(), gs.data(), 1e-5, ref.data(),
                                              static_cast<double*>(nullptr));
          break;
        case Op::kLayerNormBackward:
          cunorm::reference::layer_norm_backward(1, cols, dyr.data(), xr.data(), &m, &s, gs.data(), ref.data(),
                                                 dg.data(), db.data());
          break;
        case Op::kRmsNormBackward:
          cunorm::reference::rms_norm_backward(1, cols, dyr.data(), xr.data(), &s, gs.data(), ref.data(), dg.data());
          break;
      }
      if (!is_forward(op)) {
        for (std::size_t j = 0; j < n; ++j) {
          dg_sum[j] += dg[j];
          dg_abs[j] += std::abs(dg[j]);
          db_sum[j] += is_layer_norm(op) ? db[j] : 0.0;
          db_abs[j] += is_layer_norm(op) ? std::abs(db[j]) : 0.0;
        }
      }
      if (!sampled) continue;
      for (std::size_t j = 0; j < n; ++j) v.add(out.get(static_cast<std::size_t>(r) * n + j), ref[j], tolerance);
    }
    if (!is_forward(op)) {
      const auto param_tolerance = cunorm::reference::output_tolerance(d.param);
      const double factor = cunorm::reference::float32_sum_error_factor(rows);
      const HostArray dgamma = d_dgamma.download(d.param, n), dbeta = d_dbeta.download(d.param, n);
      for (std::size_t j = 0; j < n; ++j) {
        v.add(dgamma.get(j), dg_sum[j], param_tolerance, factor * dg_abs[j]);
        if (is_layer_norm(op)) v.add(dbeta.get(j), db_sum[j], param_tolerance, factor * db_abs[j]);
      }
    }
    return v;
  }
};

struct Shape {
  int64_t rows, cols;
};

// Row lengths from 32 to 262144 at a fixed total size (2^26 elements on a GPU, 2^17 on the SIMT
// engine), odd lengths, rows >> cols, then 1024x12288 (1/512 of its rows on the SIMT engine): with
// 4096x16384, 16384x4096 and 8192x8192, which the powers of two give, the shapes of the published
// figures the performance model compares with (cuDNN's and torch.compile's on the H200).
std::vector<Shape> row_shapes(bool gpu) {
  const int64_t total = gpu ? (int64_t{1} << 26) : (int64_t{1} << 17);
  std::vector<Shape> shapes;
  for (int64_t cols = 32; cols <= 262144; cols *= 2) shapes.push_back({std::max<int64_t>(1, total / cols), cols});
  for (int64_t cols : {768, 1000, 4099}) shapes.push_back({std::max<int64_t>(1, total / cols), cols});
  shapes.push_back({gpu ? 1000000 : 2048, 128});
  shapes.push_back({gpu ? 1024 : 2, 12288});
  return shapes;
}

std::string shape_label(const Shape& shape) { return std::to_string(shape.rows) + "x" + std::to_string(shape.cols); }

}  // namespace

void run_row_norm_benchmarks(Report& report) {
  const Op ops[] = {Op::kLayerNormForward, Op::kLayerNormBackward, Op::kRmsNormForward, Op::kRmsNormBackward};
  const std::vector<Shape> shapes = row_shapes(machine.on_gpu), gpu_shapes = row_shapes(true);
  report.header("LayerNorm and RMSNorm (shape: rows x cols)", false,
                std::size(ops) * std::size(kDtypes) * shapes.size());
  std::mt19937_64 rng(2024);
  for (Op op : ops) {
    for (const DtypePair& d : kDtypes) {
      for (std::size_t i = 0; i < shapes.size(); ++i) {
        const Shape& shape = shapes[i];
        Row row;
        row.op = op_name(op);
        row.dtypes = d.label;
        row.shape = shape_label(shape);
        row.gpu_shape = shape_label(gpu_shapes[i]);
        row.elements = static_cast<double>(shape.rows * shape.cols);
        row.gpu_elements = static_cast<double>(gpu_shapes[i].rows * gpu_shapes[i].cols);
        row.floor = floor_bytes(op, shape.rows, shape.cols, d);
        row.gpu_floor = floor_bytes(op, gpu_shapes[i].rows, gpu_shapes[i].cols, d);
        progress(row.op + " " + row.dtypes + " " + row.shape);
        Problem problem(op, d, shape.rows, shape.cols, rng);
        validate_and_measure(problem, row);
        plan(op, d, gpu_shapes[i].rows, gpu_shapes[i].cols, row);
        report.add(row);
      }
    }
  }
}

}  // namespace bench
