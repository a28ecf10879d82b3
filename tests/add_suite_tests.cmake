# Run by ctest when it starts (TEST_INCLUDE_FILES): registers one ctest test per GoogleTest
# suite of BINARY, run as `BINARY --gtest_filter=Suite.* --gtest_shuffle`.
#
# Why per suite, not per test: a suite's SetUpTestSuite (a captured sample, an exported core)
# is then paid once, not once per test, because every ctest test is its own process.
# --gtest_shuffle runs the suite's tests in a random order (gtest prints the seed: rerun with
# --gtest_random_seed=N), so a test that depends on another's side effects fails.
#
# Arguments (as variables): BINARY, PREFIX (the part's name), TIMEOUT (seconds per suite).
execute_process(COMMAND "${BINARY}" --gtest_list_tests
                OUTPUT_VARIABLE listing RESULT_VARIABLE status TIMEOUT 60)
if(NOT status EQUAL 0)
  # A test that always fails says why, instead of silently registering nothing.
  add_test("${PREFIX}.list_tests" "${BINARY}" --gtest_list_tests)
  return()
endif()
string(REPLACE "\n" ";" lines "${listing}")
foreach(line IN LISTS lines)
  # Suite lines start in column 0 and end in '.', optionally followed by "  # TypeParam = ...".
  if(line MATCHES "^([^ #][^ ]*)\\.( .*)?$")
    set(suite "${CMAKE_MATCH_1}")
    add_test("${PREFIX}:${suite}" "${BINARY}" "--gtest_filter=${suite}.*" --gtest_shuffle)
    set_tests_properties("${PREFIX}:${suite}" PROPERTIES TIMEOUT "${TIMEOUT}" LABELS "${PREFIX}")
  endif()
endforeach()
