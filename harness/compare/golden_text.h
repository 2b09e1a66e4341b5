// A golden's text companion (<golden>.txt beside <golden>.h5), written by `golden bless` so that
// a re-bless shows as a readable diff: per step, loss, lr and logit_scale in full precision and
// one combined digest per tensor family, and the SHA-256 of the golden file. `golden check` first
// hashes the file against that SHA-256 (before HDF5 parses it: a damaged file is refused without
// reading it), then regenerates the text from the binary golden and requires the committed text
// to agree, so the two cannot drift apart.
#pragma once
#include <filesystem>
#include <string>

#include "harness/log/log_companion.h"
#include "harness/log/log_reader.h"

namespace cliprepro {

// Its path and SHA-256 record are the log layer's (harness/log/log_companion.h: companion_path).

// The companion of a log: a header (with the file's SHA-256), then one tab-separated row per step.
// A family's digest at a step is XXH3-64 over the 8-byte digests of its tensors at that step, in
// name order.
std::string golden_text(const LogReader& golden);

}  // namespace cliprepro
