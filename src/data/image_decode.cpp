#include "src/data/image_decode.h"

#include <png.h>
#include <torch/torch.h>

#include <atomic>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

// jpeglib.h needs size_t/FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

namespace cliprepro {
namespace {

[[noreturn]] void fail(const std::string& name, const std::string& reason) {
  throw std::runtime_error(name + ": " + reason);
}

// ---- JPEG ----------------------------------------------------------------------------------
// libjpeg's default error_exit calls exit(); ours longjmps back to decode_jpeg_c. Everything
// that lives across setjmp is plain data in JpegState (no destructors are skipped).
struct JpegState {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr err;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool hit_eof;
  uint8_t* pixels;  // caller-owned, sized after the header is read (see decode_jpeg)
  int width, height, components;
};

void jpeg_error_exit(j_common_ptr c) {
  auto* s = reinterpret_cast<JpegState*>(c->client_data);
  c->err->format_message(c, s->message);
  std::longjmp(s->jump, 1);
}

// PIL ignores libjpeg's warnings (corrupt-data warnings decode on), but a file that ends early
// is an error there ("image file is truncated"): jpeg_mem_src reports that as JWRN_JPEG_EOF.
void jpeg_emit_message(j_common_ptr c, int level) {
  auto* s = reinterpret_cast<JpegState*>(c->client_data);
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) s->hit_eof = true;
}

// Phase 1: header. Returns false with s->message set on error.
bool jpeg_start(JpegState* s, const uint8_t* data, size_t size) {
  s->cinfo.err = jpeg_std_error(&s->err);
  s->err.error_exit = jpeg_error_exit;
  s->err.emit_message = jpeg_emit_message;
  s->hit_eof = false;
  if (setjmp(s->jump)) return false;
  jpeg_create_decompress(&s->cinfo);
  s->cinfo.client_data = s;
  jpeg_mem_src(&s->cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&s->cinfo, TRUE);
  // PIL picks the mode from the component count: 1 L, 3 RGB, 4 CMYK.
  switch (s->cinfo.num_components) {
    case 1:
      s->cinfo.out_color_space = JCS_GRAYSCALE;
      break;
    case 3:
      s->cinfo.out_color_space = JCS_RGB;
      break;
    case 4:
      s->cinfo.out_color_space = JCS_CMYK;
      break;
    default:
      std::snprintf(s->message, sizeof(s->message), "unsupported JPEG with %d components",
                    s->cinfo.num_components);
      return false;
  }
  s->cinfo.dct_method = JDCT_ISLOW;
  s->cinfo.do_fancy_upsampling = TRUE;
  jpeg_calc_output_dimensions(&s->cinfo);
  s->width = int(s->cinfo.output_width);
  s->height = int(s->cinfo.output_height);
  s->components = s->cinfo.output_components;
  return true;
}

// Phase 2: scanlines into s->pixels.
bool jpeg_finish(JpegState* s) {
  if (setjmp(s->jump)) return false;
  jpeg_start_decompress(&s->cinfo);
  const size_t stride = size_t(s->width) * size_t(s->components);
  while (s->cinfo.output_scanline < s->cinfo.output_height) {
    JSAMPROW row = s->pixels + size_t(s->cinfo.output_scanline) * stride;
    jpeg_read_scanlines(&s->cinfo, &row, 1);
  }
  jpeg_finish_decompress(&s->cinfo);
  return true;
}

std::atomic<int64_t> g_max_image_pixels{kDefaultMaxImagePixels};

// "" when width x height is within the limit, else what to say (PIL raises
// DecompressionBombError alike; the limit is checked before any pixel buffer exists).
std::string pixel_limit_problem(int64_t width, int64_t height) {
  const int64_t limit = g_max_image_pixels.load();
  if (limit <= 0 || width * height <= limit) return "";
  return "image of " + std::to_string(width) + "x" + std::to_string(height) + " = " +
         std::to_string(width * height) + " pixels exceeds max-image-pixels " +
         std::to_string(limit) + " (a decompression bomb, or raise the key)";
}

PilImage decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  JpegState s{};
  const bool ok = jpeg_start(&s, data, size);
  if (!ok) {
    jpeg_destroy_decompress(&s.cinfo);
    fail(name, std::string("corrupt JPEG: ") + s.message);
  }
  if (s.width <= 0 || s.height <= 0) {
    jpeg_destroy_decompress(&s.cinfo);
    fail(name, "JPEG with empty size");
  }
  if (const auto e = pixel_limit_problem(s.width, s.height); !e.empty()) {
    jpeg_destroy_decompress(&s.cinfo);
    fail(name, e);
  }
  auto t = torch::empty({s.height, s.width, s.components}, torch::kUInt8);
  s.pixels = t.data_ptr<uint8_t>();
  const bool done = jpeg_finish(&s);
  jpeg_destroy_decompress(&s.cinfo);
  if (s.hit_eof) fail(name, "truncated JPEG (premature end of data)");
  if (!done) fail(name, std::string("corrupt JPEG: ") + s.message);
  PilImage img;
  img.pixels = t;
  if (s.components == 1) {
    img.mode = PilMode::kL;
  } else if (s.components == 3) {
    img.mode = PilMode::kRGB;
  } else {
    // PIL reads 4-component JPEGs as Adobe-inverted CMYK ("CMYK;I").
    img.mode = PilMode::kCMYK;
    img.pixels = 255 - t;
  }
  return img;
}

