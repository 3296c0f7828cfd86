// The idiomatic C++17 layer over the cunorm C API (cunorm.h): RAII owners of handles and
// memory, exceptions instead of status codes, and LayerNorm / RMSNorm / BatchNorm modules with
// the semantics of PyTorch's nn.LayerNorm, nn.RMSNorm and nn.BatchNorm1d/2d/3d (own parameters
// initialized as reset_parameters does, their gradients, the statistics a backward needs, and
// for BatchNorm the running statistics, train/eval modes and the exact calibration of the
// running statistics over a data set, with BatchNormCalibration as its streaming building block).
//
// Why a separate header-only layer: the C API is the stable ABI that bindings and C code use,
// so it never throws and leaves ownership to the caller; C++ users want neither, and this
// header gives them scope-bound resources and errors that cannot be ignored, without adding
// a second compiled library. It includes nothing but cunorm.h and the standard library, so it
// needs no CUDA half-precision headers.
//
// Lifetimes: DeviceBuffer, BatchNormCalibration and the modules keep the raw cunormHandle_t of
// the Handle they were created on, so the Handle object may be moved, but the handle it owns
// must outlive them. A moved-from object may only be destroyed or assigned to.
//
// The parts, in cunorm/cpp/: core.hpp (Error, Handle, DeviceBuffer and what the modules share),
// row_norm_modules.hpp (LayerNorm, RMSNorm), batch_norm_modules.hpp (BatchNorm and its calibration).

#ifndef CUNORM_CUNORM_HPP
#define CUNORM_CUNORM_HPP

#include <cunorm/cpp/batch_norm_modules.hpp>
#include <cunorm/cpp/core.hpp>
#include <cunorm/cpp/row_norm_modules.hpp>

#endif  // CUNORM_CUNORM_HPP
