# helpline_test(<name> LABELS <labels> SOURCES <files> [NEEDS_STACK] [WHOLE]
#               [LIBRARIES <libs>])
#
# A GoogleTest binary whose cases become CTest tests (WHOLE: one CTest test for
# the binary, for suites that share an expensive set-up such as a service
# process). NEEDS_STACK ties them to
# the test run's own Kafka and Redis (the `stack` fixture, tests/CMakeLists.txt);
# they find the brokers through tests/support/test_stack.h.
set(HELPLINE_TEST_STACK_DIR ${CMAKE_BINARY_DIR}/test-stack)
find_program(BUF_PROGRAM buf HINTS ${HELPLINE_DEPS_DIR}/npm/node_modules/.bin REQUIRED)
find_program(HELM_PROGRAM helm HINTS ${HELPLINE_DEPS_DIR}/bin REQUIRED)
find_program(PROMTOOL_PROGRAM promtool REQUIRED)
find_program(KUBERNETES_VALIDATE_PROGRAM kubernetes-validate HINTS ${HELPLINE_DEPS_DIR}/k8s-venv/bin
             NO_DEFAULT_PATH REQUIRED)

function(helpline_test name)
  cmake_parse_arguments(arg "NEEDS_STACK;WHOLE" "" "LABELS;SOURCES;LIBRARIES" ${ARGN})
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE helpline_runtime helpline_test_support ${arg_LIBRARIES}
                        GTest::gtest GTest::gmock GTest::gtest_main)
  set(properties LABELS "${arg_LABELS}" TIMEOUT 300)
  if(arg_NEEDS_STACK)
    list(APPEND properties FIXTURES_REQUIRED stack)
  endif()
  if(arg_WHOLE)
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES LABELS "${arg_LABELS}" TIMEOUT 300)
    if(arg_NEEDS_STACK)
      set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED stack)
    endif()
  else()
    gtest_discover_tests(${name} TEST_PREFIX "${name}." DISCOVERY_TIMEOUT 60
                         PROPERTIES ${properties})
  endif()
endfunction()
