#include "src/train/train_data.h"

#include <cstdio>
#include <numeric>

#include "src/data/image_folder.h"
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

ZeroShotSet imagenet_val_set(const EvalConfig& eval, const ModelConfig& model,
                             const ClipTokenizer& tokenizer) {
  auto folder = load_image_folder(eval.imagenet_val, model.vision.image_size);
  ZeroShotSet z;
  z.images = folder.images;
  z.labels = folder.labels;
  z.templates_per_class = int64_t(eval.zeroshot_templates.size());
  z.class_tokens = tokenizer.tokenize(
      zero_shot_prompts(folder.class_names, eval.zeroshot_templates), model.text.context_length);
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
