// ONNX conformance: every LayerNormalization and BatchNormalization node case of Debian's
// libonnx-testdata run through the C API, with the model's attributes and the .pb tensors read by
// the ONNX and protobuf libraries, and every expected output checked (Mean and InvStdDev, and the
// running statistics of training mode, included). The expected values were computed by ONNX's
// numpy reference, not by anyone on this project. The cases:
//   node/test_layer_normalization_*   opset 17, every axis; the _expanded models spell the op out
//                                     in primitive nodes, so their attributes come from the
//                                     non-expanded model of the same name
//   node/test_batchnorm_*             opset 15, inference and training_mode
//   pytorch-converted/test_BatchNorm* opset 6, inference (is_test), parameters as initializers
// No case is skipped: one that the C API cannot express (another dtype, stash_type, opset-6
// training) fails and says why. The suite prints how many cases ran on each backend.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "cunorm/reference.hpp"
#include "support/backend_fixture.hpp"
#include "support/compare.hpp"
#include "support/host_array.hpp"

namespace cunorm_test {
namespace {

namespace fs = std::filesystem;

// libonnx-testdata 1.12 (Debian 12) ships 38 LayerNormalization, 4 BatchNormalization node cases and
// 5 pytorch-converted BatchNorm cases; a newer one may add cases, never remove them.
constexpr std::size_t kShippedCases = 47;

struct OnnxCase {
  std::string name;
  fs::path dir;              // model.onnx and test_data_set_*/
  fs::path attribute_model;  // the model whose node carries the attributes
  bool layer_norm;           // else BatchNormalization
};

std::vector<OnnxCase> discover_cases() {
  const fs::path root = CUNORM_ONNX_TESTDATA_DIR;
  std::vector<OnnxCase> cases;
  const std::string expanded = "_expanded";
  for (const auto& entry : fs::directory_iterator(root / "node")) {
    const std::string name = entry.path().filename().string();
    const bool layer_norm = name.rfind("test_layer_normalization_", 0) == 0;
    if (!layer_norm && name.rfind("test_batchnorm_", 0) != 0) continue;
    const bool is_expanded =
        name.size() > expanded.size() && name.compare(name.size() - expanded.size(), expanded.size(), expanded) == 0;
    const std::string twin = is_expanded ? name.substr(0, name.size() - expanded.size()) : name;
    cases.push_back({name, entry.path(), root / "node" / twin / "model.onnx", layer_norm});
  }
  for (const auto& entry : fs::directory_iterator(root / "pytorch-converted")) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("test_BatchNorm", 0) != 0) continue;
    cases.push_back({name, entry.path(), entry.path() / "model.onnx", false});
  }
  std::sort(cases.begin(), cases.end(), [](const OnnxCase& a, const OnnxCase& b) { return a.name < b.name; });
  return cases;
}

const std::vector<OnnxCase>& all_cases() {
  static const std::vector<OnnxCase> cases = discover_cases();
  return cases;
}

// ---- Reading models and tensors ------------------------------------------------------------------

template <class Proto>
bool parse_file(const fs::path& path, Proto* proto) {
  std::ifstream in(path, std::ios::binary);
  return in && proto->ParseFromIstream(&in);
}

struct Tensor {
  std::vector<int64_t> dims;
  std::vector<float> values;
};

// Every tensor in the shipped cases is float32, the C API's FLOAT32; any other type fails the case
// with its ONNX type number rather than being skipped.
::testing::AssertionResult decode(const onnx::TensorProto& proto, Tensor* out) {
  if (proto.data_type() != onnx::TensorProto::FLOAT) {
    return ::testing::AssertionFailure() << "tensor '" << proto.name() << "' has ONNX data type " << proto.data_type()
                                         << ", which this suite does not map onto the C API (FLOAT = 1 only)";
  }
  out->dims.assign(proto.dims().begin(), proto.dims().end());
  int64_t count = 1;
  for (int64_t d : out->dims) count *= d;
  out->values.resize(static_cast<std::size_t>(count));
  if (!proto.raw_data().empty()) {
    // raw_data is little-endian, as is every machine this runs on.
    if (proto.raw_data().size() != out->values.size() * sizeof(float)) {
      return ::testing::AssertionFailure() << "tensor '" << proto.name() << "': " << proto.raw_data().size()
                                           << " raw bytes for " << count << " floats";
    }
    std::memcpy(out->values.data(), proto.raw_data().data(), proto.raw_data().size());
  } else {
    if (proto.float_data_size() != count) {
      return ::testing::AssertionFailure() << "tensor '" << proto.name() << "': " << proto.float_data_size()
                                           << " floats for " << count << " elements";
    }
    std::copy(proto.float_data().begin(), proto.float_data().end(), out->values.begin());
  }
  return ::testing::AssertionSuccess();
}

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}
int64_t int_attribute(const onnx::NodeProto& node, const std::string& name, int64_t absent) {
  const onnx::AttributeProto* a = find_attribute(node, name);
  return a != nullptr ? a->i() : absent;
}
float float_attribute(const onnx::NodeProto& node, const std::string& name, float absent) {
  const onnx::AttributeProto* a = find_attribute(node, name);
  return a != nullptr ? a->f() : absent;
}

