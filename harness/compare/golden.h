// Goldens: blessed reference logs under golden/, written atomically, checked bitwise.
// Bits depend on the environment (fingerprint_key: libraries, pins, threads; the GPU; the CPU's
// vendor unless the run is portable), so a scenario's golden is a family: the scenario's
// [golden] path, blessed on one environment, and beside it one `<stem>.env-<id>.h5` per further
// environment key that was blessed. Portable CPU runs have one key for every x86-64 CPU.
#pragma once
#include <filesystem>
#include <stdexcept>

#include "harness/compare/compare.h"
#include "harness/run/run_scenario.h"
#include "harness/scenario/scenario.h"

namespace cliprepro {

class GoldenMissing : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws GoldenMissing when the scenario names no golden or its file does not exist.
void require_golden(const Scenario& s);

// "env-" + 8 hex digits of the digest of a fingerprint key: names an environment's golden.
std::string environment_id(const nlohmann::json& fingerprint_key);

// `<dir>/<stem>.env-<id><ext>`: the member of `path`'s family for this environment key (it may
// not exist). A scenario's golden family is environment_variant(s.golden.path, key).
std::filesystem::path environment_variant(const std::filesystem::path& path,
                                          const nlohmann::json& key);

// The golden a run log is checked against: the family member blessed on the run's environment
// key if there is one, else the scenario's [golden] path.
std::filesystem::path select_golden(const std::filesystem::path& log, const Scenario& s);

// Trains the scenario with the golden's selection into a temporary file beside the golden,
// then renames it into place: a golden is never half-written. It replaces the [golden] path
// when that is missing or was blessed on the same environment key, else it becomes (or
// replaces) this environment's `<stem>.env-<id>.h5`.
RunResult bless_golden(const Scenario& s, bool progress);

// Writes (atomically) the text companion of a golden file (harness/compare/golden_text.h).
void write_golden_text(const std::filesystem::path& golden);
// Throws GoldenMissing without a companion, std::runtime_error when the companion records no
// SHA-256 of the golden. The hash itself is checked by every LogReader, before HDF5 parses a
// byte (harness/log/log_companion.h).
void require_golden_sha256_record(const std::filesystem::path& golden);
// Throws GoldenMissing without a companion, std::runtime_error when it disagrees with the file.
void check_golden_text(const LogReader& golden);

// Throws (exit 2) unless the golden can vouch for the run: closed cleanly, /progress agreeing with
// its last step and ending where the run ends, and holding every digest the run holds for each
// tensor it names. "0 digests compared" is never a match.
void check_golden_covers(const LogReader& run, const LogReader& golden);

// Compares a run log against select_golden()'s golden, after check_golden_text and
// check_golden_covers (the golden may name a subset of the run's tensors).
CompareResult check_golden(const std::filesystem::path& log, const Scenario& s);

}  // namespace cliprepro
