#include "harness/run/infer.h"

#include "src/log_schema.h"

#include <torch/torch.h>

#include <sstream>
#include <stdexcept>

#include "harness/log/env_fingerprint.h"
#include "harness/log/tensor_file.h"
#include "src/model/checkpoint.h"
#include "src/model/clip.h"
#include "src/train/clip_loss.h"
#include "src/train/determinism.h"

namespace cliprepro {

void run_infer(const InferOptions& opt) {
  DeterminismConfig det;
  det.threads = opt.threads;
  det.portable = false;  // one pass as OpenCLIP computes it, with LibTorch's own kernels
  apply_process_environment(det);
  apply_determinism(det, /*seed=*/0);
  const torch::Device device(opt.device);

  const auto cfg = load_model_config(opt.model);
  Clip model(cfg);
  load_state_dict(*model, read_checkpoint(opt.checkpoint), /*strict=*/true);
  model->to(device);
  model->train(!opt.eval);

  const auto in = read_tensor_file(opt.inputs);
  auto get = [&](const char* name, torch::ScalarType want) {
    auto it = in.find(name);
    if (it == in.end()) throw std::runtime_error("'" + opt.inputs + "' has no dataset /" + name);
    if (it->second.scalar_type() != want) {
      throw std::runtime_error("'" + opt.inputs + "' /" + name + " must be " + c10::toString(want) +
                               ", is " + c10::toString(it->second.scalar_type()));
    }
    return it->second.to(device);
  };
  const auto images = get("images", torch::kFloat32);
  const auto tokens = get("tokens", torch::kInt64);
  // The shapes the model takes, checked here with the dataset's name rather than deep in LibTorch.
  const int64_t size = cfg.vision.image_size, ctx = cfg.text.context_length;
  auto bad = [&](const std::string& what) {
    std::ostringstream o;
    o << "'" << opt.inputs << "' " << what << " (images " << images.sizes() << ", tokens "
      << tokens.sizes() << "; model " << cfg.name << " takes images [N, 3, " << size << ", " << size
      << "] and tokens [N, " << ctx << "] with ids in [0, " << cfg.text.vocab_size << "))";
    return std::runtime_error(o.str());
  };
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) != size || images.size(3) != size)
    throw bad("/images has the wrong shape");
  if (tokens.dim() != 2 || tokens.size(1) != ctx) throw bad("/tokens has the wrong shape");
  if (images.size(0) != tokens.size(0) || images.size(0) == 0)
    throw bad("/images and /tokens must hold the same number (>= 1) of samples");
  if (tokens.min().item<int64_t>() < 0 || tokens.max().item<int64_t>() >= cfg.text.vocab_size)
    throw bad("/tokens holds ids outside the vocabulary");

  CaptureTape tape;
  auto out = model->forward(images, tokens, &tape);
  auto logits = clip_logits(out.image_features, out.text_features, out.logit_scale);
  auto loss = clip_loss(logits);
  if (opt.grads) loss.backward();

  TensorFileWriter w(opt.out);
  w.attr("producer", "cliprepro " CLIPREPRO_VERSION);
  w.attr("model", cfg.name);
  w.attr("model_config", cfg.json_text);
  w.attr("mode", opt.eval ? "eval" : "train");
  w.attr("environment", env_fingerprint().dump());
  for (const auto& [name, t] : tape.entries()) w.write(capture_log_name(name), t);
  w.write("image_features", out.image_features);
  w.write("text_features", out.text_features);
  w.write("logit_scale", out.logit_scale);
  w.write("logits_per_image", logits.per_image);
  w.write("logits_per_text", logits.per_text);
  w.write("loss", loss);
  for (const auto& p : model->named_buffers()) w.write(family::kBuffers + p.key(), p.value());
  if (opt.grads) {
    for (const auto& p : model->named_parameters()) {
      if (p.value().grad().defined()) w.write(family::kGrads + p.key(), p.value().grad());
    }
  }
  w.close();
}

}  // namespace cliprepro