int64_t product(const std::vector<int64_t>& dims, std::size_t from, std::size_t to) {
  int64_t p = 1;
  for (std::size_t i = from; i < to; ++i) p *= dims[i];
  return p;
}

// One test data set: the graph's values by name (initializers, then the non-initializer graph inputs
// in order from input_<k>.pb) and the expected outputs by name (graph output k from output_<k>.pb).
struct DataSet {
  std::map<std::string, Tensor> values;
  std::map<std::string, Tensor> expected;
};

::testing::AssertionResult load_data_set(const onnx::ModelProto& model, const fs::path& dir, DataSet* data) {
  const onnx::GraphProto& graph = model.graph();
  for (const auto& init : graph.initializer()) {
    auto ok = decode(init, &data->values[init.name()]);
    if (!ok) return ok;
  }
  int k = 0;
  for (const auto& input : graph.input()) {
    if (data->values.count(input.name()) != 0) continue;  // an initializer (IR < 4 lists them as inputs too)
    onnx::TensorProto proto;
    const fs::path file = dir / ("input_" + std::to_string(k++) + ".pb");
    if (!parse_file(file, &proto)) return ::testing::AssertionFailure() << "cannot read " << file;
    auto ok = decode(proto, &data->values[input.name()]);
    if (!ok) return ok;
  }
  for (int i = 0; i < graph.output_size(); ++i) {
    onnx::TensorProto proto;
    const fs::path file = dir / ("output_" + std::to_string(i) + ".pb");
    if (!parse_file(file, &proto)) return ::testing::AssertionFailure() << "cannot read " << file;
    auto ok = decode(proto, &data->expected[graph.output(i).name()]);
    if (!ok) return ok;
  }
  return ::testing::AssertionSuccess();
}

HostArray to_array(const std::vector<float>& values) {
  HostArray out(CUNORM_FLOAT32, values.size());
  std::memcpy(out.data(), values.data(), out.byte_size());
  return out;
}

// ---- Tolerance and summary ---------------------------------------------------------------------------

// The expected values are numpy float32 results: each is a handful of float32 operations from the
// inputs (mean, difference, variance, sqrt, division, scale and shift), so besides the library's
// own error (the project's tolerance table) it carries up to about 8 roundings of 2^-24 relative;
// cancellation in x - mean is covered by the table's absolute term at these magnitudes.
cunorm::reference::Tolerance with_numpy_rounding(cunorm::reference::Tolerance t) {
  t.relative += 8.0 * std::ldexp(1.0, -24);
  return t;
}

struct Summary {
  std::map<std::string, int> ran;                               // backend -> cases
  std::map<std::string, int> ran_by_op;                         // "backend op" -> cases
  std::map<std::string, std::pair<double, std::string>> worst;  // "backend op" -> (|error|, where)
};
Summary& summary() {
  static Summary s;
  return s;
}

// ---- The test -------------------------------------------------------------------------------------

using Param = std::tuple<cunormBackend_t, std::size_t>;

class OnnxNode : public BackendParamTest<Param> {
 protected:
  // Checks one expected output against the library's values and keeps the worst error.
  void expect_output(const OnnxCase& onnx_case, const char* op, const DataSet& data, const std::string& name,
                     const std::vector<float>& actual, cunorm::reference::Tolerance tolerance) {
    const Tensor& want = data.expected.at(name);
    ASSERT_EQ(want.values.size(), actual.size()) << onnx_case.name << " output " << name;
    const std::vector<double> expected(want.values.begin(), want.values.end());
    const std::string what = onnx_case.name + " " + name;
    expect_close(
        what.c_str(), actual.size(), [&](std::size_t i) { return static_cast<double>(actual[i]); }, expected,
        with_numpy_rounding(tolerance));
    auto& worst = summary().worst[std::string(backend_label(std::get<0>(GetParam()))) + " " + op];
    for (std::size_t i = 0; i < actual.size(); ++i) {
      const double error = std::abs(static_cast<double>(actual[i]) - expected[i]);
      if (error > worst.first) worst = {error, what};
    }
    checked_.push_back(name);
  }

