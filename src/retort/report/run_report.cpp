#include "retort/report/run_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "retort/io/metrics_csv.h"
#include "retort/run/run_folder.h"

namespace fs = std::filesystem;

namespace retort {
namespace {

constexpr const char* kStyle = R"(<style>
body{font:14px/1.45 system-ui,sans-serif;margin:1rem auto;max-width:1100px;padding:0 .8rem;color:#222}
h1{font-size:1.3rem;word-break:break-all}h2{font-size:1.1rem;margin-top:1.6rem}
.status{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;color:#fff}
.finished{background:#2a7}.failed{background:#c33}.running{background:#27c}.stopped{background:#888}
pre{background:#f4f4f4;padding:.6rem;overflow-x:auto;font-size:12px}
.charts,.pictures{display:flex;flex-wrap:wrap;gap:.8rem}
.charts svg{width:320px;max-width:100%;height:auto;border:1px solid #ddd;background:#fff}
figure{margin:0;max-width:100%}figure img,figure video{max-width:100%;image-rendering:pixelated;border:1px solid #ddd}
figcaption{font-size:12px;color:#555;word-break:break-all}
table{border-collapse:collapse;font-size:12px;display:block;overflow-x:auto}
td,th{border:1px solid #ccc;padding:.15rem .4rem;text-align:right}th{background:#f0f0f0;cursor:pointer}
td:first-child,th:first-child{text-align:left}.best{font-weight:bold;background:#dfd}.missing{color:#c33}
ul.files{columns:2;font-size:12px}@media(max-width:600px){ul.files{columns:1}}
</style>
)";

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

double parse_number(const std::string& s) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    return used == s.size() ? v : std::numeric_limits<double>::quiet_NaN();
  } catch (const std::exception&) {
    return std::numeric_limits<double>::quiet_NaN();
  }
}

// A metrics file the report cannot read is shown as such, not as the report's failure.
MetricsTable read_metrics(const fs::path& csv, std::string* problem = nullptr) {
  try {
    return read_metrics_csv(csv);
  } catch (const std::exception& e) {
    if (problem) *problem = e.what();
    return {};
  }
}

std::string fmt_value(double v) { return std::isfinite(v) ? fmt::format("{:.3g}", v) : "—"; }

// Every file under `dir` (depth <= 3), sorted, relative; the report's own outputs and temporaries left out.
std::vector<fs::path> folder_files(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it.depth() >= 3) it.disable_recursion_pending();
    if (!it->is_regular_file(ec)) continue;
    const auto rel = fs::relative(it->path(), dir, ec);
    const auto name = rel.filename().string();
    if (name == ".lock" || name == ".write-probe" || rel.extension() == ".tmp" || name == "report.html") continue;
    files.push_back(rel);
    if (files.size() >= 2000) break;
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool has_suffix(const fs::path& p, std::initializer_list<const char*> exts) {
  const auto e = p.extension().string();
  return std::any_of(exts.begin(), exts.end(), [&](const char* x) { return e == x; });
}

// "running" when another process holds DIR/.lock; else finished when a final product is there.
std::string folder_state(const fs::path& dir, const std::vector<fs::path>& files, bool check_lock) {
  if (check_lock && output_folder_in_use(dir)) return "running";
  static const std::vector<std::string> finals{"teacher.safetensors", "student.safetensors", "student.pt", "nvs-teacher.safetensors",
                                               "evaluator.safetensors", "results.json", "field.safetensors",
                                               "result.json", "world.safetensors", "test.safetensors"};
  for (const auto& f : files)
    if (f.has_parent_path() == false &&
        std::find(finals.begin(), finals.end(), f.filename().string()) != finals.end())
      return "finished";
  return "stopped";
}

// Higher is better (+1), lower is better (-1), or no order (0), from a column's header.
int column_order(const std::string& header) {
  std::string h = header;
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* k : {"psnr", "ssim", "acc", "precision", "recall", "in 3σ", "p(", "covered", "modes", "iou"})
    if (h.find(k) != std::string::npos) return 1;
  for (const char* k : {"fid", "mmd", "tv", "sw2", "energy", "loss", "dist", "l1", "seconds", "s /", "chamfer"})
    if (h.find(k) != std::string::npos) return -1;
  return 0;
}

// A Markdown file's paragraphs and pipe tables, in order. A table is its rows of trimmed cells: the
// header, the |---| rule, then the body.
struct MarkdownBlock {
  std::string text;                          // a paragraph, when `rows` is empty
  std::vector<std::vector<std::string>> rows;
};

std::vector<MarkdownBlock> markdown_blocks(const std::string& md) {
  std::vector<MarkdownBlock> blocks;
  MarkdownBlock cur;
  auto flush = [&] {
    if (!cur.text.empty() || cur.rows.size() >= 2) blocks.push_back(cur);
    cur = {};
  };
  for (const auto& raw : split(md, '\n')) {
    const auto line = trim(raw);
    const bool row = line.size() > 1 && line.front() == '|';
    if (row != !cur.rows.empty() && (!cur.text.empty() || !cur.rows.empty())) flush();
    if (row) {
      std::vector<std::string> cells;
      for (auto& p : split(line.substr(1, line.size() - 2), '|')) cells.push_back(trim(p));
      cur.rows.push_back(cells);
    } else if (line.empty()) {
      flush();
    } else {
      cur.text += (cur.text.empty() ? "" : " ") + line;
    }
  }
  flush();
  return blocks;
}

// A cell's leading number ("21.4 ± 0.3" -> 21.4, "6.0%" -> 6); NaN when it has none.
double cell_number(const std::string& cell) {
  auto words = split(cell, ' ');
  if (words.empty()) return NAN;
  if (words[0].size() > 1 && words[0].back() == '%') words[0].pop_back();
  return parse_number(words[0]);
}

// A Markdown file (results.md) as HTML, each ordered column's best numeric value marked.
std::string markdown_tables(const std::string& md) {
  std::string html;
  for (const auto& b : markdown_blocks(md)) {
    if (b.rows.empty()) {
      html += "<p>" + html_escape(b.text) + "</p>\n";
      continue;
    }
    const auto& head = b.rows[0];
    std::vector<int> best(head.size(), -1);
    for (size_t c = 0; c < head.size(); ++c) {
      const int order = column_order(head[c]);
      double bv = 0;
      for (size_t r = 2; r < b.rows.size() && order != 0; ++r) {
        const double v = c < b.rows[r].size() ? cell_number(b.rows[r][c]) : NAN;
        if (std::isfinite(v) && (best[c] < 0 || order * v > order * bv)) best[c] = int(r), bv = v;
      }
    }
    html += "<table class=\"sortable\"><thead><tr>";
    for (const auto& h : head) html += "<th>" + html_escape(h) + "</th>";
    html += "</tr></thead><tbody>\n";
    for (size_t r = 2; r < b.rows.size(); ++r) {
      html += "<tr>";
      for (size_t c = 0; c < b.rows[r].size(); ++c)
        html += (c < best.size() && best[c] == int(r) ? "<td class=\"best\">" : "<td>") + html_escape(b.rows[r][c]) + "</td>";
      html += "</tr>\n";
    }
    html += "</tbody></table>\n";
  }
  return html;
}

// Tables led by a step column (bench/student_curve.sh's curve.md: FID along training) drawn as
// curves, one per column that holds numbers.
std::string markdown_curves(const std::string& md, const std::string& where) {
  std::string svgs;
  for (const auto& b : markdown_blocks(md)) {
    if (b.rows.size() < 3 || b.rows[0].empty()) continue;
    std::string first = b.rows[0][0];
    std::transform(first.begin(), first.end(), first.begin(), [](unsigned char c) { return std::tolower(c); });
    if (first.rfind("step", 0) != 0) continue;
    std::vector<double> steps;
    for (size_t r = 2; r < b.rows.size(); ++r) steps.push_back(cell_number(b.rows[r][0]));
    for (size_t c = 1; c < b.rows[0].size(); ++c) {
      if (b.rows[0][c] == "n") continue;  // the sample count, not a measurement
      std::vector<double> y;
      for (size_t r = 2; r < b.rows.size(); ++r) y.push_back(c < b.rows[r].size() ? cell_number(b.rows[r][c]) : NAN);
      if (std::any_of(y.begin(), y.end(), [](double v) { return std::isfinite(v); }))
        svgs += svg_curve(where + b.rows[0][c], steps, y);
    }
  }
  return svgs;
}

constexpr const char* kSortScript = R"(<script>
// Every picture must load: the count goes on <body data-images="loaded/all"> (the tests read it),
// and a missing one is said at the top of the page.
window.addEventListener('load', () => {
  const all = Array.from(document.images), ok = all.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.images = ok + '/' + all.length;
  if (ok < all.length) { const p = document.createElement('p'); p.className = 'missing';
    p.textContent = (all.length - ok) + ' picture(s) did not load'; document.body.prepend(p); }
});
// Click a column header to sort its table (numbers numerically, the rest as text).
document.querySelectorAll('table.sortable th').forEach((th, i) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], up = th.dataset.up !== '1';
  th.dataset.up = up ? '1' : '0';
  const key = r => { const t = r.cells[i] ? r.cells[i].textContent : ''; const v = parseFloat(t); return isNaN(v) ? t : v; };
  Array.from(body.rows).sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); }).forEach(r => body.appendChild(r));
}));
</script>
)";

