// The project's Python (torch, open_clip, torchrun): $CLIPREPRO_PYTHON if set, else the one the
// build was configured with (scripts/setup.sh's venv), else "python3".
#pragma once
#include <string>

namespace cliprepro {

std::string project_python();

}  // namespace cliprepro