  // Every output of the graph must have been checked.
  void expect_every_output_checked(const OnnxCase& onnx_case, const DataSet& data) {
    for (const auto& [name, tensor] : data.expected) {
      EXPECT_NE(std::find(checked_.begin(), checked_.end(), name), checked_.end())
          << onnx_case.name << ": expected output '" << name << "' is not an output the node maps onto";
    }
  }

  void run_layer_norm(const OnnxCase& onnx_case, const onnx::NodeProto& node, const DataSet& data);
  void run_batch_norm(const OnnxCase& onnx_case, const onnx::NodeProto& node, int64_t opset, const DataSet& data);

  std::vector<std::string> checked_;
};

// Y = (X - mean) / sqrt(var + epsilon) * Scale + B over the dimensions from `axis` on: rows are
// the product of the dimensions before it, cols the product from it on. Mean and InvStdDev are
// per row, as the library's mean and rstd.
void OnnxNode::run_layer_norm(const OnnxCase& onnx_case, const onnx::NodeProto& node, const DataSet& data) {
  const Tensor& x = data.values.at(node.input(0));
  const Tensor& scale = data.values.at(node.input(1));
  const bool has_bias = node.input_size() > 2 && !node.input(2).empty();
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  int64_t axis = int_attribute(node, "axis", -1);
  if (axis < 0) axis += rank;
  ASSERT_TRUE(axis >= 0 && axis < rank) << onnx_case.name << ": axis out of range";
  // stash_type 1 (float32) is the precision of the library's statistics; others are not expressible.
  ASSERT_EQ(int_attribute(node, "stash_type", 1), 1) << onnx_case.name << ": stash_type other than float32";
  const float eps = float_attribute(node, "epsilon", 1e-5f);
  const int64_t rows = product(x.dims, 0, static_cast<std::size_t>(axis));
  const int64_t cols = product(x.dims, static_cast<std::size_t>(axis), x.dims.size());
  ASSERT_EQ(static_cast<int64_t>(scale.values.size()), cols) << onnx_case.name;

  HostArray y_init(CUNORM_FLOAT32, x.values.size()), stats_init(CUNORM_FLOAT32, static_cast<std::size_t>(rows));
  y_init.fill_bytes(0xff);
  stats_init.fill_bytes(0xff);
  const HostArray bias_host = to_array(has_bias ? data.values.at(node.input(2)).values : std::vector<float>());
  const DeviceArray d_x(handle_, to_array(x.values)), d_scale(handle_, to_array(scale.values)),
      d_bias(handle_, bias_host), d_y(handle_, y_init), d_mean(handle_, stats_init), d_rstd(handle_, stats_init);
  ASSERT_EQ(cunormLayerNormForward(handle_, rows, cols, CUNORM_FLOAT32, CUNORM_FLOAT32, d_x.data(), d_scale.data(),
                                   has_bias ? d_bias.data() : nullptr, eps, d_y.data(), d_mean.as_floats(),
                                   d_rstd.as_floats()),
            CUNORM_STATUS_SUCCESS)
      << cunormGetLastErrorMessage(handle_);

  const auto floats = [](const HostArray& a) {
    std::vector<float> v(a.count());
    std::memcpy(v.data(), a.data(), a.byte_size());
    return v;
  };
  const std::vector<float> y = floats(d_y.download()), mean = floats(d_mean.download()),
                           rstd = floats(d_rstd.download());
  const std::vector<const std::vector<float>*> outputs = {&y, &mean, &rstd};
  for (int i = 0; i < node.output_size() && i < 3; ++i) {
    if (node.output(i).empty() || data.expected.count(node.output(i)) == 0)
      continue;  // an optional output not asked for
    expect_output(
        onnx_case, "LayerNormalization", data, node.output(i), *outputs[static_cast<std::size_t>(i)],
        i == 0 ? cunorm::reference::output_tolerance(CUNORM_FLOAT32) : cunorm::reference::statistics_tolerance());
  }
}

