#include "src/data/pil_resample.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace cliprepro {
namespace {

// Pillow: 32 bits less 8 for the result and 2 for the filter's overshoot.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kBicubicSupport = 2.0;

// Pillow's bicubic_filter with a = -0.5, written in the same operation order.
double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // per output pixel: first input index, count
  std::vector<double> kk;   // out_size * ksize, normalised to sum 1
};

// precompute_coeffs from Resample.c; in0/in1 are floats there too.
Coeffs precompute_coeffs(int in_size, float in0, float in1, int out_size) {
  double scale = double(in1 - in0) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kBicubicSupport * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.bounds.resize(size_t(out_size) * 2);
  c.kk.assign(size_t(out_size) * size_t(c.ksize), 0.0);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    const double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double* k = &c.kk[size_t(xx) * size_t(c.ksize)];
    for (int x = 0; x < xmax; ++x) {
      const double w = bicubic_filter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
    }
    c.bounds[size_t(xx) * 2] = xmin;
    c.bounds[size_t(xx) * 2 + 1] = xmax;
  }
  return c;
}

std::vector<int32_t> fixed_point(const std::vector<double>& kk) {
  std::vector<int32_t> out(kk.size());
  for (size_t i = 0; i < kk.size(); ++i) {
    out[i] = kk[i] < 0 ? int(-0.5 + kk[i] * (1 << kPrecisionBits))
                       : int(0.5 + kk[i] * (1 << kPrecisionBits));
  }
  return out;
}

inline uint8_t clip8(int v) {
  const int s = v >> kPrecisionBits;  // arithmetic shift, as Pillow's lookup-table index
  return uint8_t(s < 0 ? 0 : (s > 255 ? 255 : s));
}

// The horizontal uint8 pass with the channel count known at compile time, so each output
// pixel's accumulators stay in registers. Input rows [offset, offset + out_h) (Pillow's box
// trimming).
template <int C>
void horizontal_u8(const uint8_t* in, int64_t in_w, uint8_t* out, int64_t out_h, int64_t out_w,
                   int offset, const Coeffs& c, const std::vector<int32_t>& kk) {
  for (int64_t yy = 0; yy < out_h; ++yy) {
    const uint8_t* row = in + (yy + offset) * in_w * C;
    uint8_t* q = out + yy * out_w * C;
    for (int64_t xx = 0; xx < out_w; ++xx, q += C) {
      const int lo = c.bounds[size_t(xx) * 2], n = c.bounds[size_t(xx) * 2 + 1];
      const int32_t* k = &kk[size_t(xx) * size_t(c.ksize)];
      int acc[C];
      for (int ch = 0; ch < C; ++ch) acc[ch] = 1 << (kPrecisionBits - 1);
      const uint8_t* p = row + int64_t(lo) * C;
      for (int i = 0; i < n; ++i, p += C)
        for (int ch = 0; ch < C; ++ch) acc[ch] += int(p[ch]) * k[i];
      for (int ch = 0; ch < C; ++ch) q[ch] = clip8(acc[ch]);
    }
  }
}

// The vertical uint8 pass: an output row is a weighted sum of whole input rows (columns
// [offset, offset + out_w)), accumulated along the row so the loop vectorises. The sums are
// exact integers whose every partial sum is bounded as Pillow's are, so the order of the terms
// does not change the result.
void vertical_u8(const uint8_t* in, int64_t in_w, int64_t C, uint8_t* out, int64_t out_h,
                 int64_t out_w, int offset, const Coeffs& c, const std::vector<int32_t>& kk) {
  const int64_t len = out_w * C;
  std::vector<int32_t> acc(static_cast<size_t>(len));
  for (int64_t yy = 0; yy < out_h; ++yy) {
    const int lo = c.bounds[size_t(yy) * 2], n = c.bounds[size_t(yy) * 2 + 1];
    const int32_t* k = &kk[size_t(yy) * size_t(c.ksize)];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    int32_t* a = acc.data();
    for (int i = 0; i < n; ++i) {
      const uint8_t* p = in + ((lo + i) * in_w + offset) * C;
      const int32_t w = k[i];
      for (int64_t j = 0; j < len; ++j) a[j] += int32_t(p[j]) * w;
    }
    uint8_t* q = out + yy * len;
    for (int64_t j = 0; j < len; ++j) q[j] = clip8(a[j]);
  }
}

