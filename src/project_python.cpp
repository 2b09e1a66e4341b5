#include "src/project_python.h"

#include <cstdlib>

#ifndef CLIPREPRO_DEFAULT_PYTHON
#define CLIPREPRO_DEFAULT_PYTHON "python3"
#endif

namespace cliprepro {

std::string project_python() {
  const char* env = std::getenv("CLIPREPRO_PYTHON");
  return env != nullptr && *env != '\0' ? env : CLIPREPRO_DEFAULT_PYTHON;
}

}  // namespace cliprepro