// ---- PNG -----------------------------------------------------------------------------------
struct PngReader {
  const uint8_t* data;
  size_t size, pos;
};

struct PngState {
  png_structp png;
  png_infop info;
  char message[256];
  PngReader reader;
  png_uint_32 width, height;
  int bit_depth, color_type, channels;
  size_t rowbytes;
  png_colorp plte;
  int plte_count;
  uint8_t* pixels;  // caller-owned, height * rowbytes
};

void png_read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (r->size - r->pos < n) png_error(png, "truncated PNG (premature end of data)");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

void png_on_error(png_structp png, png_const_charp msg) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof(s->message), "%s", msg);
  png_longjmp(png, 1);
}
void png_on_warning(png_structp, png_const_charp) {}  // PIL ignores ancillary-chunk issues too

bool png_start(PngState* s) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_set_read_fn(s->png, &s->reader, png_read_bytes);
  png_read_info(s->png, s->info);
  png_get_IHDR(s->png, s->info, &s->width, &s->height, &s->bit_depth, &s->color_type, nullptr,
               nullptr, nullptr);
  // PIL's rawmodes: 16-bit samples keep their high byte ("RGB;16B"), except 16-bit grey
  // ("I;16B", kept whole); 1/2/4-bit grey is scaled to 0..255 ("L;2", "L;4", "1");
  // palettes stay indices. No gamma, no tRNS expansion.
  if (s->bit_depth == 16 && s->color_type != PNG_COLOR_TYPE_GRAY) png_set_strip_16(s->png);
  if (s->color_type == PNG_COLOR_TYPE_GRAY && s->bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(s->png);
  }
  if (s->color_type == PNG_COLOR_TYPE_PALETTE && s->bit_depth < 8) png_set_packing(s->png);
  png_set_interlace_handling(s->png);
  png_read_update_info(s->png, s->info);
  s->channels = png_get_channels(s->png, s->info);
  s->rowbytes = png_get_rowbytes(s->png, s->info);
  s->plte = nullptr;
  s->plte_count = 0;
  if (s->color_type == PNG_COLOR_TYPE_PALETTE) {
    png_get_PLTE(s->png, s->info, &s->plte, &s->plte_count);
  }
  return true;
}

bool png_finish(PngState* s, png_bytep* rows) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_read_image(s->png, rows);
  return true;
}