// One pass over uint8 (rows, cols, C): `horizontal` resamples along cols, else along rows.
// `offset` shifts the axis not resampled: input rows [offset, offset + out_h) in the horizontal
// pass, input columns [offset, offset + out_w) in the vertical one (Pillow's box trimming).
void pass_u8(const uint8_t* in, int64_t in_w, int64_t channels, uint8_t* out, int64_t out_h,
             int64_t out_w, int offset, const Coeffs& c, bool horizontal) {
  const auto kk = fixed_point(c.kk);
  if (!horizontal) return vertical_u8(in, in_w, channels, out, out_h, out_w, offset, c, kk);
  switch (channels) {
    case 1:
      return horizontal_u8<1>(in, in_w, out, out_h, out_w, offset, c, kk);
    case 2:
      return horizontal_u8<2>(in, in_w, out, out_h, out_w, offset, c, kk);
    case 3:
      return horizontal_u8<3>(in, in_w, out, out_h, out_w, offset, c, kk);
    case 4:
      return horizontal_u8<4>(in, in_w, out, out_h, out_w, offset, c, kk);
    default:
      throw std::invalid_argument("resample: more than 4 channels");
  }
}

// Pillow's 16bpc pass (I;16): double accumulation, ROUND_UP, then each byte clipped on its own.
void pass_i16(const int32_t* in, int64_t in_w, int32_t* out, int64_t out_h, int64_t out_w,
              int offset, const Coeffs& c, bool horizontal) {
  auto clip = [](int v) { return v <= 0 ? 0 : (v < 256 ? v : 255); };
  for (int64_t yy = 0; yy < out_h; ++yy) {
    for (int64_t xx = 0; xx < out_w; ++xx) {
      const int64_t o = horizontal ? xx : yy;
      const int lo = c.bounds[size_t(o) * 2], n = c.bounds[size_t(o) * 2 + 1];
      const double* k = &c.kk[size_t(o) * size_t(c.ksize)];
      double ss = 0.0;
      for (int i = 0; i < n; ++i) {
        const int32_t v =
            horizontal ? in[(yy + offset) * in_w + lo + i] : in[(lo + i) * in_w + xx + offset];
        ss += v * k[i];
      }
      const int s = int(ss >= 0.0 ? ss + 0.5F : ss - 0.5F);
      out[yy * out_w + xx] = clip(s % 256) + (clip(s >> 8) << 8);
    }
  }
}

