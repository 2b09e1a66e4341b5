// Pillow 13's Image.resize(size, BICUBIC, box) and Image.crop, bit for bit (libImaging/Resample.c
// and Geometry.c semantics): separable bicubic (a = -0.5) whose support widens with the
// downscale factor, horizontal pass then vertical (vertical first when the height shrinks by more
// than twice as many pixels as the width, as Pillow 13 does), 22-bit fixed-point coefficients
// and a clip to uint8 after each pass; the mode rules of Image.resize (P/1 nearest, LA/RGBA
// premultiplied).
#pragma once
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <optional>

#include "src/data/image_decode.h"

namespace cliprepro {

// Source region (left, top, right, bottom) in pixels; Pillow carries it as C floats.
using ResizeBox = std::array<float, 4>;

// Image.resize((out_w, out_h), Image.BICUBIC, box) for every PilMode.
PilImage pil_resize_bicubic(const PilImage& img, int64_t out_w, int64_t out_h,
                            std::optional<ResizeBox> box = std::nullopt);

// Image.crop((left, top, right, bottom)): integer box; parts outside the image are zero.
PilImage pil_crop(const PilImage& img, int64_t left, int64_t top, int64_t right, int64_t bottom);

// The resampling core on (H, W, C) uint8 (any C; channels are independent), no mode rules.
torch::Tensor resample_bicubic_u8(const torch::Tensor& hwc, int64_t out_w, int64_t out_h,
                                  const ResizeBox& box);

}  // namespace cliprepro