std::string page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
         html_escape(title) + "</title>\n" + kStyle + "</head><body>\n" + body + kSortScript + "</body></html>\n";
}

std::string href(const fs::path& rel) {
  std::string out;
  for (unsigned char c : rel.generic_string()) {
    if (std::isalnum(c) || std::string("/-_.~").find(char(c)) != std::string::npos) out += char(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svg_curve(const std::string& title, const std::vector<double>& x, const std::vector<double>& y) {
  const double W = 320, H = 180, L = 48, R = 8, T = 20, B = 24;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i]))
      x0 = std::min(x0, x[i]), x1 = std::max(x1, x[i]), y0 = std::min(y0, y[i]), y1 = std::max(y1, y[i]);
  std::string svg = fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" role=\"img\">"
                                "<title>{}</title><text x=\"{}\" y=\"14\" font-size=\"12\">{}</text>",
                                W, H, html_escape(title), L, html_escape(title));
  svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#888\"/>"
                     "<line x1=\"{0}\" y1=\"{3}\" x2=\"{0}\" y2=\"{1}\" stroke=\"#888\"/>", L, H - B, W - R, T);
  if (x0 > x1) return svg + "<text x=\"60\" y=\"100\" font-size=\"12\">no values</text></svg>";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + (y0 == 0 ? 1 : std::abs(y0) * 0.1);
  auto px = [&](double v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double v) { return H - B - (v - y0) / (y1 - y0) * (H - B - T); };
  std::string pts, dots;
  int n = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) {
      pts += fmt::format("{:.1f},{:.1f} ", px(x[i]), py(y[i]));
      dots += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"#27c\"/>", px(x[i]), py(y[i]));
      ++n;
    }
  svg += "<polyline fill=\"none\" stroke=\"#27c\" stroke-width=\"1.5\" points=\"" + pts + "\"/>";
  if (n <= 30) svg += dots;  // a few points (one checkpoint, a curve.md) are seen as points, not a bare line
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>", L - 3, T + 8, fmt_value(y1));
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>", L - 3, H - B, fmt_value(y0));
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\">{}</text>", L, H - 8, fmt_value(x0));
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{} (step)</text>", W - R, H - 8,
                     fmt_value(x1));
  return svg + "</svg>";
}

