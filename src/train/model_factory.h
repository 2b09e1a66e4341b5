// open_clip.create_model as open_clip_train/main.py calls it, and the device it runs on.
#pragma once
#include <torch/types.h>

#include "src/model/clip.h"
#include "src/train/precision.h"
#include "src/train/train_config.h"

namespace cliprepro {

// cpu, or cuda:LOCAL_RANK (one GPU per process, as open_clip_train). Throws when there is none.
torch::Device make_device(Device device);

// [numerics] fp32-modules / low-precision-modules; throws std::invalid_argument when they are
// set outside autocast (amp, amp_bf16), where there is no low precision to lift a module out of.
PrecisionOverrides precision_overrides(const PrecisionMode& precision,
                                       const NumericsConfig& numerics);

// Seeds torch with `seed` right before creating the model (so its init is a function of the
// seed, as OpenCLIP's random_seed(seed, 0)), moves it to `device` in training mode, sets the
// numerics, and applies the precision's weight conversion (convert_weights_to_lp, or every
// floating tensor for pure_*) before DDP and the optimizer see the weights. `seeding` picks the
// construction's draw order (InitOrder).
Clip make_model(const ModelConfig& cfg, const PrecisionMode& precision,
                const NumericsConfig& numerics, torch::Device device, uint64_t seed,
                Seeding seeding);

}  // namespace cliprepro