PilImage decode_png(const uint8_t* data, size_t size, const std::string& name) {
  PngState s{};
  s.reader = {data, size, 0};
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, png_on_error, png_on_warning);
  if (s.png == nullptr) fail(name, "cannot create PNG reader");
  s.info = png_create_info_struct(s.png);
  if (s.info == nullptr) {
    png_destroy_read_struct(&s.png, nullptr, nullptr);
    fail(name, "cannot create PNG info");
  }
  if (!png_start(&s)) {
    png_destroy_read_struct(&s.png, &s.info, nullptr);
    fail(name, std::string("corrupt PNG: ") + s.message);
  }
  if (const auto e = pixel_limit_problem(int64_t(s.width), int64_t(s.height)); !e.empty()) {
    png_destroy_read_struct(&s.png, &s.info, nullptr);
    fail(name, e);
  }
  std::vector<uint8_t> buf(s.rowbytes * s.height);
  std::vector<png_bytep> rows(s.height);
  for (png_uint_32 y = 0; y < s.height; ++y) rows[y] = buf.data() + size_t(y) * s.rowbytes;
  const bool ok = png_finish(&s, rows.data());
  std::vector<uint8_t> palette;
  if (ok && s.plte != nullptr) {
    palette.assign(256 * 3, 0);
    for (int i = 0; i < s.plte_count && i < 256; ++i) {
      palette[size_t(i) * 3 + 0] = s.plte[i].red;
      palette[size_t(i) * 3 + 1] = s.plte[i].green;
      palette[size_t(i) * 3 + 2] = s.plte[i].blue;
    }
  }
  png_destroy_read_struct(&s.png, &s.info, nullptr);
  if (!ok) fail(name, std::string("corrupt PNG: ") + s.message);

  const int64_t h = s.height, w = s.width;
  PilImage img;
  auto u8 = [&](int64_t c) {
    return torch::from_blob(buf.data(), {h, w, c}, torch::kUInt8).clone();
  };
  switch (s.color_type) {
    case PNG_COLOR_TYPE_GRAY:
      if (s.bit_depth == 16) {
        img.mode = PilMode::kI16;
        img.pixels = torch::empty({h, w, 1}, torch::kInt32);
        auto* out = img.pixels.data_ptr<int32_t>();
        for (int64_t i = 0; i < h * w; ++i) out[i] = (int32_t(buf[2 * i]) << 8) | buf[2 * i + 1];
      } else {
        img.mode = s.bit_depth == 1 ? PilMode::kOne : PilMode::kL;
        img.pixels = u8(1);
      }
      break;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      if (s.bit_depth == 16) {
        // PIL opens 16-bit grey+alpha as RGBA ("LA;16B").
        img.mode = PilMode::kRGBA;
        auto la = u8(2);
        img.pixels =
            torch::stack({la.select(2, 0), la.select(2, 0), la.select(2, 0), la.select(2, 1)}, 2)
                .contiguous();
      } else {
        img.mode = PilMode::kLA;
        img.pixels = u8(2);
      }
      break;
    case PNG_COLOR_TYPE_PALETTE:
      img.mode = PilMode::kP;
      img.pixels = u8(1);
      img.palette = std::move(palette);
      break;
    case PNG_COLOR_TYPE_RGB:
      img.mode = PilMode::kRGB;
      img.pixels = u8(3);
      break;
    case PNG_COLOR_TYPE_RGB_ALPHA:
      img.mode = PilMode::kRGBA;
      img.pixels = u8(4);
      break;
    default:
      fail(name, "unsupported PNG colour type " + std::to_string(s.color_type));
  }
  return img;
}

constexpr uint8_t kPngMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

}  // namespace

const char* pil_mode_name(PilMode m) {
  switch (m) {
    case PilMode::kOne:
      return "1";
    case PilMode::kL:
      return "L";
    case PilMode::kLA:
      return "LA";
    case PilMode::kP:
      return "P";
    case PilMode::kRGB:
      return "RGB";
    case PilMode::kRGBA:
      return "RGBA";
    case PilMode::kI16:
      return "I;16";
    case PilMode::kCMYK:
      return "CMYK";
  }
  return "?";
}

