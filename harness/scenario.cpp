#include "harness/scenario.h"

#include "src/train/precision.h"

#include <toml++/toml.h>
#include <fstream>
#include <set>
#include <sstream>

namespace cliprepro {
namespace {

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const toml::node& n, const std::string& msg) const {
    fail_at(n.source(), msg);
  }

  [[noreturn]] void fail_at(const toml::source_region& src, const std::string& msg) const {
    throw ScenarioError(file_ + ":" + std::to_string(src.begin.line) + ":" +
                        std::to_string(src.begin.column) + ": " + msg);
  }

  void check_keys(const toml::table& t, const std::set<std::string>& allowed,
                  const std::string& where) const {
    for (const auto& [k, v] : t) {
      if (!allowed.count(std::string(k.str()))) {
        fail_at(k.source(), "unknown key '" + std::string(k.str()) + "'" +
                                (where.empty() ? "" : " in [" + where + "]"));
      }
    }
  }

  void read(const toml::table& t, const char* key, std::string& out) const {
    if (const auto* n = t.get(key)) {
      if (!n->is_string()) fail(*n, std::string("'") + key + "' must be a string");
      out = n->as_string()->get();
    }
  }
  void read(const toml::table& t, const char* key, int64_t& out) const {
    if (const auto* n = t.get(key)) {
      if (!n->is_integer()) fail(*n, std::string("'") + key + "' must be an integer");
      out = n->as_integer()->get();
    }
  }
  void read(const toml::table& t, const char* key, int& out) const {
    int64_t v = out;
    read(t, key, v);
    out = int(v);
  }
  void read(const toml::table& t, const char* key, double& out) const {
    if (const auto* n = t.get(key)) {
      if (n->is_floating_point()) {
        out = n->as_floating_point()->get();
      } else if (n->is_integer()) {
        out = double(n->as_integer()->get());
      } else {
        fail(*n, std::string("'") + key + "' must be a number");
      }
    }
  }
  void read(const toml::table& t, const char* key, bool& out) const {
    if (const auto* n = t.get(key)) {
      if (!n->is_boolean()) fail(*n, std::string("'") + key + "' must be true or false");
      out = n->as_boolean()->get();
    }
  }
  void read_steps(const toml::table& t, const char* key, std::vector<StepSpec>& out) const {
    const auto* n = t.get(key);
    if (n == nullptr) return;
    const auto* arr = n->as_array();
    if (arr == nullptr)
      fail(*n, std::string("'") + key + "' must be a list of steps (7, -1, \"10:20\")");
    out.clear();
    for (const auto& e : *arr) {
      try {
        if (e.is_integer()) {
          out.push_back(parse_step_spec(std::to_string(e.as_integer()->get())));
        } else if (e.is_string()) {
          out.push_back(parse_step_spec(e.as_string()->get()));
        } else {
          fail(e, "step entries are integers or \"a:b[:k]\" strings");
        }
      } catch (const std::invalid_argument& ex) {
        fail(e, ex.what());
      }
    }
  }
  void read_strings(const toml::table& t, const char* key, std::vector<std::string>& out) const {
    const auto* n = t.get(key);
    if (n == nullptr) return;
    const auto* arr = n->as_array();
    if (arr == nullptr) fail(*n, std::string("'") + key + "' must be a list of strings");
    out.clear();
    for (const auto& e : *arr) {
      if (!e.is_string()) fail(e, std::string("'") + key + "' entries must be strings");
      out.push_back(e.as_string()->get());
    }
  }
  const toml::table* table(const toml::table& t, const char* key) const {
    const auto* n = t.get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) fail(*n, std::string("'") + key + "' must be a table ([" + key + "])");
    return n->as_table();
  }
  void positive(const toml::table& t, const char* key, double v, bool allow_zero) const {
    if (v < 0 || (!allow_zero && v == 0))
      fail(*t.get(key), std::string("'") + key + "' must be " + (allow_zero ? ">= 0" : "> 0"));
  }

 private:
  std::string file_;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw ScenarioError(p.string() + ": cannot read scenario file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json steps_json(const std::vector<StepSpec>& v) {
  auto j = nlohmann::json::array();
  for (const auto& s : v) {
    j.push_back(
        {{"start", s.start},
         {"stop", s.stop == StepSpec::kOpen ? nlohmann::json(nullptr) : nlohmann::json(s.stop)},
         {"stride", s.stride}});
  }
  return j;
}

