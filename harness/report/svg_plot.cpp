#include "harness/report/svg_plot.h"

#include "harness/report/markup.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace cliprepro {
namespace {

constexpr std::array<const char*, 8> kPalette{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                              "#9467bd", "#8c564b", "#e377c2", "#17becf"};

// Round-number ticks covering [lo, hi] (about n of them).
std::vector<double> nice_ticks(double lo, double hi, int n) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / n;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(v);
  return t;
}

// Viridis-like ramp, u in [0, 1].
std::string ramp(double u) {
  static constexpr double kStops[5][3] = {
      {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  u = std::clamp(u, 0.0, 1.0) * 4;
  const int i = std::min(3, int(u));
  const double f = u - i;
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x",
                int(kStops[i][0] + f * (kStops[i + 1][0] - kStops[i][0])),
                int(kStops[i][1] + f * (kStops[i + 1][1] - kStops[i][1])),
                int(kStops[i][2] + f * (kStops[i + 1][2] - kStops[i][2])));
  return buf;
}

}  // namespace

std::string format_double(const char* printf_format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_format, v);
  return buf;
}

std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return format_double("%.6g", v);
}

std::string render_line_chart(const LineChart& c) {
  constexpr double kW = 760, kH = 320, kL = 72, kR = 190, kT = 30, kB = 46;
  const double pw = kW - kL - kR, ph = kH - kT - kB;
  auto usable = [&](double y) { return std::isfinite(y) && (!c.log_y || y > 0); };
  auto ty = [&](double y) { return c.log_y ? std::log10(y) : y; };
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : c.series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!usable(s.y[i]) || !std::isfinite(s.x[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, ty(s.y[i])), y1 = std::max(y1, ty(s.y[i]));
    }
  }
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n<text x=\"" << kL << "\" y=\"18\" "
    << "font-size=\"13\" font-weight=\"bold\">" << markup_escape(c.title) << "</text>\n";
  if (!std::isfinite(x0)) {
    o << "<text x=\"" << kL << "\" y=\"" << kT + ph / 2 << "\">no data</text>\n</svg>\n";
    return o.str();
  }
  if (c.log_y) y0 = std::floor(y0), y1 = std::max(std::ceil(y1), y0 + 1);
  if (x1 == x0) x0 -= 0.5, x1 += 0.5;
  if (y1 == y0) y0 -= std::max(0.5, std::abs(y0) * 0.1), y1 += std::max(0.5, std::abs(y1) * 0.1);
  auto px = [&](double x) { return kL + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return kT + ph - (y - y0) / (y1 - y0) * ph; };
  o << "<rect x=\"" << kL << "\" y=\"" << kT << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#999\"/>\n";
  for (double t : nice_ticks(x0, x1, 6)) {
    o << "<line x1=\"" << px(t) << "\" x2=\"" << px(t) << "\" y1=\"" << kT + ph << "\" y2=\""
      << kT + ph + 4 << "\" stroke=\"#999\"/><text x=\"" << px(t) << "\" y=\"" << kT + ph + 16
      << "\" text-anchor=\"middle\">" << format_number(t) << "</text>\n";
  }
  const auto yt = c.log_y ? [&] {
    std::vector<double> t;
    const double stride = std::max(1.0, std::ceil((y1 - y0) / 6));
    for (double v = y0; v <= y1 + 1e-9; v += stride) t.push_back(v);
    return t;
  }()
                          : nice_ticks(y0, y1, 5);
  for (double t : yt) {
    o << "<line x1=\"" << kL << "\" x2=\"" << kL + pw << "\" y1=\"" << py(t) << "\" y2=\"" << py(t)
      << "\" stroke=\"#eee\"/><text x=\"" << kL - 4 << "\" y=\"" << py(t) + 4
      << "\" text-anchor=\"end\">" << (c.log_y ? "1e" + format_double("%.0f", t) : format_number(t))
      << "</text>\n";
  }
  o << "<text x=\"" << kL + pw / 2 << "\" y=\"" << kH - 8 << "\" text-anchor=\"middle\">"
    << markup_escape(c.x_label) << "</text>\n<text transform=\"translate(14," << kT + ph / 2
    << ") rotate(-90)\" text-anchor=\"middle\">" << markup_escape(c.y_label) << "</text>\n";
  for (size_t k = 0; k < c.series.size(); ++k) {
    const auto& s = c.series[k];
    const char* colour = kPalette[k % kPalette.size()];
    std::string path;
    bool pen_down = false;
    std::ostringstream dots;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!usable(s.y[i])) {
        pen_down = false;  // a gap, not a line through the missing value
        continue;
      }
      const double X = px(s.x[i]), Y = py(ty(s.y[i]));
      path += (pen_down ? " L" : " M") + format_double("%.1f", X) + "," + format_double("%.1f", Y);
      pen_down = true;
      if (s.x.size() <= 64) {
        dots << "<circle cx=\"" << format_double("%.1f", X) << "\" cy=\""
             << format_double("%.1f", Y) << "\" r=\"2.5\" fill=\"" << colour << "\"><title>"
             << markup_escape(s.label) << ": x=" << format_number(s.x[i])
             << " y=" << format_number(s.y[i]) << "</title></circle>\n";
      }
    }
    o << "<path d=\"" << path << "\" fill=\"none\" stroke=\"" << colour
      << "\" stroke-width=\"1.5\"><title>" << markup_escape(s.label) << "</title></path>\n"
      << dots.str();
    const double ly = kT + 12 + 16 * double(k);
    o << "<line x1=\"" << kL + pw + 10 << "\" x2=\"" << kL + pw + 30 << "\" y1=\"" << ly - 4
      << "\" y2=\"" << ly - 4 << "\" stroke=\"" << colour << "\" stroke-width=\"2\"/><text x=\""
      << kL + pw + 34 << "\" y=\"" << ly << "\">" << markup_escape(s.label) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

