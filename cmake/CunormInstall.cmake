# Install rules and the package configuration that makes find_package(cunorm) give
# cunorm::cunorm (the C API and its headers) and cunorm::simt (the engine, for users who run
# their own kernels on it).
include(CMakePackageConfigHelpers)

set_target_properties(cunorm_simt PROPERTIES EXPORT_NAME simt)
install(TARGETS cunorm cunorm_simt EXPORT cunormTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/cunorm DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY simt/include/simt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/cunorm)
install(EXPORT cunormTargets NAMESPACE cunorm:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cunorm)

configure_package_config_file(cmake/cunormConfig.cmake.in "${CMAKE_CURRENT_BINARY_DIR}/cunormConfig.cmake"
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cunorm)
write_basic_package_version_file("${CMAKE_CURRENT_BINARY_DIR}/cunormConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/cunormConfig.cmake" "${CMAKE_CURRENT_BINARY_DIR}/cunormConfigVersion.cmake"
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cunorm)