fs::path write_run_report(const fs::path& dir, const ReportStatus& status) {
  const auto files = folder_files(dir);
  // The runs inside a benchmark (runs/NAME/, runs/METHOD/PROMPT/) get their own reports first.
  std::vector<fs::path> inner;
  for (const auto& f : files)
    if (f.filename() == "metrics.csv" && !f.parent_path().empty() && *f.begin() == "runs") {
      const auto run = f.parent_path();
      if (std::find(inner.begin(), inner.end(), run) == inner.end()) inner.push_back(run);
    }
  for (const auto& run : inner) write_run_report(dir / run);

  const std::string state = status.state.empty() ? folder_state(dir, files, !status.self) : status.state;
  std::string body = "<h1>" + html_escape(dir.filename().empty() ? dir.string() : dir.filename().string()) + "</h1>\n";
  body += "<p><span class=\"status " + html_escape(state) + "\">" + html_escape(state) + "</span>";
  // The newest metrics.csv gives the step and, where logged, the seconds of training.
  const fs::path* newest = nullptr;
  std::error_code ec;
  for (const auto& f : files)
    if (f.filename() == "metrics.csv" && f.parent_path().string().rfind("runs", 0) != 0 &&
        (!newest || fs::last_write_time(dir / f, ec) > fs::last_write_time(dir / *newest, ec)))
      newest = &f;
  if (newest) {
    const auto m = read_metrics(dir / *newest);
    if (!m.rows.empty()) {
      body += fmt::format(" step {:.0f}", m.rows.back()[0]);
      const auto s = std::find(m.columns.begin(), m.columns.end(), "seconds");
      if (s != m.columns.end()) body += fmt::format(", {} s of training", fmt_value(m.rows.back()[s - m.columns.begin()]));
    }
  }
  if (state == "running" && !status.progress.empty()) body += " · " + html_escape(status.progress);
  body += "</p>\n";
  if (!status.command.empty()) body += "<pre>" + html_escape(status.command) + "</pre>\n";
  if (!status.error.empty()) body += "<pre class=\"error\">" + html_escape(status.error) + "</pre>\n";
  // The folder's own tables: results.md first, then any other (bench/student_curve.sh's curve.md:
  // FID along training).
  std::vector<fs::path> tables;
  for (const auto& f : files)
    if (!f.has_parent_path() && f.extension() == ".md") tables.push_back(f);
  std::stable_partition(tables.begin(), tables.end(), [](const fs::path& f) { return f == "results.md"; });
  std::string charts;
  for (const auto& t : tables) {
    const auto md = read_text(dir / t);
    body += "<h2>" + html_escape(t == "results.md" ? std::string("Results") : t.string()) + "</h2>\n" +
            markdown_tables(md);
    charts += markdown_curves(md, t.string() + ": ");
  }
  if (!inner.empty()) {
    body += "<h2>Runs</h2>\n<ul>";
    for (const auto& run : inner)
      body += "<li><a href=\"" + href(run / "report.html") + "\">" + html_escape(run.generic_string()) + "</a></li>";
    body += "</ul>\n";
  }
  for (const auto& f : files) {
    if (f.filename() != "metrics.csv" || (!f.parent_path().empty() && *f.begin() == "runs")) continue;
    std::string problem;
    const auto m = read_metrics(dir / f, &problem);
    if (!problem.empty()) charts += "<p class=\"missing\">" + html_escape(problem) + "</p>";
    std::vector<double> steps;
    for (const auto& r : m.rows) steps.push_back(r[0]);
    for (size_t c = 1; c < m.columns.size(); ++c) {
      std::vector<double> y;
      for (const auto& r : m.rows) y.push_back(r[c]);
      const auto where = f.parent_path().empty() ? "" : f.parent_path().generic_string() + ": ";
      charts += svg_curve(where + m.columns[c], steps, y);
    }
  }
  if (!charts.empty()) body += "<h2>Curves</h2>\n<div class=\"charts\">" + charts + "</div>\n";
  std::string pictures;
  for (const auto& f : files) {
    if (!f.parent_path().empty() && *f.begin() == "runs") continue;  // in the runs' own reports
    if (has_suffix(f, {".png", ".gif"}))
      pictures += "<figure><img src=\"" + href(f) + "\" alt=\"" + html_escape(f.generic_string()) +
                  "\"><figcaption>" + html_escape(f.generic_string()) + "</figcaption></figure>\n";
    else if (has_suffix(f, {".mp4"}))
      pictures += "<figure><video controls src=\"" + href(f) + "\"></video><figcaption>" +
                  html_escape(f.generic_string()) + "</figcaption></figure>\n";
  }
  if (!pictures.empty()) body += "<h2>Pictures</h2>\n<div class=\"pictures\">" + pictures + "</div>\n";
  if (fs::exists(dir / "config.resolved.toml"))
    body += "<h2>Config</h2>\n<pre>" + html_escape(read_text(dir / "config.resolved.toml")) + "</pre>\n";
  body += "<h2>Files</h2>\n<ul class=\"files\">";
  for (const auto& f : files)
    body += "<li><a href=\"" + href(f) + "\">" + html_escape(f.generic_string()) + "</a></li>";
  body += "</ul>\n";
  const auto out = dir / "report.html";
  write_text_atomic(out, page(dir.filename().string() + " — retort", body));
  return out;
}