// X is (N, C, D1, ...): NCHW with S = D1 * ... (1 for (N, C)). Inference uses input_mean and
// input_var. Training mode (opset 14+) normalizes with the batch statistics and outputs
//   running_mean = momentum * input_mean + (1 - momentum) * batch_mean
//   running_var  = momentum * input_var  + (1 - momentum) * batch_var   (biased)
// which is cunormBatchNormForwardTrainingEx with CUNORM_RUNNING_VAR_BIASED and momentum 1 - momentum.
void OnnxNode::run_batch_norm(const OnnxCase& onnx_case, const onnx::NodeProto& node, int64_t opset,
                              const DataSet& data) {
  const Tensor& x = data.values.at(node.input(0));
  ASSERT_GE(x.dims.size(), 2u) << onnx_case.name;
  const std::vector<float>& scale = data.values.at(node.input(1)).values;
  const std::vector<float>& bias = data.values.at(node.input(2)).values;
  const std::vector<float>& input_mean = data.values.at(node.input(3)).values;
  const std::vector<float>& input_var = data.values.at(node.input(4)).values;
  const int64_t n = x.dims[0], c = x.dims[1], s = product(x.dims, 2, x.dims.size());
  const float eps = float_attribute(node, "epsilon", 1e-5f);
  const float momentum = float_attribute(node, "momentum", 0.9f);
  const bool training = int_attribute(node, "training_mode", 0) == 1;
  // Before opset 7, is_test = 0 asked for a training node with other outputs (saved mean and
  // variance) and spatial = 0 for per-element statistics: neither is expressible here.
  if (opset < 7) {
    ASSERT_EQ(int_attribute(node, "is_test", 0), 1) << onnx_case.name << ": opset-6 training is not mapped";
  }
  ASSERT_EQ(int_attribute(node, "spatial", 1), 1) << onnx_case.name << ": spatial = 0 is not mapped";

  HostArray y_init(CUNORM_FLOAT32, x.values.size());
  y_init.fill_bytes(0xff);
  const DeviceArray d_x(handle_, to_array(x.values)), d_scale(handle_, to_array(scale)),
      d_bias(handle_, to_array(bias)), d_mean(handle_, to_array(input_mean)), d_var(handle_, to_array(input_var)),
      d_y(handle_, y_init);
  const cunormStatus_t status =
      training ? cunormBatchNormForwardTrainingEx(handle_, CUNORM_LAYOUT_NCHW, n, c, s, CUNORM_FLOAT32, CUNORM_FLOAT32,
                                                  d_x.data(), d_scale.data(), d_bias.data(), eps, 1.0f - momentum,
                                                  CUNORM_RUNNING_VAR_BIASED, d_mean.as_floats(), d_var.as_floats(),
                                                  d_y.data(), nullptr, nullptr)
               : cunormBatchNormForwardInference(handle_, CUNORM_LAYOUT_NCHW, n, c, s, CUNORM_FLOAT32, CUNORM_FLOAT32,
                                                 d_x.data(), d_scale.data(), d_bias.data(), d_mean.as_floats(),
                                                 d_var.as_floats(), eps, d_y.data());
  ASSERT_EQ(status, CUNORM_STATUS_SUCCESS) << cunormGetLastErrorMessage(handle_);

  const auto floats = [](const HostArray& a) {
    std::vector<float> v(a.count());
    std::memcpy(v.data(), a.data(), a.byte_size());
    return v;
  };
  const std::vector<float> y = floats(d_y.download());
  expect_output(onnx_case, "BatchNormalization", data, node.output(0), y,
                cunorm::reference::output_tolerance(CUNORM_FLOAT32));
  if (training) {
    const std::vector<float> running_mean = floats(d_mean.download()), running_var = floats(d_var.download());
    for (int i = 1; i < node.output_size() && i < 3; ++i) {
      if (node.output(i).empty() || data.expected.count(node.output(i)) == 0) continue;  // optional, not asked for
      expect_output(onnx_case, "BatchNormalization", data, node.output(i), i == 1 ? running_mean : running_var,
                    cunorm::reference::statistics_tolerance());
    }
  }
}