// A relative path in a scenario means relative to the scenario file; empty stays empty.
void resolve_from_scenario(const std::filesystem::path& scenario, std::string& p) {
  if (p.empty()) return;
  const std::filesystem::path given(p);
  p = (given.is_absolute() ? given : scenario.parent_path() / given).lexically_normal().string();
}

}  // namespace

Scenario load_scenario(const std::filesystem::path& path) {
  return parse_scenario(slurp(path), path);
}

Scenario parse_scenario(const std::string& text, const std::filesystem::path& path) {
  const std::string file = path.string();
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    throw ScenarioError(file + ":" + std::to_string(src.begin.line) + ":" +
                        std::to_string(src.begin.column) + ": " + std::string(e.description()));
  }
  Reader r(file);
  Scenario s;
  s.path = path;
  s.text = text;
  s.name = path.stem().string();
  r.check_keys(root,
               {"name",
                "description",
                "model",
                "precision",
                "device",
                "batch-size",
                "lr",
                "wd",
                "warmup",
                "beta1",
                "beta2",
                "eps",
                "grad-clip-norm",
                "seed",
                "epochs",
                "steps",
                "local-loss",
                "gather-with-grad",
                "dist-backend",
                "dataset-type",
                "train-data",
                "csv-img-key",
                "csv-caption-key",
                "csv-separator",
                "aug-cfg",
                "skip-bad-samples",
                "numerics",
                "resume",
                "imagenet-val",
                "zeroshot-templates",
                "accum-freq",
                "save-frequency",
                "save-every-steps",
                "train-num-samples",
                "val-num-samples",
                "zeroshot-frequency",
                "determinism",
                "debug",
                "log",
                "golden"},
               "");
  auto& t = s.train;
  r.read(root, "name", s.name);
  r.read(root, "description", s.description);
  r.read(root, "model", t.model);
  r.read(root, "precision", t.precision);
  r.read(root, "device", t.device);
  r.read(root, "batch-size", t.batch_size);
  r.read(root, "lr", t.lr);
  r.read(root, "wd", t.wd);
  r.read(root, "warmup", t.warmup);
  r.read(root, "beta1", t.beta1);
  r.read(root, "beta2", t.beta2);
  r.read(root, "eps", t.eps);
  r.read(root, "grad-clip-norm", t.grad_clip_norm);
  r.read(root, "seed", t.seed);
  r.read(root, "epochs", t.epochs);
  r.read(root, "steps", t.steps);
  r.read(root, "local-loss", t.local_loss);
  r.read(root, "gather-with-grad", t.gather_with_grad);
  r.read(root, "dist-backend", t.dist_backend);
  if (root.contains("dist-backend") && t.dist_backend != "gloo" && t.dist_backend != "nccl") {
    r.fail(*root.get("dist-backend"), "dist-backend must be \"gloo\" or \"nccl\"");
  }
  r.read(root, "dataset-type", t.dataset_type);
  r.read(root, "train-num-samples", t.train_num_samples);
  r.read(root, "val-num-samples", t.val_num_samples);
  r.read(root, "zeroshot-frequency", t.zeroshot_frequency);
  if (root.contains("batch-size")) r.positive(root, "batch-size", double(t.batch_size), false);
  if (root.contains("lr")) r.positive(root, "lr", t.lr, true);
  if (root.contains("warmup")) r.positive(root, "warmup", double(t.warmup), true);
  if (root.contains("epochs")) r.positive(root, "epochs", double(t.epochs), false);
  if (root.contains("steps")) r.positive(root, "steps", double(t.steps), true);
  if (root.contains("train-num-samples"))
    r.positive(root, "train-num-samples", double(t.train_num_samples), false);
  if (root.contains("val-num-samples"))
    r.positive(root, "val-num-samples", double(t.val_num_samples), false);
  for (const char* k : {"beta1", "beta2"}) {
    double v = k[4] == '1' ? t.beta1 : t.beta2;
    if (root.contains(k) && (v < 0 || v >= 1))
      r.fail(*root.get(k), std::string("'") + k + "' must be in [0, 1)");
  }
  if (root.contains("precision")) {
    try {
      parse_precision(t.precision);
    } catch (const std::invalid_argument& e) {
      r.fail(*root.get("precision"), e.what());
    }
  }
  r.read(root, "accum-freq", t.accum_freq);
  if (root.contains("accum-freq")) r.positive(root, "accum-freq", double(t.accum_freq), false);
  r.read(root, "imagenet-val", t.imagenet_val);
  resolve_from_scenario(path, t.imagenet_val);
  r.read_strings(root, "zeroshot-templates", t.zeroshot_templates);
  if (root.contains("zeroshot-templates") && t.zeroshot_templates.empty()) {
    r.fail(*root.get("zeroshot-templates"), "zeroshot-templates needs at least one template");
  }
  r.read(root, "resume", t.resume);
  resolve_from_scenario(path, t.resume);
  r.read(root, "save-frequency", t.save_frequency);
  r.read(root, "save-every-steps", t.save_every_steps);
  if (root.contains("save-frequency"))
    r.positive(root, "save-frequency", double(t.save_frequency), true);
  if (root.contains("save-every-steps"))
    r.positive(root, "save-every-steps", double(t.save_every_steps), true);
  r.read(root, "train-data", t.train_data);
  r.read(root, "csv-img-key", t.csv_img_key);
  r.read(root, "csv-caption-key", t.csv_caption_key);
  r.read(root, "csv-separator", t.csv_separator);
  r.read(root, "skip-bad-samples", t.skip_bad_samples);
  if (const auto* dbg = r.table(root, "debug")) {
    r.check_keys(*dbg, {"flip-step", "flip-tensor", "flip-element", "flip-bit", "flip-seed"},
                 "debug");
    auto& f = t.flip;
    r.read(*dbg, "flip-step", f.step);
    r.read(*dbg, "flip-tensor", f.tensor);
    r.read(*dbg, "flip-element", f.element);
    r.read(*dbg, "flip-bit", f.bit);
    int64_t seed = 0;
    r.read(*dbg, "flip-seed", seed);
    f.seed = uint64_t(seed);
    if (!dbg->contains("flip-step") || f.step < 1)
      r.fail(dbg->contains("flip-step") ? *dbg->get("flip-step") : *root.get("debug"),
             "[debug] needs flip-step >= 1 (the step after whose update the bit flips)");
    if (dbg->contains("flip-element") && f.element < 0)
      r.fail(*dbg->get("flip-element"), "'flip-element' must be >= 0");
    if (dbg->contains("flip-bit") && f.bit < 0)
      r.fail(*dbg->get("flip-bit"), "'flip-bit' must be >= 0");
  }
  if (const auto* n = r.table(root, "numerics")) {
    r.check_keys(*n, {"bn-fp32", "bn-eps"}, "numerics");
    r.read(*n, "bn-fp32", t.bn_fp32);
    r.read(*n, "bn-eps", t.bn_eps);
    if (n->contains("bn-eps")) r.positive(*n, "bn-eps", t.bn_eps, false);
  }
  if (root.contains("dataset-type") && t.dataset_type != "synthetic" && t.dataset_type != "csv" &&
      t.dataset_type != "webdataset") {
    r.fail(*root.get("dataset-type"),
           "dataset-type must be \"synthetic\", \"csv\" or \"webdataset\"");
  }
  if (t.dataset_type != "synthetic" && t.train_data.empty()) {
    r.fail(*root.get("dataset-type"), "dataset-type '" + t.dataset_type + "' needs train-data");
  }
  // A CSV list is relative to the scenario, so a scenario and its list can move together.
  if (t.dataset_type == "csv") resolve_from_scenario(path, t.train_data);
  if (root.contains("csv-separator") && t.csv_separator.size() != 1) {
    r.fail(*root.get("csv-separator"), "csv-separator must be one character");
  }
  if (const auto* a = r.table(root, "aug-cfg")) {
    r.check_keys(*a, {"scale", "re_prob", "use_timm"}, "aug-cfg");
    if (const auto* sc = a->get("scale")) {
      const auto* arr = sc->as_array();
      if (arr == nullptr || arr->size() != 2 || !(*arr)[0].is_number() || !(*arr)[1].is_number())
        r.fail(*sc, "aug-cfg scale must be two numbers, e.g. [0.4, 1.0]");
      t.aug_scale_min = (*arr)[0].value<double>().value();
      t.aug_scale_max = (*arr)[1].value<double>().value();
      if (!(0 < t.aug_scale_min && t.aug_scale_min <= t.aug_scale_max))
        r.fail(*sc, "aug-cfg scale must satisfy 0 < min <= max");
    }
    r.read(*a, "re_prob", t.aug_re_prob);
    if (a->contains("re_prob") && (t.aug_re_prob < 0 || t.aug_re_prob > 1))
      r.fail(*a->get("re_prob"), "aug-cfg re_prob must be in [0, 1]");
    r.read(*a, "use_timm", t.aug_use_timm);
  }
  if (root.contains("device") && t.device != "cpu" && t.device != "cuda") {
    r.fail(*root.get("device"), "device must be \"cpu\" or \"cuda\"");
  }

  if (const auto* d = r.table(root, "determinism")) {
    r.check_keys(*d, {"deterministic", "threads", "cpu-isa", "mkl-cbwr", "allow-tf32"},
                 "determinism");
    r.read(*d, "deterministic", t.determinism.deterministic);
    r.read(*d, "threads", t.determinism.threads);
    r.read(*d, "cpu-isa", t.determinism.cpu_isa);
    r.read(*d, "mkl-cbwr", t.determinism.mkl_cbwr);
    r.read(*d, "allow-tf32", t.determinism.allow_tf32);
  }
  if (const auto* l = r.table(root, "log")) {
    r.check_keys(*l,
                 {"digest-every", "full-steps", "full-tensors", "activation-samples", "compression",
                  "queue-mib", "flush-seconds"},
                 "log");
    r.read(*l, "activation-samples", s.log.activation_samples);
    if (l->contains("activation-samples"))
      r.positive(*l, "activation-samples", double(s.log.activation_samples), true);
    std::string compression = "none";
    r.read(*l, "compression", compression);
    if (compression != "none" && compression != "gzip")
      r.fail(*l->get("compression"), "compression must be \"none\" or \"gzip\"");
    s.log.compress = compression == "gzip";
    r.read(*l, "queue-mib", s.log.queue_mib);
    r.read(*l, "flush-seconds", s.log.flush_seconds);
    if (l->contains("flush-seconds")) r.positive(*l, "flush-seconds", s.log.flush_seconds, true);
    if (l->contains("queue-mib")) r.positive(*l, "queue-mib", double(s.log.queue_mib), false);
    r.read(*l, "digest-every", s.log.digest_every);
    if (l->contains("digest-every"))
      r.positive(*l, "digest-every", double(s.log.digest_every), false);
    r.read_steps(*l, "full-steps", s.log.full_steps);
    r.read_strings(*l, "full-tensors", s.log.full_tensors);
  }
  s.golden.selection = s.log;
  if (const auto* g = r.table(root, "golden")) {
    r.check_keys(*g, {"path", "full-steps", "full-tensors", "tolerance", "tolerance-for"},
                 "golden");
    std::string gp;
    r.read(*g, "path", gp);
    if (gp.empty()) r.fail(*g, "[golden] needs 'path'");
    resolve_from_scenario(path, gp);
    s.golden.path = gp;
    s.golden.selection.full_steps.clear();
    s.golden.selection.full_tensors.clear();
    r.read_steps(*g, "full-steps", s.golden.selection.full_steps);
    r.read_strings(*g, "full-tensors", s.golden.selection.full_tensors);
    std::string tol = "bitwise";
    r.read(*g, "tolerance", tol);
    std::vector<std::string> overrides;
    r.read_strings(*g, "tolerance-for", overrides);
    try {
      s.golden.tolerance.fallback = parse_tolerance(tol);
    } catch (const std::invalid_argument& e) {
      r.fail(*g->get("tolerance"), e.what());
    }
    try {
      for (const auto& o : overrides)
        s.golden.tolerance.overrides.push_back(parse_tolerance_override(o));
    } catch (const std::invalid_argument& e) {
      r.fail(*g->get("tolerance-for"), e.what());
    }
  }
  return s;
}

