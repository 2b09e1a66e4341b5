// The training keys of a scenario, one row each. Adding a key: one row here, plus its use.
// docs/scenario-schema.md's tables are generated from these rows (`cliprepro keys --write-doc`).
#include "src/train/train_config.h"

namespace cliprepro {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::kBool:
      return "bool";
    case ValueType::kInt:
      return "int";
    case ValueType::kFloat:
      return "float";
    case ValueType::kString:
      return "string";
    case ValueType::kStrings:
      return "list of strings";
    case ValueType::kFloatPair:
      return "two floats";
    case ValueType::kSteps:
      return "list of steps";
  }
  return "?";
}

const std::vector<std::pair<std::string_view, Precision>>& EnumNames<Precision>::get() {
  static const std::vector<std::pair<std::string_view, Precision>> k = {
      {"fp32", Precision::kFp32},          {"amp", Precision::kAmp},
      {"amp_bf16", Precision::kAmpBf16},   {"amp_bfloat16", Precision::kAmpBf16},
      {"fp16", Precision::kFp16},          {"bf16", Precision::kBf16},
      {"pure_fp16", Precision::kPureFp16}, {"pure_bf16", Precision::kPureBf16}};
  return k;
}
const std::vector<std::pair<std::string_view, Device>>& EnumNames<Device>::get() {
  static const std::vector<std::pair<std::string_view, Device>> k = {{"cpu", Device::kCpu},
                                                                     {"cuda", Device::kCuda}};
  return k;
}
const std::vector<std::pair<std::string_view, DistBackend>>& EnumNames<DistBackend>::get() {
  static const std::vector<std::pair<std::string_view, DistBackend>> k = {
      {"gloo", DistBackend::kGloo}, {"nccl", DistBackend::kNccl}};
  return k;
}
const std::vector<std::pair<std::string_view, Seeding>>& EnumNames<Seeding>::get() {
  static const std::vector<std::pair<std::string_view, Seeding>> k = {
      {"cliprepro", Seeding::kCliprepro}, {"openclip", Seeding::kOpenClip}};
  return k;
}
const std::vector<std::pair<std::string_view, ZeroShotClasses>>& EnumNames<ZeroShotClasses>::get() {
  static const std::vector<std::pair<std::string_view, ZeroShotClasses>> k = {
      {"folder-names", ZeroShotClasses::kFolderNames},
      {"openclip-imagenet", ZeroShotClasses::kOpenClipImagenet}};
  return k;
}
const std::vector<std::pair<std::string_view, DatasetType>>& EnumNames<DatasetType>::get() {
  static const std::vector<std::pair<std::string_view, DatasetType>> k = {
      {"synthetic", DatasetType::kSynthetic},
      {"csv", DatasetType::kCsv},
      {"webdataset", DatasetType::kWebdataset},
      {"replay", DatasetType::kReplay}};
  return k;
}

namespace {

using checks::at_least;
using checks::between;
using checks::greater_than;
using checks::in_unit_interval;

Check<std::string> one_char() {
  return [](const std::string& v) { return v.size() == 1 ? "" : "must be one character"; };
}
Check<std::vector<std::string>> non_empty() {
  return
      [](const std::vector<std::string>& v) { return v.empty() ? "needs at least one entry" : ""; };
}
Check<std::array<double, 2>> ordered_scale() {
  return [](const std::array<double, 2>& v) {
    return 0 < v[0] && v[0] <= v[1] ? "" : "must satisfy 0 < min <= max";
  };
}

#define KEY(...) CLIPREPRO_KEY(TrainConfig, __VA_ARGS__)

}  // namespace

