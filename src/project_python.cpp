#include "src/project_python.h"

#include <array>
#include <cstdio>
#include <cstdlib>

#ifndef CLIPREPRO_DEFAULT_PYTHON
#define CLIPREPRO_DEFAULT_PYTHON "python3"
#endif

namespace cliprepro {

std::string project_python() {
  const char* env = std::getenv("CLIPREPRO_PYTHON");
  return env != nullptr && *env != '\0' ? env : CLIPREPRO_DEFAULT_PYTHON;
}

std::string project_python_output(const std::string& code) {
  const std::string cmd = "\"" + project_python() + "\" -c \"" + code + "\" 2>/dev/null";
  std::string out;
  if (std::FILE* p = popen(cmd.c_str(), "r")) {
    std::array<char, 4096> buf;
    size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    pclose(p);
  }
  return out;
}

}  // namespace cliprepro