nlohmann::json Scenario::resolved() const {
  const auto& t = train;
  return {
      {"name", name},
      {"description", description},
      {"model", t.model},
      {"precision", t.precision},
      {"device", t.device},
      {"batch-size", t.batch_size},
      {"lr", t.lr},
      {"wd", t.wd},
      {"warmup", t.warmup},
      {"beta1", t.beta1},
      {"beta2", t.beta2},
      {"eps", t.eps},
      {"grad-clip-norm", t.grad_clip_norm},
      {"seed", t.seed},
      {"epochs", t.epochs},
      {"steps", t.steps},
      {"total-steps", t.total_steps()},
      {"steps-per-epoch", t.steps_per_epoch()},
      {"local-loss", t.local_loss},
      {"gather-with-grad", t.gather_with_grad},
      {"dist-backend", t.dist_backend},
      {"world-size", t.world_size},
      {"dataset-type", t.dataset_type},
      {"train-data", t.train_data},
      {"csv-img-key", t.csv_img_key},
      {"csv-caption-key", t.csv_caption_key},
      {"csv-separator", t.csv_separator},
      {"accum-freq", t.accum_freq},
      {"resume", t.resume},
      {"imagenet-val", t.imagenet_val},
      {"zeroshot-templates", t.zeroshot_templates},
      {"save-frequency", t.save_frequency},
      {"save-every-steps", t.save_every_steps},
      {"aug-cfg",
       {{"scale", {t.aug_scale_min, t.aug_scale_max}},
        {"re_prob", t.aug_re_prob},
        {"use_timm", t.aug_use_timm}}},
      {"skip-bad-samples", t.skip_bad_samples},
      {"numerics", {{"bn-fp32", t.bn_fp32}, {"bn-eps", t.bn_eps}}},
      {"debug",
       {{"flip-step", t.flip.step},
        {"flip-tensor", t.flip.tensor},
        {"flip-element", t.flip.element},
        {"flip-bit", t.flip.bit},
        {"flip-seed", t.flip.seed}}},
      {"train-num-samples", t.train_num_samples},
      {"val-num-samples", t.val_num_samples},
      {"zeroshot-frequency", t.zeroshot_frequency},
      {"determinism",
       {{"deterministic", t.determinism.deterministic},
        {"threads", t.determinism.threads},
        {"cpu-isa", t.determinism.cpu_isa},
        {"mkl-cbwr", t.determinism.mkl_cbwr},
        {"allow-tf32", t.determinism.allow_tf32}}},
      {"log",
       {{"digest-every", log.digest_every},
        {"full-steps", steps_json(log.full_steps)},
        {"full-tensors", log.full_tensors}}},
      {"golden",
       {{"path", golden.path.string()},
        {"full-steps", steps_json(golden.selection.full_steps)},
        {"full-tensors", golden.selection.full_tensors},
        {"tolerance", golden.tolerance.text()}}},
  };
}

}  // namespace cliprepro