// ImagingResampleInner for uint8 or I;16 (int32) (H, W, C).
torch::Tensor resample_inner(const torch::Tensor& src_in, int64_t out_w, int64_t out_h,
                             const ResizeBox& box) {
  const auto src = src_in.contiguous();
  const bool i16 = src.scalar_type() == torch::kInt32;
  const int64_t in_h = src.size(0), in_w = src.size(1), C = src.size(2);
  if (C > 4) throw std::invalid_argument("resample: more than 4 channels");
  const bool need_h = out_w != in_w || box[0] != 0 || box[2] != float(out_w);
  const bool need_v = out_h != in_h || box[1] != 0 || box[3] != float(out_h);
  // Pillow 13 runs the vertical pass first when the height is scaled down much more than the
  // width (python-pillow/Pillow#9549, a speed-up for tall images). Each pass clips to uint8, so
  // the order changes the result. The condition below (height shrinks, by more than twice as
  // many pixels as the width; image sizes, not the box) is the one that matches Pillow 13.0.0 on
  // every case measured, see docs/data.md; the PR's C source was not available to read.
  const bool vertical_first = need_h && need_v && out_h < in_h && in_h - out_h > 2 * (in_w - out_w);
  auto pass = [&](const torch::Tensor& in, int64_t rows, int64_t cols, int offset, const Coeffs& c,
                  bool horizontal) {
    auto out = torch::empty({rows, cols, C}, src.options());
    if (i16) {
      pass_i16(in.data_ptr<int32_t>(), in.size(1), out.data_ptr<int32_t>(), rows, cols, offset, c,
               horizontal);
    } else {
      pass_u8(in.data_ptr<uint8_t>(), in.size(1), C, out.data_ptr<uint8_t>(), rows, cols, offset, c,
              horizontal);
    }
    return out;
  };
  Coeffs vert = precompute_coeffs(int(in_h), box[1], box[3], int(out_h));
  if (vertical_first) {
    // Mirror of the horizontal-first path: only the input columns the horizontal pass reads.
    Coeffs horiz = precompute_coeffs(int(in_w), box[0], box[2], int(out_w));
    const int xbox_first = horiz.bounds[0];
    const int xbox_last = horiz.bounds[size_t(out_w) * 2 - 2] + horiz.bounds[size_t(out_w) * 2 - 1];
    for (int64_t i = 0; i < out_w; ++i) horiz.bounds[size_t(i) * 2] -= xbox_first;
    const auto tmp = pass(src, out_h, xbox_last - xbox_first, xbox_first, vert, false);
    return pass(tmp, out_h, out_w, 0, horiz, true);
  }
  const int ybox_first = vert.bounds[0];
  const int ybox_last = vert.bounds[size_t(out_h) * 2 - 2] + vert.bounds[size_t(out_h) * 2 - 1];
  torch::Tensor cur = src;
  if (need_h) {
    Coeffs horiz = precompute_coeffs(int(in_w), box[0], box[2], int(out_w));
    for (int64_t i = 0; i < out_h; ++i) vert.bounds[size_t(i) * 2] -= ybox_first;
    cur = pass(src, ybox_last - ybox_first, out_w, ybox_first, horiz, true);
  }
  if (need_v) cur = pass(cur, out_h, cur.size(1), 0, vert, false);
  return cur.is_same(src) ? src.clone() : cur;
}

// Geometry.c's ImagingScaleAffine: nearest neighbour for P and 1 images.
torch::Tensor resize_nearest(const torch::Tensor& src_in, int64_t out_w, int64_t out_h,
                             const ResizeBox& box) {
  const auto src = src_in.contiguous();
  const int64_t in_h = src.size(0), in_w = src.size(1), C = src.size(2);
  const double a0 = double(box[2] - box[0]) / out_w, a4 = double(box[3] - box[1]) / out_h;
  auto coord = [](double v) { return v < 0.0 ? -1 : int(v); };
  std::vector<int> xin(size_t(out_w), -1);
  double xo = box[0] + a0 * 0.5;
  for (int64_t x = 0; x < out_w; ++x, xo += a0) {
    const int xi = coord(xo);
    if (xi >= 0 && xi < in_w) xin[size_t(x)] = xi;
  }
  auto out = torch::zeros({out_h, out_w, C}, src.options());
  const uint8_t* in = src.data_ptr<uint8_t>();
  uint8_t* o = out.data_ptr<uint8_t>();
  double yo = box[1] + a4 * 0.5;
  for (int64_t y = 0; y < out_h; ++y, yo += a4) {
    const int yi = coord(yo);
    if (yi < 0 || yi >= in_h) continue;
    for (int64_t x = 0; x < out_w; ++x) {
      if (xin[size_t(x)] < 0) continue;
      for (int64_t ch = 0; ch < C; ++ch)
        o[(y * out_w + x) * C + ch] = in[(yi * in_w + xin[size_t(x)]) * C + ch];
    }
  }
  return out;
}

// RGBA -> RGBa and LA -> La (Convert.c): colour * alpha / 255 with MULDIV255 rounding.
torch::Tensor premultiply(const torch::Tensor& src_in) {
  auto t = src_in.contiguous().clone();
  const int64_t C = t.size(2), n = t.size(0) * t.size(1);
  uint8_t* p = t.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i, p += C) {
    const unsigned alpha = p[C - 1];
    for (int64_t ch = 0; ch < C - 1; ++ch) {
      const unsigned tmp = p[ch] * alpha + 128;
      p[ch] = uint8_t(((tmp >> 8) + tmp) >> 8);
    }
  }
  return t;
}

