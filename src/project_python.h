// The project's Python (torch, open_clip, torchrun): $CLIPREPRO_PYTHON if set, else the one the
// build was configured with (scripts/setup.sh's venv), else "python3".
#pragma once
#include <string>

namespace cliprepro {

std::string project_python();

// What `project_python() -c code` prints on stdout (stderr discarded; "" if it could not run).
// `code` must not contain double quotes: it is passed inside them.
std::string project_python_output(const std::string& code);

}  // namespace cliprepro
