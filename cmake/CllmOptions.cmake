# Compiler flags shared by every cllm target, and the cllm_add_test helper.

add_library(cllm_flags INTERFACE)
target_compile_options(cllm_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
  -Wunused -Woverloaded-virtual -Wimplicit-fallthrough
  # GCC 12 reports false positives through std::variant/optional moves.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>
  # The plain build is the warnings gate (-Werror under CI); the sanitizer build
  # looks for runtime errors, and at its -O1 GCC's flow-sensitive warnings see other paths.
  $<$<AND:$<BOOL:${CLLM_WERROR}>,$<NOT:$<BOOL:${CLLM_SANITIZE}>>>:-Werror>
  # GCC 12 at -O3 reports impossible libstdc++ copies (std::string/vector
  # growth) as -Warray-bounds / -Wrestrict / -Wstringop-overflow (GCC bugs
  # 105329, 105545, 106199). They stay visible as warnings but do not fail
  # the -Werror build.
  $<$<AND:$<CXX_COMPILER_ID:GNU>,$<BOOL:${CLLM_WERROR}>>:-Wno-error=array-bounds -Wno-error=restrict -Wno-error=stringop-overflow -Wno-error=stringop-overread>)
target_compile_definitions(cllm_flags INTERFACE
  CLLM_VERSION="${PROJECT_VERSION}"
  $<$<BOOL:${CLLM_SANITIZE}>:CLLM_SANITIZE=1>)

if(CLLM_BUILD_FUZZ)
  # Coverage instrumentation for every library the fuzz targets link.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(CLLM_SANITIZE)
  set(_san -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_compile_options(${_san})
  add_link_options(${_san})
  # ASan's instrumentation defeats GCC 12's value-range analysis; its
  # flow-sensitive buffer warnings then fire on impossible paths (e.g. a
  # vector::resize bound of 2^64-15). The plain build keeps these warnings
  # under -Werror; only the sanitizer build drops them.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-stringop-overflow -Wno-stringop-overread
                        -Wno-array-bounds -Wno-restrict)
  endif()
endif()

# cllm_add_test(NAME SOURCES... LIBS ... [LABEL label])
# The label (one per binary: its library) lets scripts select suites, e.g. the
# sanitizer pass in scripts/test.sh.
# One GoogleTest executable; each TEST becomes a ctest test. Tests that read
# ../shared find it through CLLM_SHARED_DIR (default: <repo>/../shared).
# SERIAL runs each of its tests alone (timing-heavy end-to-end tests: a replica
# killed under load must not share the two cores with another suite).
function(cllm_add_test name)
  cmake_parse_arguments(T "SERIAL" "LABEL" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} cllm_flags GTest::gtest GTest::gtest_main)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_compile_definitions(${name} PRIVATE
    CLLM_DEFAULT_SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared"
    CLLM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  if(T_SERIAL)
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${T_LABEL}" RUN_SERIAL TRUE)
  else()
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${T_LABEL}")
  endif()
endfunction()
