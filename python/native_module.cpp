// cunorm._C: the C API for Python, one function per C entry point, as thin as a binding can be.
// Tensors are passed as addresses (Python ints, 0 for NULL) so that this module needs no array
// library and no libtorch: cunorm.torch validates torch tensors and passes their data_ptr(). Each
// call releases the GIL while the library runs; a failed status raises cunorm.Error (a
// RuntimeError) carrying the library's message, with nothing written.

#include <nanobind/nanobind.h>

#include <cstdint>
#include <cunorm/cunorm.hpp>

namespace nb = nanobind;

namespace {

using Address = std::uintptr_t;  // a tensor's data_ptr(); 0 is NULL

template <class T = void>
T* at(Address address) {
  return reinterpret_cast<T*>(address);
}

cunormDataType_t dtype_of(int value) { return static_cast<cunormDataType_t>(value); }
cunormLayout_t layout_of(int value) { return static_cast<cunormLayout_t>(value); }

// The C API's handle with the GIL released around its calls.
class PyHandle {
 public:
  explicit PyHandle(int backend) : handle_(static_cast<cunormBackend_t>(backend)) {}
  cunormHandle_t get() const { return handle_.get(); }
  int backend() const { return static_cast<int>(handle_.backend()); }
  void set_stream(Address stream) { handle_.set_stream(at<CUstream_st>(stream)); }
  void set_workspace(Address workspace, std::size_t bytes) { handle_.set_workspace(at(workspace), bytes); }
  void synchronize() { handle_.synchronize(); }

 private:
  cunorm::Handle handle_;
};

void check(cunormStatus_t status, const PyHandle& handle) { cunorm::check(status, handle.get()); }

// Exact population statistics of one BatchNorm layer (cunormBatchNormCalibration*).
class PyCalibration {
 public:
  PyCalibration(PyHandle& handle, int64_t c) : handle_(handle) {
    check(cunormBatchNormCalibrationCreate(handle_.get(), c, &calibration_), handle_);
  }
  ~PyCalibration() { cunormBatchNormCalibrationDestroy(handle_.get(), calibration_); }
  PyCalibration(const PyCalibration&) = delete;
  PyCalibration& operator=(const PyCalibration&) = delete;

  void accumulate(int layout, int64_t n, int64_t s, int dtype, Address x) {
    check(cunormBatchNormCalibrationAccumulate(handle_.get(), calibration_, layout_of(layout), n, s, dtype_of(dtype),
                                               at(x)),
          handle_);
  }
  void finalize(Address running_mean, Address running_var) {
    check(cunormBatchNormCalibrationFinalize(handle_.get(), calibration_, at<float>(running_mean),
                                             at<float>(running_var)),
          handle_);
  }

 private:
  PyHandle& handle_;  // kept alive by nb::keep_alive below
  cunormBatchNormCalibration_t calibration_ = nullptr;
};

}  // namespace