std::string render_heat_map(const HeatMap& m) {
  constexpr double kLabelW = 300, kT = 30, kRowH = 11, kLegendW = 150;
  const size_t nc = std::max<size_t>(1, m.cols.size());
  const double cw = std::clamp(560.0 / double(nc), 3.0, 28.0);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& row : m.values) {
    for (double v : row) {
      if (v > 0 && std::isfinite(v))
        lo = std::min(lo, std::log10(v)), hi = std::max(hi, std::log10(v));
    }
  }
  if (!std::isfinite(lo)) lo = hi = 0;
  if (hi == lo) hi = lo + 1;
  const double w = kLabelW + cw * double(nc) + kLegendW;
  const double h = kT + kRowH * double(m.rows.size()) + 40;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h
    << "\" font-family=\"sans-serif\" font-size=\"9\">\n<text x=\"4\" y=\"18\" font-size=\"13\" "
    << "font-weight=\"bold\">" << markup_escape(m.title) << "</text>\n";
  for (size_t r = 0; r < m.rows.size(); ++r) {
    const double y = kT + kRowH * double(r);
    o << "<text x=\"" << kLabelW - 4 << "\" y=\"" << y + kRowH - 2 << "\" text-anchor=\"end\">"
      << markup_escape(m.rows[r]) << "</text>\n";
    for (size_t c = 0; c < m.cols.size() && c < m.values[r].size(); ++c) {
      const double v = m.values[r][c];
      std::string fill = "#f4f4f4";
      if (v == 0)
        fill = "#ffffff";
      else if (std::isinf(v) || std::isnan(v))
        fill = std::isnan(v) ? "#f4f4f4" : "#ff00ff";
      else
        fill = ramp((std::log10(v) - lo) / (hi - lo));
      o << "<rect x=\"" << format_double("%.1f", kLabelW + cw * double(c)) << "\" y=\"" << y
        << "\" width=\"" << format_double("%.1f", cw) << "\" height=\"" << kRowH << "\" fill=\""
        << fill << "\"><title>" << markup_escape(m.rows[r]) << " @ " << format_number(m.cols[c])
        << ": " << markup_escape(m.value_label) << " " << format_number(v) << "</title></rect>\n";
    }
  }
  const double by = kT + kRowH * double(m.rows.size()) + 14;
  for (size_t c = 0; c < m.cols.size(); c += std::max<size_t>(1, nc / 8)) {
    o << "<text x=\"" << format_double("%.1f", kLabelW + cw * (double(c) + 0.5)) << "\" y=\"" << by
      << "\" text-anchor=\"middle\">" << format_number(m.cols[c]) << "</text>\n";
  }
  const double lx = kLabelW + cw * double(nc) + 16;
  for (int i = 0; i < 20; ++i) {
    o << "<rect x=\"" << lx << "\" y=\"" << kT + 6 * i << "\" width=\"14\" height=\"6\" fill=\""
      << ramp(1 - i / 19.0) << "\"/>\n";
  }
  o << "<text x=\"" << lx + 18 << "\" y=\"" << kT + 8 << "\">1e" << format_double("%.1f", hi)
    << "</text><text x=\"" << lx + 18 << "\" y=\"" << kT + 120 << "\">1e"
    << format_double("%.1f", lo) << "</text><text x=\"" << lx << "\" y=\"" << kT + 140 << "\">"
    << markup_escape(m.value_label) << "</text><text x=\"" << lx << "\" y=\"" << kT + 154
    << "\">white: 0 (bitwise), magenta: inf/NaN</text>\n</svg>\n";
  return o.str();
}

}  // namespace cliprepro
