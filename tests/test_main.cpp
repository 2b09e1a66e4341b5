#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "test_paths.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  // Python children (the recorder, the reader, reference scripts) import python/cliprepro from
  // this tree, not a copy installed into the venv by an older setup.
  setenv("PYTHONPATH", (std::string(kSourceDir) + "/python").c_str(), 1);
  return RUN_ALL_TESTS();
}
