// CLIP = ModifiedResNet image tower + text transformer, parameter names as OpenCLIP's state_dict.
#pragma once
#include <torch/torch.h>

#include "src/model/capture.h"
#include "src/model/model_config.h"
#include "src/model/modified_resnet.h"
#include "src/model/precision_sites.h"
#include "src/model/text_transformer.h"

namespace cliprepro {

// How the model computes beyond its weights' dtypes.
struct ModelNumerics {
  // open_clip's LayerNormFp32 in the text tower (built for the fp16/bf16 precisions).
  bool layer_norm_fp32 = false;
  // bn-fp32 (cliprepro): BatchNorm on an fp32 copy of its input, parameters and statistics kept
  // fp32; under autocast its output stays fp32.
  bool batch_norm_fp32 = false;
  double batch_norm_eps = 1e-5;  // bn-eps (cliprepro); nn.BatchNorm2d's default
  // fp32-modules / low-precision-modules (cliprepro): per-site precision inside autocast.
  PrecisionOverrides overrides;
};

struct ClipOutput {
  torch::Tensor image_features;  // L2-normalised (N, embed_dim)
  torch::Tensor text_features;   // L2-normalised (N, embed_dim)
  torch::Tensor logit_scale;     // exp(logit_scale parameter), 0-d
};

// The order the constructor draws initial values in (the values' definitions are the same).
// kOpenClip: open_clip's CLIP, whose TextTransformer constructs nn.Embedding before the
// transformer, so for the same seed every tensor is bitwise OpenCLIP's. kCliprepro: the text
// transformer first, which leaves its MLP biases (kept from construction) differently drawn;
// the order of cliprepro's own runs, so the goldens blessed with it hold.
enum class InitOrder { kCliprepro, kOpenClip };

class ClipImpl : public torch::nn::Module {
 public:
  explicit ClipImpl(const ModelConfig& cfg, InitOrder order = InitOrder::kCliprepro);

  torch::Tensor encode_image(const torch::Tensor& images, bool normalize,
                             CaptureTape* tape = nullptr);
  torch::Tensor encode_text(const torch::Tensor& tokens, bool normalize,
                            CaptureTape* tape = nullptr);
  ClipOutput forward(const torch::Tensor& images, const torch::Tensor& tokens,
                     CaptureTape* tape = nullptr);

  const ModelConfig& config() const { return cfg_; }
  // Throws std::invalid_argument for an override glob that selects no precision site.
  void set_numerics(const ModelNumerics& n);
  const ModelNumerics& numerics() const { return numerics_; }

  ModifiedResNet visual{nullptr};
  Transformer transformer{nullptr};
  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding, text_projection, logit_scale;
  torch::nn::LayerNorm ln_final{nullptr};
  torch::Tensor attn_mask;  // non-persistent in OpenCLIP: a plain member, not a buffer
  PrecisionSites sites;     // text_projection, loss (the trainer's ClipLoss)

 private:
  void init_text_parameters();
  ModelConfig cfg_;
  ModelNumerics numerics_;
};
TORCH_MODULE(Clip);

}  // namespace cliprepro
