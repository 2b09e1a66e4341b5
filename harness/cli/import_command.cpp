#include "harness/cli/import_command.h"

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "harness/cli/commands.h"
#include "harness/cli/process.h"
#include "harness/log/log_reader.h"
#include "harness/scenario/openclip_import.h"
#include "harness/scenario/scenario.h"
#include "src/model/model_config.h"
#include "src/project_python.h"
#include "src/safe_file.h"

namespace cliprepro::cli {
namespace {

// OpenCLIP's parser, run by the project's Python on the flags (scripts/openclip_args.py).
OpenClipArgs openclip_args(const std::vector<std::string>& flags) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "cliprepro-import-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("cannot create " + tmpl);
  const std::filesystem::path dir = tmpl;
  // POSIX calls: libtorch.so exports a std::filesystem::remove_all of its own build, which the
  // dynamic linker binds first and which crashed here.
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      for (const char* f : {"args.json", "output.txt"}) ::unlink((dir / f).c_str());
      ::rmdir(dir.c_str());
    }
  } cleanup{dir};
  std::vector<std::string> argv{project_python(),
                                std::string(CLIPREPRO_SOURCE_DIR) + "/scripts/openclip_args.py",
                                (dir / "args.json").string(), "--"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  if (run_to_file(argv, dir / "output.txt") != 0) {
    // argparse prints its usage, then "open_clip_train.main: error: ..." naming the flag.
    const std::string out = read_text(dir / "output.txt");
    const size_t at = out.rfind("error:");
    std::string why = at == std::string::npos ? out : out.substr(at + 7);
    while (!why.empty() && std::isspace(static_cast<unsigned char>(why.back()))) why.pop_back();
    throw std::runtime_error("OpenCLIP's parser refused the command: " + why);
  }
  const auto j = nlohmann::json::parse(read_text(dir / "args.json"));
  return OpenClipArgs{j.at("args"), j.at("defaults"), j.at("cuda").get<bool>()};
}

// What a recording (python/cliprepro/record.py) says about the run it recorded.
struct Recording {
  std::vector<std::string> flags;
  std::filesystem::path cwd;  // of the recording: its flags' relative paths
  int64_t threads = 0;
};

Recording read_recording(const std::filesystem::path& replay) {
  std::filesystem::path log = replay;
  if (replay.extension() == ".json") {  // a torchrun recording's manifest: rank 0's log
    const auto m = nlohmann::json::parse(read_text(replay), nullptr, false);
    if (!m.is_object() || !m.contains("logs") || !m["logs"].is_array() || m["logs"].empty())
      throw std::runtime_error(replay.string() + ": not a manifest (no \"logs\" list)");
    log = replay.parent_path() / m["logs"][0].get<std::string>();
  }
  const LogReader r(log);
  const auto argv = nlohmann::json::parse(r.attr("openclip_argv"), nullptr, false);
  if (!argv.is_array()) {
    throw std::runtime_error(log.string() +
                             ": not a recording of OpenCLIP (no openclip_argv attribute; "
                             "record one with `python -m cliprepro.record`)");
  }
  Recording rec;
  for (const auto& a : argv) rec.flags.push_back(a.get<std::string>());
  const std::string cwd = r.attr("openclip_cwd");
  rec.cwd = cwd.empty() ? log.parent_path() : std::filesystem::path(cwd);
  const auto fp = nlohmann::json::parse(r.attr("fingerprint"), nullptr, false);
  rec.threads =
      fp.is_object()
          ? fp.value(nlohmann::json::json_pointer("/determinism/intra_op_threads"), int64_t(0))
          : 0;
  return rec;
}

}  // namespace

int cmd_import_openclip(std::vector<std::string> flags, const std::filesystem::path& out,
                        const std::filesystem::path& replay) {
  auto cwd = std::filesystem::current_path();
  nlohmann::json overrides = nlohmann::json::object();
  std::string tail;
  if (!replay.empty()) {
    const Recording rec = read_recording(replay);
    if (flags.empty()) {
      flags = rec.flags;
      cwd = rec.cwd;
    }
    overrides["dataset_type"] = "replay";
    overrides["train_data"] = std::filesystem::absolute(replay).string();
    if (rec.threads > 0) {
      tail = "threads = " + std::to_string(rec.threads) +  // into the import's [determinism]
             "  # the recording's intra-op threads: the same kernels' reduction order\n";
    }
  }
  if (flags.empty()) throw std::runtime_error("import-openclip: give OpenCLIP's flags after --");
  const std::string toml =
      scenario_from_openclip(openclip_args(flags), flags, cwd, overrides) + tail;
  // What it wrote must load as a scenario (its keys' own validators), before it is written.
  const auto as = out.empty() ? cwd / "openclip-import.toml" : std::filesystem::absolute(out);
  const Scenario scenario = parse_scenario(toml, as);
  try {
    (void)load_model_config(scenario.train.model);  // the trainer reads it only when it starts
  } catch (const std::exception& e) {
    throw std::runtime_error("--model: " + std::string(e.what()) +
                             "; give a shipped config or a path to an OpenCLIP model-config JSON");
  }
  if (out.empty()) {
    std::fputs(toml.c_str(), stdout);
  } else {
    write_file_atomically(out, toml);
    std::printf("wrote %s\n", out.string().c_str());
  }
  return kExitMatch;
}

}  // namespace cliprepro::cli