TEST_P(OnnxNode, MatchesExpectedOutputs) {
  const auto [backend, index] = GetParam();
  const OnnxCase& onnx_case = all_cases()[index];
  CUNORM_OPEN_BACKEND_OR_SKIP(backend);

  onnx::ModelProto model, attribute_model;
  ASSERT_TRUE(parse_file(onnx_case.dir / "model.onnx", &model)) << onnx_case.dir;
  ASSERT_TRUE(parse_file(onnx_case.attribute_model, &attribute_model)) << onnx_case.attribute_model;
  const char* op = onnx_case.layer_norm ? "LayerNormalization" : "BatchNormalization";
  const onnx::NodeProto* node = nullptr;
  for (const auto& candidate : attribute_model.graph().node()) {
    if (candidate.op_type() == op) {
      ASSERT_EQ(node, nullptr) << onnx_case.name << ": more than one " << op << " node";
      node = &candidate;
    }
  }
  ASSERT_NE(node, nullptr) << onnx_case.attribute_model << " holds no " << op << " node";
  int64_t opset = 0;
  for (const auto& import : attribute_model.opset_import()) {
    if (import.domain().empty() || import.domain() == "ai.onnx") opset = import.version();
  }

  int data_sets = 0;
  for (const auto& entry : fs::directory_iterator(onnx_case.dir)) {
    if (entry.path().filename().string().rfind("test_data_set_", 0) != 0) continue;
    SCOPED_TRACE(entry.path().string());
    DataSet data;
    ASSERT_TRUE(load_data_set(model, entry.path(), &data));
    // An expanded model names its graph inputs and outputs as its twin's node does.
    for (const auto& name : node->input()) {
      ASSERT_TRUE(name.empty() || data.values.count(name) != 0) << onnx_case.name << ": no value for input " << name;
    }
    checked_.clear();
    if (onnx_case.layer_norm) {
      run_layer_norm(onnx_case, *node, data);
    } else {
      run_batch_norm(onnx_case, *node, opset, data);
    }
    if (HasFatalFailure()) return;
    expect_every_output_checked(onnx_case, data);
    ++data_sets;
  }
  ASSERT_GT(data_sets, 0) << onnx_case.dir << " has no test_data_set_*";
  const std::string label = backend_label(backend);
  ++summary().ran[label];
  ++summary().ran_by_op[label + " " + op];
}

TEST(OnnxTestData, HoldsEveryShippedCase) {
  const auto& cases = all_cases();
  EXPECT_GE(cases.size(), kShippedCases) << "cases found under " << CUNORM_ONNX_TESTDATA_DIR;
  EXPECT_TRUE(std::any_of(cases.begin(), cases.end(), [](const OnnxCase& k) { return k.layer_norm; }));
  EXPECT_TRUE(std::any_of(cases.begin(), cases.end(), [](const OnnxCase& k) { return !k.layer_norm; }));
}

INSTANTIATE_TEST_SUITE_P(Debian, OnnxNode,
                         ::testing::Combine(::testing::Values(CUNORM_BACKEND_SIMT, CUNORM_BACKEND_CUDA),
                                            ::testing::Range<std::size_t>(0, all_cases().size())),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           return std::string(backend_label(std::get<0>(info.param))) + "_" +
                                  all_cases()[std::get<1>(info.param)].name;
                         });

// Prints, after every test, how many cases ran on each backend and the worst error of each op.
class SummaryPrinter : public ::testing::Environment {
 public:
  void TearDown() override {
    const std::size_t total = all_cases().size();
    for (const char* backend : {"SIMT", "CUDA"}) {
      const std::string b = backend;
      std::printf("== ONNX conformance, %s: %d of %zu cases ran (%d LayerNormalization, %d BatchNormalization)%s\n",
                  backend, summary().ran[b], total, summary().ran_by_op[b + " LayerNormalization"],
                  summary().ran_by_op[b + " BatchNormalization"],
                  summary().ran[b] == 0 ? " (every case skipped: the reason is in the test log)" : "");
      for (const char* op : {"LayerNormalization", "BatchNormalization"}) {
        const auto it = summary().worst.find(b + " " + op);
        if (it != summary().worst.end()) {
          std::printf("==   %-18s worst |cunorm - expected| %.3e (%s)\n", op, it->second.first,
                      it->second.second.c_str());
        }
      }
    }
    std::printf("== end of ONNX conformance summary\n");
  }
};

}  // namespace
}  // namespace cunorm_test

int main(int argc, char** argv) {
  GOOGLE_PROTOBUF_VERIFY_VERSION;
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new cunorm_test::SummaryPrinter);
  return RUN_ALL_TESTS();
}