NB_MODULE(_C, m) {
  m.doc() = "cunorm's C API (docs/api.md) over addresses of memory on a handle's backend";
  nb::exception<cunorm::Error> error(m, "Error", PyExc_RuntimeError);
  m.attr("VERSION") = CUNORM_VERSION;
  m.def("get_version", &cunormGetVersion);
  m.attr("BACKEND_AUTO") = static_cast<int>(CUNORM_BACKEND_AUTO);
  m.attr("BACKEND_CUDA") = static_cast<int>(CUNORM_BACKEND_CUDA);
  m.attr("BACKEND_SIMT") = static_cast<int>(CUNORM_BACKEND_SIMT);
  m.attr("FLOAT32") = static_cast<int>(CUNORM_FLOAT32);
  m.attr("FLOAT16") = static_cast<int>(CUNORM_FLOAT16);
  m.attr("BFLOAT16") = static_cast<int>(CUNORM_BFLOAT16);
  m.attr("LAYOUT_NCHW") = static_cast<int>(CUNORM_LAYOUT_NCHW);
  m.attr("LAYOUT_NHWC") = static_cast<int>(CUNORM_LAYOUT_NHWC);
  const auto released = nb::call_guard<nb::gil_scoped_release>();

  nb::class_<PyHandle>(m, "Handle")
      .def(nb::init<int>(), nb::arg("backend"), released)
      .def_prop_ro("backend", &PyHandle::backend)
      .def("set_stream", &PyHandle::set_stream, nb::arg("stream"), released)
      .def("set_workspace", &PyHandle::set_workspace, nb::arg("workspace"), nb::arg("bytes"), released)
      .def("synchronize", &PyHandle::synchronize, released);

  nb::class_<PyCalibration>(m, "BatchNormCalibration")
      .def(nb::init<PyHandle&, int64_t>(), nb::arg("handle"), nb::arg("c"), nb::keep_alive<1, 2>(), released)
      .def("accumulate", &PyCalibration::accumulate, nb::arg("layout"), nb::arg("n"), nb::arg("s"), nb::arg("dtype"),
           nb::arg("x"), released)
      .def("finalize", &PyCalibration::finalize, nb::arg("running_mean"), nb::arg("running_var"), released);

  m.def(
      "layer_norm_workspace_size",
      [](PyHandle& h, int64_t rows, int64_t cols, int dtype, int param_dtype) {
        std::size_t bytes = 0;
        check(cunormLayerNormWorkspaceSize(h.get(), rows, cols, dtype_of(dtype), dtype_of(param_dtype), &bytes), h);
        return bytes;
      },
      released);
  m.def(
      "batch_norm_workspace_size",
      [](PyHandle& h, int layout, int64_t n, int64_t c, int64_t s, int dtype, int param_dtype) {
        std::size_t bytes = 0;
        check(cunormBatchNormWorkspaceSize(h.get(), layout_of(layout), n, c, s, dtype_of(dtype), dtype_of(param_dtype),
                                           &bytes),
              h);
        return bytes;
      },
      released);

  m.def(
      "layer_norm_forward",
      [](PyHandle& h, int64_t rows, int64_t cols, int dtype, int param_dtype, Address x, Address gamma, Address beta,
         float eps, Address y, Address mean, Address rstd) {
        check(cunormLayerNormForward(h.get(), rows, cols, dtype_of(dtype), dtype_of(param_dtype), at(x), at(gamma),
                                     at(beta), eps, at(y), at<float>(mean), at<float>(rstd)),
              h);
      },
      released);
  m.def(
      "layer_norm_backward",
      [](PyHandle& h, int64_t rows, int64_t cols, int dtype, int param_dtype, Address dy, Address x, Address mean,
         Address rstd, Address gamma, Address dx, Address dgamma, Address dbeta) {
        check(cunormLayerNormBackward(h.get(), rows, cols, dtype_of(dtype), dtype_of(param_dtype), at(dy), at(x),
                                      at<float>(mean), at<float>(rstd), at(gamma), at(dx), at(dgamma), at(dbeta)),
              h);
      },
      released);
  m.def(
      "rms_norm_forward",
      [](PyHandle& h, int64_t rows, int64_t cols, int dtype, int param_dtype, Address x, Address gamma, float eps,
         Address y, Address rrms) {
        check(cunormRMSNormForward(h.get(), rows, cols, dtype_of(dtype), dtype_of(param_dtype), at(x), at(gamma), eps,
                                   at(y), at<float>(rrms)),
              h);
      },
      released);
  m.def(
      "rms_norm_backward",
      [](PyHandle& h, int64_t rows, int64_t cols, int dtype, int param_dtype, Address dy, Address x, Address rrms,
         Address gamma, Address dx, Address dgamma) {
        check(cunormRMSNormBackward(h.get(), rows, cols, dtype_of(dtype), dtype_of(param_dtype), at(dy), at(x),
                                    at<float>(rrms), at(gamma), at(dx), at(dgamma)),
              h);
      },
      released);

  m.def(
      "batch_norm_forward_training",
      [](PyHandle& h, int layout, int64_t n, int64_t c, int64_t s, int dtype, int param_dtype, Address x, Address gamma,
         Address beta, float eps, float momentum, Address running_mean, Address running_var, Address y,
         Address saved_mean, Address saved_invstd) {
        check(cunormBatchNormForwardTraining(h.get(), layout_of(layout), n, c, s, dtype_of(dtype),
                                             dtype_of(param_dtype), at(x), at(gamma), at(beta), eps, momentum,
                                             at<float>(running_mean), at<float>(running_var), at(y),
                                             at<float>(saved_mean), at<float>(saved_invstd)),
              h);
      },
      released);
  m.def(
      "batch_norm_forward_inference",
      [](PyHandle& h, int layout, int64_t n, int64_t c, int64_t s, int dtype, int param_dtype, Address x, Address gamma,
         Address beta, Address running_mean, Address running_var, float eps, Address y) {
        check(cunormBatchNormForwardInference(h.get(), layout_of(layout), n, c, s, dtype_of(dtype),
                                              dtype_of(param_dtype), at(x), at(gamma), at(beta),
                                              at<float>(running_mean), at<float>(running_var), eps, at(y)),
              h);
      },
      released);
  m.def(
      "batch_norm_backward",
      [](PyHandle& h, int layout, int64_t n, int64_t c, int64_t s, int dtype, int param_dtype, Address dy, Address x,
         Address gamma, Address saved_mean, Address saved_invstd, Address dx, Address dgamma, Address dbeta) {
        check(cunormBatchNormBackward(h.get(), layout_of(layout), n, c, s, dtype_of(dtype), dtype_of(param_dtype),
                                      at(dy), at(x), at(gamma), at<float>(saved_mean), at<float>(saved_invstd), at(dx),
                                      at(dgamma), at(dbeta)),
              h);
      },
      released);
  m.def(
      "batch_norm_backward_inference",
      [](PyHandle& h, int layout, int64_t n, int64_t c, int64_t s, int dtype, int param_dtype, Address dy, Address x,
         Address gamma, Address running_mean, Address running_var, float eps, Address dx, Address dgamma,
         Address dbeta) {
        check(cunormBatchNormBackwardInference(h.get(), layout_of(layout), n, c, s, dtype_of(dtype),
                                               dtype_of(param_dtype), at(dy), at(x), at(gamma), at<float>(running_mean),
                                               at<float>(running_var), eps, at(dx), at(dgamma), at(dbeta)),
              h);
      },
      released);
}