void write_report_index(const fs::path& index, const std::vector<fs::path>& dirs) {
  std::vector<std::string> columns;
  std::vector<std::map<std::string, std::string>> rows;
  const auto base = index.has_parent_path() ? index.parent_path() : fs::path(".");
  for (const auto& d : dirs) {
    write_run_report(d);
    std::map<std::string, std::string> row;
    const auto files = folder_files(d);
    row["state"] = folder_state(d, files, true);
    std::error_code ec;
    row["link"] = fs::relative(d / "report.html", base, ec).generic_string();
    row["name"] = d.generic_string();
    for (const auto& f : files) {
      if (f.filename() != "metrics.csv" || (!f.parent_path().empty() && *f.begin() == "runs")) continue;
      const auto m = read_metrics(d / f);
      if (m.rows.empty()) continue;
      for (size_t c = 0; c < m.columns.size(); ++c) {
        const auto key = (f.parent_path().empty() ? "" : f.parent_path().generic_string() + "/") + m.columns[c];
        row[key] = fmt_value(m.rows.back()[c]);
        if (std::find(columns.begin(), columns.end(), key) == columns.end()) columns.push_back(key);
      }
    }
    rows.push_back(row);
  }
  std::string body = "<h1>retort runs</h1>\n<table class=\"sortable\"><thead><tr><th>run</th><th>status</th>";
  for (const auto& c : columns) body += "<th>" + html_escape(c) + "</th>";
  body += "</tr></thead><tbody>\n";
  for (auto& r : rows) {
    body += "<tr><td><a href=\"" + href(r["link"]) + "\">" + html_escape(r["name"]) + "</a></td><td>" +
            html_escape(r["state"]) + "</td>";
    for (const auto& c : columns) body += "<td>" + html_escape(r.count(c) ? r[c] : "") + "</td>";
    body += "</tr>\n";
  }
  body += "</tbody></table>\n";
  write_text_atomic(index, page("retort runs", body));
}

}  // namespace retort
