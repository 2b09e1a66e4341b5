#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "test_paths.h"
#include "tests/test_util.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  // Python children (the recorder, the reader, reference scripts) import python/cliprepro from
  // this tree, not a copy installed into the venv by an older setup.
  setenv("PYTHONPATH", (std::string(kSourceDir) + "/python").c_str(), 1);
  setenv("CLIPREPRO_DIGEST_LIBRARY", kDigestLibrary, 1);  // and this build's digest library
  const int failed = RUN_ALL_TESTS();
  // CTest runs one test per process, so this is that test's scratch space: gone when it passed,
  // kept (and named by the failure's own messages) when it did not.
  if (failed == 0 && std::getenv("CLIPREPRO_KEEP_TEST_TMP") == nullptr)
    cliprepro::test::remove_temp_dirs();
  return failed;
}
