// What a log stores: digests and statistics every N steps, full tensors at chosen steps for
// tensors matching globs. Scalars (0-d: losses, lr, eval results) and data/sample_ids are always
// stored in full.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace cliprepro {

// One step spec: "7", "-1" (last), "a:b" (a <= s < b), "a:" (a to last), "a:b:k" (stride k).
struct StepSpec {
  int64_t start = 0;
  int64_t stop = 0;  // exclusive; kOpen = through the last step
  int64_t stride = 1;
  static constexpr int64_t kOpen = INT64_MAX;
  bool contains(int64_t step, int64_t last_step) const;
};

StepSpec parse_step_spec(const std::string& text);  // throws std::invalid_argument
// Whether any of `specs` selects `step` of a run whose last step is `last_step`.
bool selects_step(const std::vector<StepSpec>& specs, int64_t step, int64_t last_step);

enum class Compression { kNone, kGzip };  // gzip: deflate (+shuffle) full tensors

struct LogSelection {
  int64_t digest_every = 1;
  std::vector<StepSpec> full_steps;
  std::vector<std::string> full_tensors;  // globs on tensor names
  int64_t activation_samples = 0;         // >0: activations/* keep only the first k samples
  Compression compression = Compression::kNone;
  bool stats = true;             // per-tensor statistics beside each digest
  int64_t queue_mib = 256;       // writer queue bound; the trainer waits when it is full
  double flush_seconds = 1.0;    // streaming logs reach the disk at least this often
  std::string origin = "[log]";  // the scenario section it came from, for messages

  // A warning naming every full-tensors glob that matches none of `names` (a typo would
  // otherwise store nothing, silently); empty when all match. Not an error: variants of one
  // study share a list in which e.g. `scaler/*` exists only under fp16 AMP.
  std::string unmatched_globs_warning(const std::set<std::string>& names) const;

  bool wants_digest(int64_t step) const { return digest_every > 0 && step % digest_every == 0; }
  static bool always_full(const std::string& name, int64_t ndim);
  bool wants_full(const std::string& name, int64_t ndim, int64_t step, int64_t last_step) const;
  // Whether `name` can ever be stored in full (its datasets are created up front).
  bool may_want_full(const std::string& name, int64_t ndim) const;
};

}  // namespace cliprepro
