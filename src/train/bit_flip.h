// [debug] flip: compare's self-test. One bit of one live state tensor is flipped in place after a
// step's update, so a log differs from that step on and compare must name exactly it.
#pragma once
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "src/train/train_config.h"

namespace cliprepro {

// Live training state by log name: params/*, buffers/*, optimizer/exp_avg{,_sq}/*.
using LiveState = std::vector<std::pair<std::string, torch::Tensor>>;

// Every unset field drawn from flip.seed (step 0: off, returned as is). Throws naming the bad
// choice (step after the last, unknown tensor, element or bit out of range).
BitFlip resolve_bit_flip(BitFlip flip, const LiveState& state, int64_t total_steps);

// Flips the bit (and says so on stderr).
void apply_bit_flip(const BitFlip& flip, const LiveState& state);

}  // namespace cliprepro