// RGBa -> RGBA and La -> LA: 255 * colour / alpha, clipped; alpha 0 and 255 pass through.
torch::Tensor unpremultiply(torch::Tensor t) {
  const int64_t C = t.size(2), n = t.size(0) * t.size(1);
  uint8_t* p = t.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i, p += C) {
    const unsigned alpha = p[C - 1];
    if (alpha == 255 || alpha == 0) continue;
    for (int64_t ch = 0; ch < C - 1; ++ch) {
      const unsigned v = (255 * unsigned(p[ch])) / alpha;
      p[ch] = uint8_t(v > 255 ? 255 : v);
    }
  }
  return t;
}

}  // namespace

torch::Tensor resample_bicubic_u8(const torch::Tensor& hwc, int64_t out_w, int64_t out_h,
                                  const ResizeBox& box) {
  if (hwc.scalar_type() != torch::kUInt8 || hwc.dim() != 3) {
    throw std::invalid_argument("resample_bicubic_u8: expects (H, W, C) uint8");
  }
  return resample_inner(hwc, out_w, out_h, box);
}

PilImage pil_resize_bicubic(const PilImage& img, int64_t out_w, int64_t out_h,
                            std::optional<ResizeBox> box_opt) {
  if (out_w < 1 || out_h < 1) throw std::invalid_argument("resize: height and width must be > 0");
  const float w = float(img.width()), h = float(img.height());
  const ResizeBox full{0.f, 0.f, w, h};
  const ResizeBox box = box_opt.value_or(full);
  if (box[0] < 0 || box[1] < 0 || box[2] > w || box[3] > h || box[2] < box[0] || box[3] < box[1]) {
    throw std::invalid_argument("resize: box outside the image or empty");
  }
  PilImage out;
  out.mode = img.mode;
  out.palette = img.palette;
  // Image.resize returns a copy when nothing changes; _resize crops when the box is an integer
  // region of exactly the requested size.
  if (out_w == img.width() && out_h == img.height() && box == full) {
    out.pixels = img.pixels.clone();
    return out;
  }
  if (box[0] == std::trunc(box[0]) && box[1] == std::trunc(box[1]) &&
      box[2] - box[0] == float(out_w) && box[3] - box[1] == float(out_h)) {
    return pil_crop(img, int64_t(box[0]), int64_t(box[1]), int64_t(box[2]), int64_t(box[3]));
  }
  switch (img.mode) {
    case PilMode::kP:
    case PilMode::kOne:
      out.pixels = resize_nearest(img.pixels, out_w, out_h, box);
      break;
    case PilMode::kLA:
    case PilMode::kRGBA:
      out.pixels = unpremultiply(resample_inner(premultiply(img.pixels), out_w, out_h, box));
      break;
    default:
      out.pixels = resample_inner(img.pixels, out_w, out_h, box);
  }
  return out;
}

PilImage pil_crop(const PilImage& img, int64_t left, int64_t top, int64_t right, int64_t bottom) {
  if (right < left || bottom < top) throw std::invalid_argument("crop: empty or inverted box");
  PilImage out;
  out.mode = img.mode;
  out.palette = img.palette;
  const int64_t H = img.height(), W = img.width();
  if (left >= 0 && top >= 0 && right <= W && bottom <= H) {
    out.pixels = img.pixels.slice(0, top, bottom).slice(1, left, right).contiguous();
    return out;
  }
  out.pixels = torch::zeros({bottom - top, right - left, img.pixels.size(2)}, img.pixels.options());
  const int64_t x0 = std::max<int64_t>(left, 0), x1 = std::min(right, W);
  const int64_t y0 = std::max<int64_t>(top, 0), y1 = std::min(bottom, H);
  if (x1 > x0 && y1 > y0) {
    out.pixels.slice(0, y0 - top, y1 - top)
        .slice(1, x0 - left, x1 - left)
        .copy_(img.pixels.slice(0, y0, y1).slice(1, x0, x1));
  }
  return out;
}

}  // namespace cliprepro
