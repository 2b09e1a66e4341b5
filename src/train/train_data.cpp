#include "src/train/train_data.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <numeric>
#include <stdexcept>
#include <string>

#include "src/data/image_folder.h"
#include "src/data/openclip_zero_shot_metadata.h"
#include "src/train/zero_shot.h"

namespace cliprepro {

std::unique_ptr<RealData> make_real_data(const DataConfig& data, const ModelConfig& model,
                                         uint64_t seed,
                                         std::shared_ptr<const ClipTokenizer> tokenizer) {
  RealDataOptions o;
  o.dataset_type = data.dataset_type;
  o.train_data = data.train_data;
  o.csv.img_key = data.csv_img_key;
  o.csv.caption_key = data.csv_caption_key;
  o.csv.separator = data.csv_separator[0];
  o.scale = data.aug.scale;
  o.re_prob = data.aug.use_timm ? data.aug.re_prob : 0.0;
  o.image_size = model.vision.image_size;
  o.context_length = model.text.context_length;
  o.seed = seed;
  o.skip_bad_samples = data.skip_bad_samples;
  auto real = std::make_unique<RealData>(o, std::move(tokenizer));
  for (const auto& sk : real->skipped()) {
    std::fprintf(stderr, "warning: skipped %s: %s\n", sk.source.c_str(), sk.reason.c_str());
  }
  if (data.aug.re_prob > 0 && !data.aug.use_timm) {
    std::fprintf(stderr,
                 "warning: aug-cfg re_prob is ignored without use_timm, as OpenCLIP ignores it "
                 "(open_clip/transform.py: 'Unused augmentation cfg items')\n");
  }
  return real;
}

std::unique_ptr<OpenClipLoader> make_openclip_loader(const TrainConfig& cfg, const RealData& data,
                                                     int rank, int world_size, bool pinned,
                                                     int64_t start_step, int64_t end) {
  const std::string why = "seeding = \"openclip\" ";
  if (cfg.data.dataset_type == DatasetType::kWebdataset) {
    // open_clip_train/data.py calls wds.shuffle(bufsize, initial) with neither rng nor seed, and
    // webdataset 0.2.86 then seeds it from os.getpid() + time.time(): no two runs agree.
    throw std::runtime_error(
        why +
        "cannot reproduce OpenCLIP's webdataset order: OpenCLIP 3.3.0 shuffles samples "
        "with a buffer webdataset seeds from the process id and the clock, so no two "
        "OpenCLIP runs see the same batches; use seeding = \"cliprepro\" (a seeded order)");
  }
  if (cfg.data.dataset_type != DatasetType::kCsv) {
    throw std::runtime_error(why + "reproduces OpenCLIP's csv loader only");
  }
  if (cfg.data.aug.use_timm) {
    throw std::runtime_error(why +
                             "cannot follow aug-cfg use_timm: timm draws its crops and "
                             "erasing from Python's `random`; use seeding = \"cliprepro\"");
  }
  if (cfg.data.skip_bad_samples) {
    throw std::runtime_error(why +
                             "and skip-bad-samples: OpenCLIP has no such option (its "
                             "sampler runs over every row)");
  }
  if (start_step > 0) {
    throw std::runtime_error(why +
                             "cannot start after step 0 (resume): OpenCLIP's loader draws "
                             "its batches in order from the first");
  }
  const int64_t openclip_batches =
      OpenClipLoader::batches_per_epoch(data.size(), cfg.batch_size, world_size);
  if (openclip_batches != cfg.batches_per_epoch()) {
    throw std::runtime_error(
        "seeding = \"openclip\": OpenCLIP's epoch has " + std::to_string(openclip_batches) +
        " batches per rank (DistributedSampler pads " + std::to_string(data.size()) +
        " samples to a multiple of the world size), cliprepro's " +
        std::to_string(cfg.batches_per_epoch()) + "; use a list of a multiple of " +
        std::to_string(cfg.batch_size * world_size) + " rows");
  }
  OpenClipLoaderOptions o;
  o.batch_size = cfg.batch_size;
  o.rank = rank;
  o.world_size = world_size;
  o.workers = int(cfg.data.workers);
  o.seed = uint64_t(cfg.seed);
  o.pinned = pinned;
  // open_clip_train: evaluate() on the master after an epoch; zero_shot_eval's rule.
  const int64_t every = cfg.eval.zeroshot_frequency, epochs = cfg.epochs;
  if (rank == 0 && !cfg.eval.imagenet_val.empty() && every > 0) {
    o.evaluates_after = [every, epochs](int64_t e) { return e % every == 0 || e == epochs; };
  }
  return std::make_unique<OpenClipLoader>(data, std::move(o), end);
}

namespace {

// An ImageNet folder's class folders are WordNet ids ("n01440764"): no prompt can be made of them.
bool is_wordnet_id(const std::string& name) {
  return name.size() == 9 && name[0] == 'n' &&
         std::all_of(name.begin() + 1, name.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

ZeroShotSet imagenet_val_set(const TrainConfig& cfg, const ModelConfig& model,
                             const ClipTokenizer& tokenizer) {
  const EvalConfig& eval = cfg.eval;
  ZeroShotSet z;
  std::vector<std::string> class_names, templates = eval.zeroshot_templates;
  // Refused or read before any image is decoded (ImageNet's val set takes minutes).
  if (eval.zeroshot_classes == ZeroShotClasses::kOpenClipImagenet) {
    // open_clip_train's zero_shot_eval; labels stay torchvision's folder indices.
    auto meta = openclip_imagenet_metadata();
    class_names = std::move(meta.class_names);
    templates = std::move(meta.templates);
    z.options.classes_per_batch = 10;
    z.options.image_batch_size = cfg.batch_size;
    z.options.logit_multiplier = 100.0;
  } else if (const auto folders = image_folder_classes(eval.imagenet_val);
             std::all_of(folders.begin(), folders.end(), is_wordnet_id)) {
    throw std::invalid_argument(
        eval.imagenet_val + ": the class folders are WordNet ids (" + folders[0] +
        ", …), which make no prompts with zeroshot-classes = \"folder-names\"; set "
        "zeroshot-classes = \"openclip-imagenet\" (OpenCLIP's zero_shot_eval)");
  }
  auto folder = load_image_folder(eval.imagenet_val, model.vision.image_size);
  if (class_names.empty()) class_names = folder.class_names;
  z.images = folder.images;
  z.labels = folder.labels;
  z.options.templates_per_class = int64_t(templates.size());
  z.class_tokens =
      tokenizer.tokenize(zero_shot_prompts(class_names, templates), model.text.context_length);
  return z;
}

ZeroShotSet synthetic_zero_shot_set(int64_t samples, const SyntheticShapes& val_set,
                                    const WordTokenizer& tokenizer) {
  std::vector<int64_t> ids(static_cast<size_t>(samples));
  std::iota(ids.begin(), ids.end(), 0);
  const Batch b = val_set.batch(ids, tokenizer);
  std::vector<std::string> prompts;
  for (int64_t c = 0; c < SyntheticShapes::num_classes(); ++c)
    prompts.push_back(SyntheticShapes::class_prompt(c));
  ZeroShotSet z;
  z.images = b.images;
  z.labels = b.labels;
  z.class_tokens = tokenizer.encode_batch(prompts);
  return z;
}

}  // namespace cliprepro