const std::vector<ConfigKey<TrainConfig>>& train_config_keys() {
  static const std::vector<ConfigKey<TrainConfig>> keys = {
      KEY("", "model", model, kTrajectory,
          "shipped model config (`RN50`, `RN50-quickgelu`, `RN101`, `RN50x4`, `tiny`, `tiny-bpe`; "
          "`src/model/configs/`) or a path to an OpenCLIP model-config JSON (`.json`, relative to "
          "the "
          "scenario)"),
      KEY("", "precision", precision, kTrajectory,
          "OpenCLIP `--precision`: `fp32`; `amp` (fp16 autocast for forward + loss, PyTorch "
          "GradScaler: init 65536, growth 2 every 2000 clean steps, backoff 0.5, step skipped on "
          "inf/NaN); `amp_bf16` = `amp_bfloat16` (bf16 autocast, no scaler); `fp16`, `bf16` "
          "(open_clip's `convert_weights_to_lp`: conv, linear and attention weights and biases and "
          "`text_projection` in low precision; embeddings, LayerNorm, BatchNorm and `logit_scale` "
          "fp32; text LayerNorms computed in fp32 (`LayerNormFp32`); images cast to the low dtype; "
          "no loss scaling); `pure_fp16`, `pure_bf16` (every floating parameter and buffer in low "
          "precision, `num_batches_tracked` stays int64)"),
      KEY("", "device", device, kPlain,
          "`cpu` or `cuda` (one GPU per local rank: `cuda:LOCAL_RANK`)"),
      KEY("", "dataset-type", data.dataset_type, kTrajectory,
          "`synthetic` (seeded shapes, `src/data/synthetic_shapes.h`), `csv` or `webdataset` "
          "(OpenCLIP's; `docs/data.md`). Real data tokenizes captions with CLIP's BPE, so the "
          "model needs vocab 49408 (`tiny-bpe`, `RN50`, …) and needs `train-data`. `replay` "
          "(cliprepro): exactly the batches a log recorded (`data/*` at every step), starting "
          "from its step-0 `params/*` and `buffers/*` (`docs/data.md` \"Replay\")"),
      KEY("", "train-data", data.train_data, kTrajectory,
          "`csv`: the list (a relative path is resolved from the scenario's directory); "
          "`webdataset`: shard list with `{a..b}` braces and `::` separators (as written, relative "
          "to the working directory); `replay`: the log (`.h5`, world size 1) or a distributed "
          "run's `<name>.manifest.json` (rank r replays its `logs[r]`), relative to the scenario"),
      KEY("", "csv-img-key", data.csv_img_key, kPlain,
          "OpenCLIP's CSV image column; image paths in the list are opened as written (relative to "
          "the working directory), as OpenCLIP does"),
      KEY("", "csv-caption-key", data.csv_caption_key, kPlain, "OpenCLIP's CSV caption column"),
      KEY("", "csv-separator", data.csv_separator, kPlain, "OpenCLIP's CSV separator", one_char()),
      KEY("", "workers", data.workers, kPlain,
          "OpenCLIP's `--workers` (`csv`, `webdataset`): threads that decode and augment the next "
          "batches while a step trains (at most 2 batches ahead; pinned host memory and "
          "non-blocking copies on CUDA); 0 decodes inside the step on the intra-op threads. Under "
          "`seeding = \"cliprepro\"` the batches' bits do not depend on it; under `\"openclip\"` "
          "they do, as in OpenCLIP (each worker draws the crops of its batches). At most 128",
          between(0, 128)),
      KEY("", "skip-bad-samples", data.skip_bad_samples, kTrajectory,
          "cliprepro extension (`csv`, `webdataset`): decode every sample once when the data is "
          "indexed and leave out those that cannot be read or decoded — named on stderr and in the "
          "log's `skipped_samples` attribute — instead of stopping with exit 2 at the first batch "
          "holding one. Epochs then run over the good samples only"),
      KEY("", "max-image-pixels", data.max_image_pixels, kPlain,
          "cliprepro extension: an image of more pixels is refused, naming the file, before it is "
          "decoded (decompression bombs; PIL's `Image.MAX_IMAGE_PIXELS`); 0 = no limit. Applies to "
          "training data and `imagenet-val`",
          at_least(0)),
      KEY("", "train-num-samples", data.train_num_samples, kTrajectory,
          "samples per epoch (synthetic, webdataset; for `csv` the list's length, as in "
          "OpenCLIP; for `replay` the recorded run's, from the log's `resolved_config`). At most "
          "2^32: an epoch's seeded permutation is held in memory",
          between(1, 4294967296.0)),
      KEY("", "val-num-samples", data.val_num_samples, kPlain,
          "held-out synthetic samples for zero-shot evaluation (generated in memory: at most "
          "10^6)",
          between(1, 1e6)),
      KEY("", "batch-size", batch_size, kTrajectory,
          "per-rank batch size (a step consumes batch-size × world size samples)", greater_than(0)),
      KEY("", "epochs", epochs, kPlain,
          "schedule length = (train-num-samples // (batch-size · world size) // accum-freq) · "
          "epochs steps",
          greater_than(0)),
      KEY("", "steps", steps, kPlain,
          "cliprepro extension: total optimizer steps (overrides `epochs`; 0 = use epochs)",
          at_least(0)),
      KEY("", "lr", optim.lr, kTrajectory, "base learning rate (OpenCLIP's RN50 default)",
          at_least(0)),
      KEY("", "wd", optim.wd, kTrajectory,
          "AdamW weight decay for the decayed group (>= 0: PyTorch refuses a negative one)",
          at_least(0)),
      KEY("", "warmup", optim.warmup, kTrajectory, "linear warmup steps, then cosine to 0",
          at_least(0)),
      KEY("", "beta1", optim.beta1, kTrajectory, "AdamW beta1", in_unit_interval(false)),
      KEY("", "beta2", optim.beta2, kTrajectory, "AdamW beta2", in_unit_interval(false)),
      KEY("", "eps", optim.eps, kTrajectory, "AdamW epsilon", greater_than(0)),
      KEY("", "grad-clip-norm", optim.grad_clip_norm, kTrajectory,
          "`clip_grad_norm_` with norm type 2; 0 = off", at_least(0)),
      KEY("", "seed", seed, kTrajectory, "model init, data order and content"),
      KEY("", "seeding", seeding, kTrajectory,
          "cliprepro extension: where the random draws come from. `cliprepro` (default): the "
          "model's text transformer is constructed before its token embedding, and each `csv` / "
          "`webdataset` sample of an epoch is ordered by cliprepro's seeded permutation and "
          "augmented from its own generator, so the bits do not depend on `workers`. `openclip` "
          "(written by `import-openclip`): OpenCLIP 3.3.0's — the same initial weights as "
          "`open_clip.create_model` for `seed`, and for `csv` its DataLoader: RandomSampler "
          "(DistributedSampler under torchrun), crops drawn from the main process's generator "
          "(`workers = 0`) or from each worker's (seeded base_seed + worker id, batches dealt "
          "round robin), so `workers` changes the bits as it does in OpenCLIP "
          "(`docs/data.md` \"OpenCLIP's order\")"),
      KEY("", "accum-freq", optim.accum_freq, kTrajectory,
          "OpenCLIP's `--accum-freq`: micro-batches per optimizer step, with its feature cache "
          "(no-grad features of all micro-batches, then each re-run with grad, its features "
          "spliced among the cached ones as negatives; one backward each). Must divide the batches "
          "per epoch",
          greater_than(0)),
      KEY("", "local-loss", dist.local_loss, kTrajectory,
          "ClipLoss flag, as OpenCLIP's (no effect at world size 1); see `docs/distributed.md`"),
      KEY("", "gather-with-grad", dist.gather_with_grad, kTrajectory,
          "ClipLoss flag, as OpenCLIP's (no effect at world size 1); see `docs/distributed.md`"),
      KEY("", "dist-backend", dist.dist_backend, kPlain,
          "c10d backend when launched by torchrun with more than one rank (`nccl` needs `device = "
          "\"cuda\"`)",
          {}, "`gloo` on CPU, `nccl` on CUDA"),
      KEY("", "save-frequency", checkpoint.save_frequency, kPlain,
          "OpenCLIP's `--save-frequency`: a training checkpoint every N epochs (0 = off)",
          at_least(0)),
      KEY("", "save-every-steps", checkpoint.save_every_steps, kPlain,
          "cliprepro extension: a training checkpoint every N steps (0 = off). Checkpoints go to "
          "`<out>/<name>.checkpoints/step_<s>.safetensors`, written by rank 0",
          at_least(0)),
      KEY("", "resume", checkpoint.resume, kScenarioPath,
          "OpenCLIP's `--resume`: a cliprepro training checkpoint (relative to the scenario); the "
          "run continues after its step, bit for bit (`docs/design.md`). Refused, listing the "
          "differences, when the checkpoint's trajectory keys (the ✓ rows) or total steps and "
          "world size differ"),
      KEY("", "zeroshot-frequency", eval.zeroshot_frequency, kPlain,
          "zero-shot eval every N epochs and at the last step; 0 = off", at_least(0)),
      KEY("", "imagenet-val", eval.imagenet_val, kScenarioPath,
          "OpenCLIP's `--imagenet-val`: an ImageFolder (one subfolder per class, sorted; "
          "`.jpg/.jpeg/.png`; folder names with `_` read as spaces) for the zero-shot eval, "
          "eval-transformed (resize shortest side, centre crop); relative to the scenario. Needs "
          "CLIP's vocabulary (`tiny-bpe`, `RN50`, …). Without it, synthetic runs use the synthetic "
          "held-out set and real-data runs have no zero-shot"),
      KEY("", "zeroshot-templates", eval.zeroshot_templates, kPlain,
          "prompt templates (`{}` = class name); with several, the classifier is OpenCLIP's "
          "`build_zero_shot_classifier` (normalised text features averaged over templates, "
          "renormalised); used with `zeroshot-classes = \"folder-names\"`",
          non_empty()),
      KEY("", "zeroshot-classes", eval.zeroshot_classes, kPlain,
          "where `imagenet-val`'s classes and prompts come from. `folder-names` (cliprepro "
          "extension): each class folder's name with every `zeroshot-templates` entry; refused "
          "when the folders are WordNet ids (`n01440764`, …), whose names make no prompt. "
          "`openclip-imagenet` (written by `import-openclip`): OpenCLIP's `zero_shot_eval` — "
          "`IMAGENET_CLASSNAMES` and `OPENAI_IMAGENET_TEMPLATES` as the installed open_clip wheel "
          "ships them (1000 classes × 80 prompts, encoded 10 classes at a time), class *i* = the "
          "*i*-th folder in sorted order as torchvision's ImageFolder labels it, images in batches "
          "of `batch-size`, logits `100 · features @ classifier`"),

      KEY("aug-cfg", "scale", data.aug.scale, kTrajectory, "RandomResizedCrop's scale range",
          ordered_scale()),
      KEY("aug-cfg", "re_prob", data.aug.re_prob, kTrajectory,
          "random erasing probability; ignored with a warning unless `use_timm = true`, exactly as "
          "OpenCLIP ignores it",
          in_unit_interval(true)),
      KEY("aug-cfg", "use_timm", data.aug.use_timm, kTrajectory,
          "timm's pipeline as OpenCLIP configures it (no flip, no colour jitter, "
          "`re_mode='pixel'`): the same crop and normalisation, then timm's RandomErasing with "
          "probability `re_prob` (`docs/data.md`)"),

      KEY("determinism", "deterministic", determinism.deterministic, kPlain,
          "`setDeterministicAlgorithms`, cuDNN deterministic, no cuDNN benchmark, deterministic "
          "fill of uninitialised memory, `CUBLAS_WORKSPACE_CONFIG=:4096:8`"),
      KEY("determinism", "threads", determinism.threads, kPlain,
          "intra-op threads (`at::set_num_threads`); 0 keeps LibTorch's default. CPU results can "
          "depend on it. At most 1024",
          between(0, 1024)),
      KEY("determinism", "cpu-isa", determinism.cpu_isa, kPlain,
          "sets `ONEDNN_MAX_CPU_ISA` (e.g. `\"AVX2\"`) so oneDNN picks the same kernels on other "
          "x86 CPUs, and `ATEN_CPU_CAPABILITY` to match (`AVX512*` → `avx512`, `AVX2*` → `avx2`, "
          "`SSE41`/`AVX` → `default`) so ATen's own vectorised kernels (softmax, exp, reductions) "
          "do too: without it an AVX-512 machine and an AVX2 one part at the first attention "
          "softmax. The log records the effective `aten_cpu_capability` (part of the fingerprint "
          "key) and a warning says when the pin came too late"),
      KEY("determinism", "mkl-cbwr", determinism.mkl_cbwr, kPlain,
          "sets `MKL_CBWR` (e.g. `\"AVX2\"`), MKL's conditional numerical reproducibility"),
      KEY("determinism", "allow-tf32", determinism.allow_tf32, kPlain,
          "TF32 in cuBLAS/cuDNN (CUDA only)"),
      KEY("determinism", "portable", determinism.portable, kPlain,
          "the same bits on every x86-64 CPU with AVX2 and FMA, whatever its vendor or model: "
          "pins `cpu-isa = \"AVX2\"` and `mkl-cbwr = \"AVX2,STRICT\"` (where unset; other "
          "values are refused) and replaces LibTorch's CPU kernels of `sqrt`, `exp`, `log` and "
          "`erf` for float32/float64, whose MKL vector math depends on the CPU, with cliprepro's "
          "(correctly rounded `sqrt`, glibc's libm). The golden key then drops the CPU's "
          "vendor, model and ISA flags. A CPU without AVX2 or FMA is refused. `false`: "
          "LibTorch's kernels, as OpenCLIP runs them (bitwise OpenCLIP on one machine; "
          "`import-openclip` writes it). `docs/compare.md`, \"Goldens\""),

      KEY("numerics", "bn-fp32", numerics.bn_fp32, kTrajectory,
          "BatchNorm in real fp32: it normalises an fp32 copy of its input with fp32 parameters "
          "and running statistics (kept fp32 under `pure_*` too). Under autocast (`amp`, "
          "`amp_bf16`) its output stays fp32, so the residual add and ReLU after it run in fp32 "
          "and the next conv casts again; under `fp16`/`bf16`/`pure_*` its output is cast back to "
          "the input's dtype. No effect in `fp32`"),
      KEY("numerics", "bn-eps", numerics.bn_eps, kTrajectory,
          "epsilon of every BatchNorm (`nn.BatchNorm2d`'s default)", greater_than(0)),
      KEY("numerics", "fp32-modules", numerics.fp32_modules, kTrajectory,
          "module-name globs (`*` any run of characters, `?` one; OpenCLIP's `named_modules()` "
          "names, e.g. `\"visual.layer1.*.bn*\"`, `\"visual.attnpool\"`, "
          "`\"transformer.resblocks.0\"`) whose precision sites run in fp32 inside an `amp`/"
          "`amp_bf16` run: autocast off, inputs cast to fp32, output fp32. A site is a Conv2d, "
          "Linear or BatchNorm2d, an attention's own ops (packed in-projection and core; "
          "AttentionPool2d's positional add and core), `text_projection` or `loss` (the "
          "logit matmuls of ClipLoss and zero-shot); a glob selects the sites at or below the "
          "modules it matches. LayerNorm, "
          "activations and residual adds follow their inputs. A glob that selects no site is "
          "an error; `cliprepro sites MODEL` lists them. Wins over `low-precision-modules`"),
      KEY("numerics", "low-precision-modules", numerics.low_precision_modules, kTrajectory,
          "the converse: only the sites these globs select run in the autocast dtype (their "
          "fp32 inputs cast to it, as an autocast op before them would have), every other site "
          "in fp32 — e.g. an `amp_bf16` run that is fp32 except `visual.layer1`. Empty: every "
          "site not in `fp32-modules` runs as autocast has it"),

      KEY("debug", "flip-step", flip.step, kRequired,
          "the step after whose optimizer update the bit flips (1 … total steps)", at_least(1),
          "— (required)"),
      KEY("debug", "flip-tensor", flip.tensor, kPlain,
          "a floating-point `params/*`, `buffers/*` or `optimizer/exp_avg{,_sq}/*` log name", {},
          "random"),
      KEY("debug", "flip-element", flip.element, kPlain, "flat index into it", at_least(0),
          "random"),
      KEY("debug", "flip-bit", flip.bit, kPlain,
          "bit of the element's raw bytes (0 = least significant)", at_least(0), "random"),
      KEY("debug", "flip-seed", flip.seed, kPlain, "draws the unset choices"),
  };
  return keys;
}

nlohmann::json trajectory_json(const TrainConfig& cfg) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& k : train_config_keys())
    if (k.has(kTrajectory)) j[k.qualified()] = k.get(cfg);
  j["total-steps"] = cfg.total_steps();
  j["world-size"] = cfg.dist.world_size;
  // Under OpenCLIP's seeding the loader's worker count decides which generator draws each crop.
  if (cfg.seeding == Seeding::kOpenClip) j["workers"] = cfg.data.workers;
  return j;
}

}  // namespace cliprepro
