#include "src/train/replay.h"

#include <sstream>
#include <stdexcept>
#include <vector>

#include "src/log_schema.h"

namespace cliprepro {

namespace {

// "<log>: data/images at step 3 is Float [8, 3, 32, 32]; the run needs Float [16, 3, 32, 32] (…)"
void replay_check_tensor(const ReplaySource& source, const char* name, int64_t step,
                         const torch::Tensor& t, torch::ScalarType dtype,
                         const std::vector<int64_t>& shape, const std::string& why,
                         torch::ScalarType also = torch::ScalarType::Undefined) {
  if (t.defined() && (t.scalar_type() == dtype || t.scalar_type() == also) &&
      t.sizes() == c10::IntArrayRef(shape))
    return;
  std::ostringstream o;
  o << source.origin() << ": " << name << " at step " << step << " is ";
  if (t.defined()) {
    o << t.scalar_type() << " " << t.sizes();
  } else {
    o << "missing";
  }
  o << "; the run needs " << dtype;
  if (also != torch::ScalarType::Undefined && also != dtype) o << " or " << also;
  o << " " << c10::IntArrayRef(shape) << " (" << why << ")";
  throw std::runtime_error(o.str());
}

}  // namespace

Batch replay_batch(const ReplaySource& source, int64_t m, const ReplayShape& shape) {
  const int64_t a = shape.accum_freq, b = shape.batch_size, rows = a * b;
  const int64_t step = m / a + 1, j = m % a;
  const ReplayStepData d = source.step_data(step);
  const std::string why_rows = "accum-freq " + std::to_string(a) + " x batch-size " +
                               std::to_string(b) + " = " + std::to_string(rows) + " rows";
  replay_check_tensor(source, tensor_name::kSampleIds, step, d.sample_ids, torch::kInt64, {rows},
                      why_rows);
  replay_check_tensor(source, tensor_name::kImages, step, d.images, torch::kFloat32,
                      {rows, 3, shape.image_size, shape.image_size},
                      why_rows + ", the model's image size " + std::to_string(shape.image_size),
                      shape.input_dtype);
  replay_check_tensor(
      source, tensor_name::kTexts, step, d.texts, torch::kInt64, {rows, shape.context_length},
      why_rows + ", the model's context length " + std::to_string(shape.context_length));
  Batch out;
  // Contiguous row slices (a copy only when accumulating): the bits exactly as recorded.
  auto rows_of = [&](const torch::Tensor& t) {
    return a == 1 ? t : t.narrow(0, j * b, b).contiguous();
  };
  out.sample_ids = rows_of(d.sample_ids);
  if (d.sample_keys.defined()) {
    replay_check_tensor(source, tensor_name::kSampleKeys, step, d.sample_keys, torch::kUInt8,
                        {rows, d.sample_keys.size(-1)}, why_rows);
    out.sample_keys = rows_of(d.sample_keys);
  }
  out.images = rows_of(d.images);
  out.tokens = rows_of(d.texts);
  out.labels = torch::full({b}, -1, torch::kInt64);
  return out;
}

void check_replay(const ReplaySource& source, int64_t first, int64_t last,
                  const ReplayShape& shape) {
  if (first > last) return;
  source.require_steps(first, last);
  replay_batch(source, (first - 1) * shape.accum_freq, shape);
}

void load_replay_state(const ReplaySource& source, Clip& model) {
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& log_name, torch::Tensor& dst) {
    const torch::Tensor src = source.initial_tensor(log_name);
    if (src.sizes() != dst.sizes() || src.scalar_type() != dst.scalar_type()) {
      std::ostringstream o;
      o << source.origin() << ": " << log_name << " at step 0 is " << src.scalar_type() << " "
        << src.sizes() << ", the model has " << dst.scalar_type() << " " << dst.sizes()
        << " (was the run recorded with another model or precision?)";
      throw std::runtime_error(o.str());
    }
    dst.copy_(src);
  };
  for (auto& kv : model->named_parameters()) load(family::kParams + kv.key(), kv.value());
  for (auto& kv : model->named_buffers()) load(family::kBuffers + kv.key(), kv.value());
}

}  // namespace cliprepro