int pil_mode_bands(PilMode m) {
  switch (m) {
    case PilMode::kLA:
      return 2;
    case PilMode::kRGB:
      return 3;
    case PilMode::kRGBA:
    case PilMode::kCMYK:
      return 4;
    default:
      return 1;
  }
}

ImageFormat detect_image_format(const uint8_t* data, size_t size) {
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat::kJpeg;
  if (size >= 8 && std::memcmp(data, kPngMagic, 8) == 0) return ImageFormat::kPng;
  return ImageFormat::kUnknown;
}

PilImage decode_image(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) fail(name, "empty image data");
  switch (detect_image_format(data, size)) {
    case ImageFormat::kJpeg:
      return decode_jpeg(data, size, name);
    case ImageFormat::kPng:
      return decode_png(data, size, name);
    default:
      fail(name, "unsupported or unrecognised image format (not JPEG or PNG)");
  }
}

void set_max_image_pixels(int64_t pixels) { g_max_image_pixels = pixels; }

std::vector<uint8_t> read_binary_file(const std::string& path) {
  // A regular file of bounded size: /dev/zero or a FIFO would be read until memory runs out.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw std::runtime_error(
        path + (std::filesystem::exists(path, ec) ? ": not a regular file" : ": cannot open file"));
  if (std::filesystem::file_size(path, ec) > kMaxImageFileBytes)
    throw std::runtime_error(path + ": larger than " + std::to_string(kMaxImageFileBytes >> 20) +
                             " MiB: not read as an image");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error(path + ": read error");
  return bytes;
}

PilImage decode_image_file(const std::string& path) {
  const auto bytes = read_binary_file(path);
  return decode_image(bytes.data(), bytes.size(), path);
}

torch::Tensor pil_to_rgb(const PilImage& img) {
  const int64_t h = img.height(), w = img.width();
  switch (img.mode) {
    case PilMode::kRGB:
      return img.pixels;
    case PilMode::kRGBA:
      return img.pixels.slice(2, 0, 3).contiguous();
    case PilMode::kL:
    case PilMode::kOne:
    case PilMode::kLA:
      return img.pixels.slice(2, 0, 1).expand({h, w, 3}).contiguous();
    case PilMode::kI16:  // PIL's I;16 -> RGB clips at 255
      return img.pixels.clamp_max(255).to(torch::kUInt8).expand({h, w, 3}).contiguous();
    case PilMode::kP: {
      auto pal =
          torch::from_blob(const_cast<uint8_t*>(img.palette.data()), {256, 3}, torch::kUInt8);
      return pal.index({img.pixels.select(2, 0).to(torch::kLong)}).contiguous();
    }
    case PilMode::kCMYK: {
      // Pillow's cmyk2rgb: nk - nk * c / 255 with its MULDIV255 rounding.
      auto out = torch::empty({h, w, 3}, torch::kUInt8);
      const auto src = img.pixels.contiguous();
      const uint8_t* in = src.data_ptr<uint8_t>();
      uint8_t* o = out.data_ptr<uint8_t>();
      for (int64_t i = 0; i < h * w; ++i, in += 4, o += 3) {
        const int nk = 255 - in[3];
        for (int c = 0; c < 3; ++c) {
          const int tmp = in[c] * nk + 128;
          const int v = nk - (((tmp >> 8) + tmp) >> 8);
          o[c] = uint8_t(v < 0 ? 0 : (v > 255 ? 255 : v));
        }
      }
      return out;
    }
  }
  throw std::runtime_error("pil_to_rgb: unknown mode");
}

torch::Tensor decode_rgb(const uint8_t* data, size_t size, const std::string& name) {
  return pil_to_rgb(decode_image(data, size, name));
}

torch::Tensor decode_rgb_file(const std::string& path) {
  return pil_to_rgb(decode_image_file(path));
}

}  // namespace cliprepro
