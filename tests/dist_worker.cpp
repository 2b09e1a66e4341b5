// One rank of a distributed loss check, launched by torchrun:
//   torchrun --no-python --nproc-per-node N dist_worker OUT_PREFIX [--local-loss]
//   [--gather-with-grad]
// Every rank builds the same tiny CLIP (seed 0), runs its own shard of a synthetic batch,
// computes OpenCLIP's ClipLoss with the given flags over a Gloo group, backpropagates, averages
// gradients as DDP does, and writes loss and gradients to OUT_PREFIX.rank<R>.h5.
#include <torch/torch.h>

#include <iostream>
#include <string>

#include "harness/log/tensor_file.h"
#include "src/data/synthetic_shapes.h"
#include "src/dist/process_group.h"
#include "src/model/clip.h"
#include "src/train/clip_loss.h"

int main(int argc, char** argv) {
  using namespace cliprepro;
  try {
    if (argc < 2)
      throw std::runtime_error("usage: dist_worker OUT_PREFIX [--local-loss] [--gather-with-grad]");
    ClipLossFlags flags;
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--local-loss")
        flags.local_loss = true;
      else if (a == "--gather-with-grad")
        flags.gather_with_grad = true;
      else
        throw std::runtime_error("unknown flag " + a);
    }
    at::set_num_threads(1);
    at::globalContext().setDeterministicAlgorithms(true, false);
    dist::ProcessGroup pg("gloo");
    torch::manual_seed(0);  // identical initial weights on every rank, as OpenCLIP seeds rank 0
    const auto cfg = load_model_config("tiny");
    Clip model(cfg);
    model->train();
    const int64_t per_rank = 4;
    SyntheticShapes data(cfg.vision.image_size, /*seed=*/1, /*split=*/0);
    WordTokenizer tok(SyntheticShapes::vocabulary(), cfg.text.vocab_size, cfg.text.context_length);
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < per_rank; ++i) ids.push_back(pg.rank() * per_rank + i);
    auto batch = data.batch(ids, tok);
    auto out = model->forward(batch.images, batch.tokens);
    auto logits =
        clip_logits_distributed(out.image_features, out.text_features, out.logit_scale, flags, pg);
    auto loss = clip_loss(logits, clip_label_offset(logits, flags, pg.rank(), pg.world_size()));
    loss.backward();
    dist::average_gradients(pg, model->parameters());
    TensorFileWriter w(std::string(argv[1]) + ".rank" + std::to_string(pg.rank()) + ".h5");
    w.write("loss", loss.detach());
    for (auto& p : model->named_parameters()) w.write("grads/" + p.key(), p.value().grad());
    w.attr("world_size", std::to_string(pg.world_size()));
    w.close();
    pg.barrier();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "dist_worker: " << e.what() << "\n";
    return 2;
  }
}
