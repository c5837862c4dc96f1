// report.html (issue 26): escaping, one SVG point per metrics row, the best value of a column
// marked, links to the files, a benchmark's runs reported and linked, the state read from the folder.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "retort/report/run_report.h"
#include "retort/run/progress.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The number of points of each <polyline> in `html`, in order.
std::vector<int> polyline_points(const std::string& html) {
  std::vector<int> counts;
  std::regex re("<polyline[^>]*points=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), re); it != std::sregex_iterator(); ++it) {
    std::istringstream pts((*it)[1].str());
    std::string p;
    int n = 0;
    while (pts >> p) ++n;
    counts.push_back(n);
  }
  return counts;
}

}  // namespace

TEST(Report, EscapesEveryTextItShows) {
  EXPECT_EQ(retort::html_escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;");
  retort::test::TempDir d("report-escape");
  write(d.path / "config.resolved.toml", "prompt = \"a <script>alert(1)</script> torus\"\n");
  write(d.path / "results.md", "| method | PSNR |\n|---|---|\n| <script>alert(2)</script> | 20.5 |\n");
  const auto out = retort::write_run_report(d.path, {"finished", "retort generate3d --prompt '<script>alert(3)</script>'", ""});
  const auto html = read(out);
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(html.find("<script>alert(" + std::to_string(i)), std::string::npos) << i;
    EXPECT_NE(html.find("&lt;script&gt;alert(" + std::to_string(i)), std::string::npos) << i;
  }
}

TEST(Report, DrawsEveryMetricsRowAndMarksTheBestValue) {
  retort::test::TempDir d("report-curves");
  std::string csv = "step,loss,fid\n";
  for (int s = 1; s <= 7; ++s) csv += std::to_string(10 * s) + "," + std::to_string(1.0 / s) + "," + (s == 4 ? "" : std::to_string(s)) + "\n";
  write(d.path / "stage2" / "metrics.csv", csv);
  write(d.path / "results.md", "| row | PSNR | FID |\n|---|---|---|\n| a | 20.1 | 30 |\n| b | 21.5 | 40 |\n");
  write(d.path / "samples.png", "not really a png");
  const auto html = read(retort::write_run_report(d.path));
  // loss: 7 points; fid: 6 (the empty cell is skipped, not drawn as 0)
  EXPECT_EQ(polyline_points(html), (std::vector<int>{7, 6}));
  EXPECT_NE(html.find("<td class=\"best\">21.5</td>"), std::string::npos);  // higher PSNR is better
  EXPECT_NE(html.find("<td class=\"best\">30</td>"), std::string::npos);    // lower FID is better
  EXPECT_NE(html.find("<img src=\"samples.png\""), std::string::npos);
  EXPECT_NE(html.find("<a href=\"stage2/metrics.csv\">"), std::string::npos);
  EXPECT_NE(html.find("status stopped"), std::string::npos);  // no final product yet
  write(d.path / "student.safetensors", "");
  EXPECT_NE(read(retort::write_run_report(d.path)).find("status finished"), std::string::npos);
}

TEST(Report, ABenchmarkReportsAndLinksItsRuns) {
  retort::test::TempDir d("report-bench");
  write(d.path / "results.json", "[]");
  write(d.path / "runs" / "sds particles" / "metrics.csv", "step,loss\n1,0.5\n2,0.25\n");
  const auto html = read(retort::write_run_report(d.path));
  EXPECT_TRUE(fs::exists(d.path / "runs" / "sds particles" / "report.html"));
  EXPECT_NE(html.find("<a href=\"runs/sds%20particles/report.html\">"), std::string::npos);
  retort::write_report_index(d.path / "index.html", {d.path / "runs" / "sds particles"});
  const auto index = read(d.path / "index.html");
  EXPECT_NE(index.find("runs/sds%20particles/report.html"), std::string::npos);
  EXPECT_NE(index.find("<td>0.25</td>"), std::string::npos);  // the last logged loss
}

TEST(Report, ARunningRunShowsItsProgressBar) {
  retort::ProgressBar bar("train-x", 10, 0, /*enabled=*/false);  // not drawn, still recorded
  bar.update(5);
  EXPECT_EQ(retort::latest_progress().rfind("train-x 5/10", 0), 0u) << retort::latest_progress();
  retort::test::TempDir d("report-running");
  write(d.path / "metrics.csv", "step,loss\n5,0.5\n");
  const auto html = read(retort::write_run_report(d.path, {"running", "", "", retort::latest_progress()}));
  EXPECT_NE(html.find("status running"), std::string::npos);
  EXPECT_NE(html.find("train-x 5/10"), std::string::npos);
}

TEST(Report, DrawsFidAlongTrainingFromAStepTable) {
  retort::test::TempDir d("report-fid-curve");
  // bench/student_curve.sh's table: one row per scored step; the last column is missing in one row
  // and text in the others.
  write(d.path / "curve.md",
        "| steps | n | FID | accuracy | note |\n|---:|---:|---:|---:|---|\n| 250 | 100 | 40.5 | 6.0% | a |\n"
        "| 500 | 100 | 30.2 | 7.5% | b |\n| 1000 | 100 | 25.0 | 9% |\n");
  write(d.path / "results.md", "| method | FID |\n|---|---|\n| a | 3 |\n| b | 4 |\n");  // not led by steps: no curve
  const auto html = read(retort::write_run_report(d.path));
  // FID and accuracy (percentages are numbers); not n, the sample count, nor "note", which holds no numbers
  EXPECT_EQ(polyline_points(html), (std::vector<int>{3, 3}));
  EXPECT_NE(html.find("<title>curve.md: accuracy</title>"), std::string::npos);
  EXPECT_EQ(html.find("<title>curve.md: n</title>"), std::string::npos);
  EXPECT_NE(html.find("<title>curve.md: FID</title>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"best\">25.0</td>"), std::string::npos);
}
