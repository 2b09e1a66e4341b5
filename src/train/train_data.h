// The data of a run, built from its config: OpenCLIP's csv/webdataset training data and the
// zero-shot set (an imagenet-val ImageFolder, or the synthetic held-out shapes).
#pragma once
#include <torch/types.h>

#include <memory>

#include "src/data/clip_tokenizer.h"
#include "src/data/openclip_loader.h"
#include "src/data/real_data.h"
#include "src/data/synthetic_shapes.h"
#include "src/data/word_tokenizer.h"
#include "src/model/model_config.h"
#include "src/train/train_config.h"
#include "src/train/zero_shot.h"

namespace cliprepro {

// Indexes the csv/webdataset data (throws naming the file for anything unreadable) and warns
// on stderr about skipped samples and an re_prob OpenCLIP would ignore.
std::unique_ptr<RealData> make_real_data(const DataConfig& data, const ModelConfig& model,
                                         uint64_t seed,
                                         std::shared_ptr<const ClipTokenizer> tokenizer);

// OpenCLIP's csv loader for `seeding = "openclip"` over micro-batches [0, end) on this rank;
// refuses, naming the key, what it cannot reproduce (webdataset, use_timm, skip-bad-samples, a
// run that starts after step 0, an epoch length other than OpenCLIP's).
std::unique_ptr<OpenClipLoader> make_openclip_loader(const TrainConfig& cfg, const RealData& data,
                                                     int rank, int world_size, bool pinned,
                                                     int64_t start_step, int64_t end);

struct ZeroShotSet {
  torch::Tensor images, labels;  // eval-transformed images and their class ids
  torch::Tensor class_tokens;    // classes x templates prompts, tokenized
  ZeroShotOptions options;
};

// OpenCLIP's --imagenet-val: an ImageFolder, class names x templates through CLIP's BPE, as
// `zeroshot-classes` says. Throws, naming the folder, for WordNet-id folders under folder-names.
ZeroShotSet imagenet_val_set(const TrainConfig& cfg, const ModelConfig& model,
                             const ClipTokenizer& tokenizer);

// The first `samples` held-out synthetic shapes, one prompt per class.
ZeroShotSet synthetic_zero_shot_set(int64_t samples, const SyntheticShapes& val_set,
                                    const WordTokenizer& tokenizer);

}  // namespace cliprepro
