// Self-contained SVG charts for HTML reports: no scripts, no external assets, so a report opens
// offline and in CI artifact viewers. Every point and cell carries a <title> tooltip with its
// exact value.
#pragma once
#include <string>
#include <vector>

namespace cliprepro {

struct PlotSeries {
  std::string label;
  std::vector<double> x, y;  // parallel; non-finite y are skipped (log scale: y <= 0 too)
};

struct LineChart {
  std::string title, x_label, y_label;
  bool log_y = false;
  std::vector<PlotSeries> series;
};

struct HeatMap {
  std::string title, value_label;
  std::vector<std::string> rows;            // one per row of values
  std::vector<double> cols;                 // column keys (steps)
  std::vector<std::vector<double>> values;  // [row][col]; NaN = no value; coloured on log10
};

std::string render_line_chart(const LineChart& chart);
std::string render_heat_map(const HeatMap& map);
// Shortest round-trip-ish text for a double in tooltips and tables ("%.6g"; "inf", "nan").
std::string format_number(double v);
// snprintf of one double with `printf_format` (e.g. "%.2e"), as a string.
std::string format_double(const char* printf_format, double v);

}  // namespace cliprepro
