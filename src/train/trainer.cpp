#include "src/train/trainer.h"

#include <sys/stat.h>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "src/data/image_decode.h"
#include "src/train/bit_flip.h"
#include "src/train/clip_loss.h"
#include "src/train/cosine_schedule.h"
#include "src/train/grad_clip.h"
#include "src/train/host_memory.h"
#include "src/train/model_factory.h"
#include "src/train/train_checkpoint.h"
#include "src/train/train_data.h"

namespace cliprepro {

namespace {

std::vector<std::pair<std::string, torch::Tensor>> named(
    const torch::OrderedDict<std::string, torch::Tensor>& d) {
  std::vector<std::pair<std::string, torch::Tensor>> v;
  for (const auto& kv : d) v.emplace_back(kv.key(), kv.value());
  return v;
}

}  // namespace

Trainer::Trainer(const TrainConfig& cfg, std::shared_ptr<const ReplaySource> replay)
    : cfg_(cfg),
      model_cfg_(load_model_config(cfg.model)),
      device_(make_device(cfg.device)),
      precision_(precision_mode(cfg.precision)),
      tokenizer_(SyntheticShapes::vocabulary(), model_cfg_.text.vocab_size,
                 model_cfg_.text.context_length),
      train_set_(model_cfg_.vision.image_size, uint64_t(cfg.seed), 0),
      val_set_(model_cfg_.vision.image_size, uint64_t(cfg.seed), 1) {
  keep_freed_host_memory();
  set_max_image_pixels(cfg.data.max_image_pixels);  // before any image is decoded
  if (cfg.data.dataset_type == DatasetType::kReplay) {
    if (!replay) throw std::runtime_error("dataset-type 'replay' needs the log it replays");
    replay_ = std::move(replay);
    cfg_.data.train_num_samples = replay_->train_num_samples();  // the recorded run's epoch
  } else if (cfg.data.dataset_type != DatasetType::kSynthetic) {
    real_ = make_real_data(
        cfg.data, model_cfg_, uint64_t(cfg.seed),
        clip_tokenizer("dataset-type '" + std::string(enum_name(cfg.data.dataset_type)) + "'"));
    // OpenCLIP: a CSV epoch is the whole list; WebDataset needs train-num-samples.
    if (cfg.data.dataset_type == DatasetType::kCsv) cfg_.data.train_num_samples = real_->size();
  }
  check_schedule();
  if (cfg.dist.world_size > 1) join_process_group();
  model_ =
      make_model(model_cfg_, precision_, cfg.numerics, device_, uint64_t(cfg.seed), cfg.seeding);
  // A replay starts from the recorded weights, not from cliprepro's initialisation.
  if (replay_) load_replay_state(*replay_, model_);
  // DDP broadcasts rank 0's parameters and buffers at construction; so do we.
  if (pg_) dist::broadcast_module(*pg_, *model_);
  // open_clip_train/main.py: random_seed(seed, 0) before the model, random_seed(seed, rank)
  // after it, so anything random from here on differs between ranks.
  torch::manual_seed(uint64_t(cfg.seed + rank()));
  AdamWOptions o;
  o.lr = cfg.optim.lr;
  o.beta1 = cfg.optim.beta1;
  o.beta2 = cfg.optim.beta2;
  o.eps = cfg.optim.eps;
  o.weight_decay = cfg.optim.wd;
  optimizer_ = std::make_unique<AdamW>(named(model_->named_parameters()), o);
  if (precision_.grad_scaler) scaler_ = std::make_unique<GradScaler>(device_);
  if (cfg.eval.zeroshot_frequency == 0) {
    // zero-shot off: no eval set to build (the synthetic one draws no numbers of the run's)
  } else if (cfg.eval.imagenet_val.empty()) {
    zero_shot_ = synthetic_zero_shot_set(cfg.data.val_num_samples, val_set_, tokenizer_);
  } else if (rank() == 0) {  // the only rank that evaluates it
    zero_shot_ = imagenet_val_set(cfg, model_cfg_, *clip_tokenizer("imagenet-val"));
  }
  if (!cfg.checkpoint.resume.empty()) resume_from(cfg.checkpoint.resume);
  if (replay_) {  // every step this run takes is recorded, checked before any training
    const int64_t stop = cfg_.checkpoint.stop_after_step;
    check_replay(*replay_, start_step_ + 1,
                 stop > 0 ? std::min(total_steps(), stop) : total_steps(), replay_shape());
  }
  flip_ = resolve_bit_flip(cfg.flip, live_state(), total_steps());
  if (real_ && cfg.seeding == Seeding::kOpenClip) {
    openclip_loader_ = make_openclip_loader(cfg_, *real_, rank(), world_size(), device_.is_cuda(),
                                            start_step_, total_steps() * cfg.optim.accum_freq);
  } else if (real_ && cfg.data.workers > 0) {
    prefetch_ = std::make_unique<BatchPrefetcher>(
        *real_, [this](int64_t m) { return batch_plan(m); }, total_steps() * cfg.optim.accum_freq,
        int(cfg.data.workers), kBatchesAhead, device_.is_cuda());
  }
}

void Trainer::check_schedule() const {
  if (real_ && cfg_.data.train_num_samples > real_->size()) {
    throw std::runtime_error("train-num-samples " + std::to_string(cfg_.data.train_num_samples) +
                             " exceeds the " + std::to_string(real_->size()) + " samples of " +
                             cfg_.data.train_data);
  }
  // Depends on the world size, known only at launch.
  if (cfg_.batch_size < 1 || cfg_.batches_per_epoch() < 1) {
    throw std::runtime_error("train-num-samples must hold at least one batch of batch-size");
  }
  if (cfg_.batches_per_epoch() % cfg_.optim.accum_freq != 0) {
    // OpenCLIP would forward the epoch's leftover micro-batches (moving BatchNorm statistics)
    // and drop them; cliprepro asks for epochs that divide evenly instead.
    throw std::runtime_error("accum-freq " + std::to_string(cfg_.optim.accum_freq) +
                             " must divide the " + std::to_string(cfg_.batches_per_epoch()) +
                             " batches per epoch");
  }
}

void Trainer::join_process_group() {
  const DistBackend backend =
      cfg_.dist.dist_backend.value_or(device_.is_cuda() ? DistBackend::kNccl : DistBackend::kGloo);
  if (backend == DistBackend::kNccl && !device_.is_cuda()) {
    throw std::runtime_error(
        "dist-backend 'nccl' needs device = \"cuda\" (NCCL reduces GPU tensors); use gloo on CPU");
  }
  pg_ = std::make_unique<dist::ProcessGroup>(std::string(enum_name(backend)));
  if (pg_->world_size() != cfg_.dist.world_size) {
    throw std::runtime_error("world size mismatch: config " + std::to_string(cfg_.dist.world_size) +
                             ", process group " + std::to_string(pg_->world_size()));
  }
}

void Trainer::resume_from(const std::string& checkpoint) {
  start_step_ = load_train_checkpoint(
      checkpoint, {model_.ptr().get(), optimizer_.get(), scaler_.get()}, trajectory());
  if (start_step_ >= total_steps()) {
    throw std::runtime_error(checkpoint + ": written after step " + std::to_string(start_step_) +
                             ", but the run has only " + std::to_string(total_steps()) + " steps");
  }
}

LiveState Trainer::live_state() const {
  LiveState out;
  for (const auto& kv : model_->named_parameters())
    out.emplace_back(family::kParams + kv.key(), kv.value());
  for (const auto& kv : model_->named_buffers())
    out.emplace_back(family::kBuffers + kv.key(), kv.value());
  for (const auto& g : optimizer_->groups()) {
    for (const auto& p : g.params) {
      out.emplace_back(family::kExpAvg + p.name, p.exp_avg);
      out.emplace_back(family::kExpAvgSq + p.name, p.exp_avg_sq);
    }
  }
  return out;
}

std::shared_ptr<const ClipTokenizer> Trainer::clip_tokenizer(const std::string& user) {
  if (model_cfg_.text.vocab_size < ClipTokenizer::kVocabSize) {
    throw std::runtime_error(user + " tokenizes text with CLIP's BPE (49408 tokens) but model '" +
                             cfg_.model + "' has " + std::to_string(model_cfg_.text.vocab_size) +
                             " (use e.g. tiny-bpe or RN50)");
  }
  // One instance: finding the vocabulary asks the project Python, which takes a moment.
  if (!clip_tokenizer_)
    clip_tokenizer_ = std::make_shared<const ClipTokenizer>(ClipTokenizer::default_bpe_path());
  return clip_tokenizer_;
}

std::string Trainer::trajectory() const { return trajectory_json(cfg_).dump(); }

void Trainer::save_checkpoint(const std::string& path, int64_t step) const {
  save_train_checkpoint(path, {model_.ptr().get(), optimizer_.get(), scaler_.get()}, step,
                        trajectory());
}

void Trainer::maybe_save_checkpoint(int64_t step) const {
  const auto& c = cfg_.checkpoint;
  if (c.dir.empty() || rank() != 0) return;  // OpenCLIP: the master saves
  const int64_t bpe = cfg_.steps_per_epoch();
  const bool by_steps = c.save_every_steps > 0 && step % c.save_every_steps == 0;
  const bool by_epochs =
      c.save_frequency > 0 && step % bpe == 0 && (step / bpe) % c.save_frequency == 0;
  if (!by_steps && !by_epochs) return;
  ::mkdir(c.dir.c_str(), 0755);  // POSIX: libtorch breaks std::filesystem here
  save_checkpoint(c.dir + "/step_" + std::to_string(step) + ".safetensors", step);
}

BatchPrefetcher::Plan Trainer::batch_plan(int64_t b) const {
  const int64_t bpe = cfg_.batches_per_epoch();
  const int64_t epoch = b / bpe, i = b % bpe;
  const auto perm =
      seeded_permutation(dataset_size(), uint64_t(cfg_.seed) * 1000003ull + uint64_t(epoch));
  // Global batch i = permutation positions [i*B*W, (i+1)*B*W); rank r takes its r-th slice of B.
  const int64_t begin = (i * world_size() + rank()) * cfg_.batch_size;
  return {std::vector<int64_t>(perm.begin() + begin, perm.begin() + begin + cfg_.batch_size),
          epoch};
}

Batch Trainer::batch_for(int64_t b) {
  if (replay_) return replay_batch(*replay_, b, replay_shape());
  if (openclip_loader_) return openclip_loader_->get(b);
  if (prefetch_) return prefetch_->get(b);
  const auto plan = batch_plan(b);
  return real_ ? real_->batch(plan.ids, plan.epoch) : train_set_.batch(plan.ids, tokenizer_);
}

torch::Tensor Trainer::input_images(const torch::Tensor& images) const {
  // open_clip_train: images.to(device=device, dtype=get_input_dtype(precision)).
  // From pinned memory (the loader's workers on CUDA) the copy overlaps the step: non-blocking.
  return images.to(device_, precision_.weight_dtype.value_or(images.scalar_type()),
                   /*non_blocking=*/device_.is_cuda() && images.is_pinned());
}

ZeroShotResult Trainer::evaluate() {
  AutocastGuard autocast(device_.type(), precision_.autocast_dtype);  // as OpenCLIP's zero_shot
  return zero_shot_eval(model_, zero_shot_.class_tokens, input_images(zero_shot_.images),
                        zero_shot_.labels, zero_shot_.options);
}

ClipOutput Trainer::ddp_forward(const Batch& batch, CaptureTape* tape) {
  if (pg_ && ddp_sync_buffers_) dist::broadcast_buffers(*pg_, *model_);
  auto out = model_->forward(input_images(batch.images), batch.tokens.to(device_), tape);
  ddp_sync_buffers_ = torch::GradMode::is_enabled();
  return out;
}

torch::Tensor Trainer::loss_of(const torch::Tensor& image_features,
                               const torch::Tensor& text_features, const torch::Tensor& logit_scale,
                               CaptureTape* tape) const {
  const ClipLossFlags flags{cfg_.dist.local_loss, cfg_.dist.gather_with_grad};
  const auto site = model_->sites.of(kLossSite);  // [numerics] fp32-modules = ["loss"]
  SiteScope scope(site, image_features.device().type());
  const auto image = site_input(site, image_features), text = site_input(site, text_features);
  auto logits = pg_ ? clip_logits_distributed(image, text, logit_scale, flags, *pg_)
                    : clip_logits(image, text, logit_scale);
  capture(tape, "logits_per_image", logits.per_image);
  capture(tape, "logits_per_text", logits.per_text);
  return clip_loss(logits, clip_label_offset(logits, flags, rank(), world_size()));
}

void Trainer::optimizer_step() {
  if (scaler_) {
    // Clipping sees true gradients: unscale first (and only once), then step unless inf/NaN.
    if (cfg_.optim.grad_clip_norm > 0) {
      scaler_->unscale_(*optimizer_);
      clip_grad_norm(model_->parameters(), cfg_.optim.grad_clip_norm);
    }
    scaler_->step(*optimizer_);
    scaler_->update();
  } else {
    if (cfg_.optim.grad_clip_norm > 0) {
      clip_grad_norm(model_->parameters(), cfg_.optim.grad_clip_norm);
    }
    optimizer_->step();
  }
  torch::NoGradGuard no_grad;
  model_->logit_scale.clamp_(0, std::log(100.0));
}

double Trainer::train_step(int64_t b, StepRecord* rec) {
  const double lr = cosine_lr(cfg_.optim.lr, cfg_.optim.warmup, total_steps(), b);
  optimizer_->set_lr(lr);
  optimizer_->zero_grad();
  std::vector<Batch> micro;
  for (int64_t j = 0; j < cfg_.optim.accum_freq; ++j)
    micro.push_back(batch_for(b * cfg_.optim.accum_freq + j));
  CaptureTape tape;
  enter_phase("forward");
  const StepResult r = forward_backward(micro, rec ? &tape : nullptr);
  enter_phase("optimizer");
  optimizer_step();
  enter_phase("");
  if (rec != nullptr) record_step(*rec, micro, tape, r, lr);
  return r.loss.item<double>();
}

Trainer::StepResult Trainer::forward_backward(const std::vector<Batch>& micro, CaptureTape* tape) {
  StepResult r;
  // Backward runs outside autocast, as in open_clip_train's train_one_epoch; DDP's all-reduce
  // happens in every backward, on the accumulated gradients.
  auto backward = [&](const torch::Tensor& l) {
    enter_phase("backward");
    (scaler_ ? scaler_->scale(l) : l).backward();
    if (pg_) dist::average_gradients(*pg_, model_->parameters());
  };
  if (micro.size() == 1) {
    {
      AutocastGuard autocast(device_.type(), precision_.autocast_dtype);
      r.out = ddp_forward(micro[0], tape);
      r.loss = loss_of(r.out.image_features, r.out.text_features, r.out.logit_scale, tape);
    }
    backward(r.loss);
    return r;
  }
  // OpenCLIP's accum-freq: features of every micro-batch first (no grad), then each
  // micro-batch again with grad, its features spliced among the cached ones as negatives.
  std::vector<torch::Tensor> image_cache, text_cache;
  {
    torch::NoGradGuard no_grad;
    AutocastGuard autocast(device_.type(), precision_.autocast_dtype);
    for (const auto& mb : micro) {
      auto o = ddp_forward(mb, nullptr);
      image_cache.push_back(o.image_features);
      text_cache.push_back(o.text_features);
    }
  }
  optimizer_->zero_grad();
  for (size_t j = 0; j < micro.size(); ++j) {
    CaptureTape* t = j + 1 == micro.size() ? tape : nullptr;  // the log keeps the last one's
    enter_phase("forward");
    {
      AutocastGuard autocast(device_.type(), precision_.autocast_dtype);
      r.out = ddp_forward(micro[j], t);
      auto spliced = [&](const std::vector<torch::Tensor>& cache, const torch::Tensor& live) {
        std::vector<torch::Tensor> parts(cache.begin(), cache.end());
        parts[j] = live;
        return torch::cat(parts);
      };
      r.loss = loss_of(spliced(image_cache, r.out.image_features),
                       spliced(text_cache, r.out.text_features), r.out.logit_scale, t);
    }
    backward(r.loss);
  }
  return r;
}

TrainSummary Trainer::run(const StepObserver& observe, const ProgressFn& progress) {
  TrainSummary s;
  const int64_t total = total_steps();
  const int64_t bpe = cfg_.steps_per_epoch();
  StepRecord init;
  init.step = start_step_;  // a resumed log starts with the state it resumed from
  record_state(init, start_step_ > 0);
  // Also when resuming: the eval of the state resumed from, so eval/* exist from the first step.
  if (zero_shot_enabled()) {
    s.zero_shot_before = evaluate();
    record_eval(init, s.zero_shot_before);
  }
  if (observe) observe(init);
  const int64_t stop = cfg_.checkpoint.stop_after_step;
  const int64_t last = stop > 0 ? std::min(total, stop) : total;
  for (int64_t step = start_step_ + 1; step <= last; ++step) {
    StepRecord rec;
    rec.step = step;
    const double loss = train_step(step - 1, observe ? &rec : nullptr);
    if (step == flip_.step) apply_bit_flip(flip_, live_state());
    if (step == start_step_ + 1) s.first_loss = loss;
    s.last_loss = loss;
    const bool epoch_end = step % bpe == 0;
    if (zero_shot_enabled() &&
        (step == total || (epoch_end && (step / bpe) % cfg_.eval.zeroshot_frequency == 0))) {
      s.zero_shot_after = evaluate();
      record_eval(rec, s.zero_shot_after);
    }
    if (observe) observe(rec);
    maybe_save_checkpoint(step);
    if (progress) progress(step, total, loss, optimizer_->groups()[0].lr);
  }
  s.steps = last;
  return s;
}

}  // namespace cliprepro
