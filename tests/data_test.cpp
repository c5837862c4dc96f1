#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <array>
#include <fstream>
#include <memory>
#include <vector>

#include "retort/core/error.h"
#include "retort/data/idx.h"
#include "retort/data/image_folder.h"
#include "retort/io/png.h"
#include "test_util.h"

namespace retort {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// IDX bytes: magic 00 00 type ndims, big-endian dims, then the payload as given.
Bytes idx_bytes(uint8_t type, const std::vector<uint32_t>& dims, const Bytes& payload) {
  Bytes b = {0, 0, type, uint8_t(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(d >> s));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

void write_raw(const fs::path& p, const Bytes& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

void write_gz(const fs::path& p, const Bytes& b) {
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, b.data(), unsigned(b.size())), int(b.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

Bytes read_raw(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}


Bytes ramp(size_t n, uint8_t start = 0) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(start + i);
  return b;
}

TEST(Idx, UbyteRoundTripRawAndGzip) {
  test::TempDir tmp("idx-rt");
  auto bytes = idx_bytes(0x08, {3, 2, 4}, ramp(24, 200));
  write_raw(tmp.path / "a.idx", bytes);
  write_gz(tmp.path / "a.idx.gz", bytes);
  for (auto name : {"a.idx", "a.idx.gz"}) {
    auto t = read_idx(tmp.path / name);
    EXPECT_EQ(t.scalar_type(), torch::kUInt8) << name;
    EXPECT_EQ(t.sizes().vec(), (std::vector<int64_t>{3, 2, 4})) << name;
    EXPECT_EQ(t[0][0][0].item<int>(), 200) << name;
    EXPECT_EQ(t[1][1][3].item<int>(), uint8_t(200 + 15)) << name;  // row-major order, wraps at 256
  }
}

TEST(Idx, MultiByteTypesAreBigEndian) {
  test::TempDir tmp("idx-be");
  write_gz(tmp.path / "s.gz", idx_bytes(0x0B, {2}, {0x01, 0x02, 0xFF, 0xFE}));
  auto s = read_idx(tmp.path / "s.gz");
  EXPECT_EQ(s.scalar_type(), torch::kInt16);
  EXPECT_EQ(s[0].item<int>(), 0x0102);
  EXPECT_EQ(s[1].item<int>(), -2);

  write_raw(tmp.path / "i", idx_bytes(0x0C, {1, 1}, {0x80, 0x00, 0x00, 0x01}));
  auto i = read_idx(tmp.path / "i");
  EXPECT_EQ(i.scalar_type(), torch::kInt32);
  EXPECT_EQ(i.item<int32_t>(), INT32_MIN + 1);

  write_raw(tmp.path / "f", idx_bytes(0x0D, {1}, {0x3F, 0xC0, 0x00, 0x00}));  // 1.5f
  EXPECT_EQ(read_idx(tmp.path / "f").item<float>(), 1.5f);

  write_raw(tmp.path / "d", idx_bytes(0x0E, {1}, {0xC0, 0x04, 0, 0, 0, 0, 0, 0}));  // -2.5
  auto d = read_idx(tmp.path / "d");
  EXPECT_EQ(d.scalar_type(), torch::kFloat64);
  EXPECT_EQ(d.item<double>(), -2.5);

  write_raw(tmp.path / "b", idx_bytes(0x09, {2}, {0x7F, 0x80}));
  auto b = read_idx(tmp.path / "b");
  EXPECT_EQ(b.scalar_type(), torch::kInt8);
  EXPECT_EQ(b[1].item<int>(), -128);
}

TEST(Idx, TruncatedPayloadIsRejected) {
  test::TempDir tmp("idx-trunc");
  auto bytes = idx_bytes(0x08, {5, 28, 28}, ramp(5 * 28 * 28));
  bytes.resize(bytes.size() - 1);
  write_raw(tmp.path / "t.idx", bytes);
  auto msg = test::io_error([&] { read_idx(tmp.path / "t.idx"); });
  EXPECT_NE(msg.find("t.idx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("3919"), std::string::npos) << msg;  // bytes actually held

  // Header itself cut short.
  write_raw(tmp.path / "h.idx", {0, 0, 8, 3, 0, 0});
  EXPECT_NE(test::io_error([&] { read_idx(tmp.path / "h.idx"); }).find("truncated"), std::string::npos);
}

TEST(Idx, TruncatedGzipStreamIsRejected) {
  test::TempDir tmp("idx-gztrunc");
  write_gz(tmp.path / "full.gz", idx_bytes(0x08, {64, 16}, ramp(64 * 16)));
  auto gz = read_raw(tmp.path / "full.gz");
  gz.resize(gz.size() / 2);
  write_raw(tmp.path / "half.gz", gz);
  auto msg = test::io_error([&] { read_idx(tmp.path / "half.gz"); });
  EXPECT_NE(msg.find("half.gz"), std::string::npos) << msg;
}

TEST(Idx, BadMagicIsRejected) {
  test::TempDir tmp("idx-magic");
  auto bytes = idx_bytes(0x08, {4}, ramp(4));
  bytes[0] = 0x12;
  write_raw(tmp.path / "m.idx", bytes);
  auto msg = test::io_error([&] { read_idx(tmp.path / "m.idx"); });
  EXPECT_NE(msg.find("magic"), std::string::npos) << msg;
  write_raw(tmp.path / "ty.idx", idx_bytes(0x0A, {4}, ramp(4)));  // no such type
  EXPECT_NE(test::io_error([&] { read_idx(tmp.path / "ty.idx"); }).find("type"), std::string::npos);
  test::io_error([&] { read_idx(tmp.path / "absent.idx"); });
}

TEST(Idx, TrailingBytesAreRejected) {
  test::TempDir tmp("idx-trail");
  auto bytes = idx_bytes(0x08, {2, 3}, ramp(6));
  bytes.push_back(0);
  write_gz(tmp.path / "x.gz", bytes);
  auto msg = test::io_error([&] { read_idx(tmp.path / "x.gz"); });
  EXPECT_NE(msg.find("trailing"), std::string::npos) << msg;
}

TEST(Idx, PairScalesImagesAndChecksCounts) {
  test::TempDir tmp("idx-pair");
  write_gz(tmp.path / "img.gz", idx_bytes(0x08, {3, 2, 2}, {0, 255, 0, 255, 51, 51, 51, 51, 0, 0, 0, 0}));
  write_gz(tmp.path / "lab.gz", idx_bytes(0x08, {3}, {2, 0, 4}));
  auto d = load_idx_pair(tmp.path / "img.gz", tmp.path / "lab.gz");
  EXPECT_EQ(d.images.sizes().vec(), (std::vector<int64_t>{3, 1, 2, 2}));
  EXPECT_EQ(d.images.scalar_type(), torch::kFloat32);
  EXPECT_FLOAT_EQ(d.images[0][0][0][0].item<float>(), -1.0f);
  EXPECT_FLOAT_EQ(d.images[0][0][0][1].item<float>(), 1.0f);
  EXPECT_NEAR(d.images[1][0][1][1].item<float>(), 51 / 127.5 - 1, 1e-6);
  EXPECT_EQ(d.labels.scalar_type(), torch::kInt64);
  EXPECT_EQ(d.labels[2].item<int64_t>(), 4);
  EXPECT_EQ(d.num_classes, 5);

  write_gz(tmp.path / "lab4.gz", idx_bytes(0x08, {4}, {0, 1, 2, 3}));
  auto msg = test::io_error([&] { load_idx_pair(tmp.path / "img.gz", tmp.path / "lab4.gz"); });
  for (auto part : {"img.gz", "lab4.gz", "3", "4"}) EXPECT_NE(msg.find(part), std::string::npos) << msg;
  // Labels as images: wrong rank.
  test::io_error([&] { load_idx_pair(tmp.path / "lab.gz", tmp.path / "lab.gz"); });
}

TEST(Data, FashionMnistTestSplit) {
  fs::path dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir / "t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  auto d = load_fashion_mnist("test", dir);
  EXPECT_EQ(d.images.sizes().vec(), (std::vector<int64_t>{10000, 1, 28, 28}));
  EXPECT_EQ(d.labels.sizes().vec(), (std::vector<int64_t>{10000}));
  EXPECT_EQ(d.num_classes, 10);
  EXPECT_GE(d.images.min().item<float>(), -1.0f);
  EXPECT_LE(d.images.max().item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(d.images.min().item<float>(), -1.0f);  // background
  EXPECT_FLOAT_EQ(d.images.max().item<float>(), 1.0f);
  // The test split is balanced: 1000 of each class.
  auto counts = torch::bincount(d.labels, {}, 10);
  EXPECT_EQ(counts.min().item<int64_t>(), 1000);
  EXPECT_EQ(counts.max().item<int64_t>(), 1000);
}

TEST(Data, FashionMnistMissingNamesPackage) {
  test::TempDir tmp("fmnist-missing");
  auto msg = test::io_error([&] { load_fashion_mnist("train", tmp.path); });
  EXPECT_NE(msg.find("dataset-fashion-mnist"), std::string::npos) << msg;
  EXPECT_THROW(load_fashion_mnist("validation", tmp.path), ConfigError);
}

// A w x h RGB image, left half `left`, right half `right` (each an RGB triple).
std::vector<uint8_t> halves(int w, int h, std::array<uint8_t, 3> left, std::array<uint8_t, 3> right) {
  std::vector<uint8_t> px;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) px.push_back(x < w / 2 ? left[c] : right[c]);
  return px;
}

void write_png(const fs::path& p, int w, int h, const std::vector<uint8_t>& rgb) {
  ASSERT_TRUE(stbi_write_png(p.c_str(), w, h, 3, rgb.data(), w * 3));
}

TEST(ImageFolder, ClassSubfoldersResizedAndLabelled) {
  test::TempDir tmp("imgfolder-classes");
  fs::create_directories(tmp.path / "cats");
  fs::create_directories(tmp.path / "dogs");
  // 16x8 (wide), black left / red right: after squashing to 4x4 columns 0-1 dark, 2-3 red.
  write_png(tmp.path / "cats" / "b.png", 16, 8, halves(16, 8, {0, 0, 0}, {255, 0, 0}));
  write_png(tmp.path / "cats" / "a.PNG", 6, 6, halves(6, 6, {0, 0, 255}, {0, 0, 255}));
  ASSERT_TRUE(stbi_write_jpg((tmp.path / "dogs" / "c.JPEG").c_str(), 8, 8, 3,
                             halves(8, 8, {0, 255, 0}, {0, 255, 0}).data(), 95));
  std::ofstream(tmp.path / "dogs" / "notes.txt") << "ignored";

  auto d = load_image_folder(tmp.path, 4, 3);
  ASSERT_EQ(d.images.sizes().vec(), (std::vector<int64_t>{3, 3, 4, 4}));
  EXPECT_EQ(d.num_classes, 2);
  ASSERT_TRUE(d.labels.defined());
  EXPECT_EQ(d.labels.scalar_type(), torch::kInt64);
  EXPECT_EQ((std::vector<int64_t>(d.labels.data_ptr<int64_t>(), d.labels.data_ptr<int64_t>() + 3)),
            (std::vector<int64_t>{0, 0, 1}));
  EXPECT_GE(d.images.min().item<float>(), -1.0f);
  EXPECT_LE(d.images.max().item<float>(), 1.0f);
  // a.PNG sorts first (uppercase 'a' < 'b'): solid blue.
  EXPECT_NEAR(d.images[0][2].min().item<float>(), 1.0f, 0.01);
  EXPECT_NEAR(d.images[0][0].max().item<float>(), -1.0f, 0.01);
  // b.png: red channel, column 0 dark, column 3 bright, every row the same.
  auto red = d.images[1][0];
  EXPECT_LT(red.select(1, 0).max().item<float>(), -0.8f);
  EXPECT_GT(red.select(1, 3).min().item<float>(), 0.8f);
  EXPECT_LT(d.images[1][1].max().item<float>(), -0.99f);  // no green anywhere
  // The JPEG: mostly green.
  EXPECT_GT(d.images[2][1].mean().item<float>(), 0.9f);
  EXPECT_LT(d.images[2][0].mean().item<float>(), -0.9f);

  auto grey = load_image_folder(tmp.path, 5, 1);
  EXPECT_EQ(grey.images.sizes().vec(), (std::vector<int64_t>{3, 1, 5, 5}));
}

TEST(ImageFolder, LooseImagesAreUnlabelled) {
  test::TempDir tmp("imgfolder-flat");
  write_png(tmp.path / "x.png", 4, 4, halves(4, 4, {255, 255, 255}, {255, 255, 255}));
  fs::create_directories(tmp.path / "sub");  // ignored: images at the top level win
  auto d = load_image_folder(tmp.path, 4, 1);
  EXPECT_EQ(d.images.sizes().vec(), (std::vector<int64_t>{1, 1, 4, 4}));
  EXPECT_FALSE(d.labels.defined());
  EXPECT_EQ(d.num_classes, 0);
  EXPECT_NEAR(d.images.min().item<float>(), 1.0f, 1e-6);
}

TEST(ImageFolder, CorruptAndEmptyAreRejected) {
  test::TempDir tmp("imgfolder-bad");
  auto msg = test::io_error([&] { load_image_folder(tmp.path, 8, 3); });
  EXPECT_NE(msg.find(tmp.path.string()), std::string::npos) << msg;
  write_png(tmp.path / "good.png", 4, 4, halves(4, 4, {1, 2, 3}, {4, 5, 6}));
  std::ofstream(tmp.path / "broken.png") << "\x89PNG not really";
  msg = test::io_error([&] { load_image_folder(tmp.path, 8, 3); });
  EXPECT_NE(msg.find("broken.png"), std::string::npos) << msg;
  EXPECT_THROW(load_image_folder(tmp.path, 8, 2), ConfigError);
}

// A PNG chunk: length, type, data, CRC.
std::string png_chunk(const std::string& type, const std::string& data) {
  auto be = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  const std::string body = type + data;
  return be(uint32_t(data.size())) + body + be(uint32_t(crc32(0, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()))));
}

// A 4x4 grey PNG whose pixel data inflates to `raw` bytes (a whole image holds 4 x (1 + 4) = 20).
std::string grey4x4_png(size_t raw) {
  const std::string ihdr{0, 0, 0, 4, 0, 0, 0, 4, 8, 0, 0, 0, 0};  // 4x4, 8 bits, grey, not interlaced
  std::string pixels(raw, '\0');
  std::string z(compressBound(uLong(raw)), '\0');
  uLongf n = z.size();
  compress(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(pixels.data()), uLong(raw));
  z.resize(n);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", z) + png_chunk("IEND", "");
}

// Decoding never allocates more than the image's own size says: pixel data that inflates past it
// (a deflate bomb; fuzz/image.cpp found stb_image asking for 1 GiB on a 4x4 PNG) and a header
// beyond 8192 x 8192 pixels are refused, naming the file, before stb_image sees them.
TEST(ImageFolder, OversizedPixelDataAndHugeHeadersAreRefused) {
  test::TempDir tmp("img-bomb");
  std::ofstream(tmp.path / "ok.png", std::ios::binary) << grey4x4_png(20);
  EXPECT_EQ(read_image(tmp.path / "ok.png", 1).sizes(), (std::vector<int64_t>{1, 4, 4}));
  std::ofstream(tmp.path / "bomb.png", std::ios::binary) << grey4x4_png(64 << 20);  // 64 MiB of zeros, ~64 KiB file
  auto msg = test::io_error([&] { read_image(tmp.path / "bomb.png", 1); });
  EXPECT_NE(msg.find("bomb.png: corrupt PNG: its pixel data inflates beyond the 20 bytes a 4x4 image holds"),
            std::string::npos) << msg;
  auto huge = grey4x4_png(20);
  huge[18] = huge[22] = 0x27, huge[19] = huge[23] = 0x10;  // IHDR: 10000 x 10000
  std::ofstream(tmp.path / "huge.png", std::ios::binary) << huge;
  msg = test::io_error([&] { read_image(tmp.path / "huge.png", 1); });
  EXPECT_NE(msg.find("huge.png: 10000x10000 image: more than the 67108864 pixels retort reads"), std::string::npos) << msg;
}

TEST(ImageFolder, PngGridLayout) {
  test::TempDir tmp("pnggrid");
  // 5 grey 4x4 images, image i at value -1 + 0.4 i; 3 columns, pad 2 -> 20 x 14.
  auto images = (torch::arange(5, torch::kFloat32) * 0.4 - 1).view({5, 1, 1, 1}).expand({5, 1, 4, 4});
  write_png_grid(tmp.path / "g.png", images, 3, 2);
  int w = 0, h = 0, n = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load((tmp.path / "g.png").c_str(), &w, &h, &n, 1),
                                               stbi_image_free);
  ASSERT_TRUE(px);
  EXPECT_EQ(w, 20);
  EXPECT_EQ(h, 14);
  EXPECT_EQ(n, 1);
  auto at = [&](int x, int y) { return int(px.get()[y * w + x]); };
  EXPECT_EQ(at(0, 0), 0);                     // pad
  EXPECT_EQ(at(2, 2), 0);                     // image 0: -1
  EXPECT_EQ(at(8 + 3, 2 + 3), 51);            // image 1: -0.6 -> 51
  EXPECT_EQ(at(2 + 1 * 6 + 1, 2 + 6 + 1), 204);  // image 4 (row 1, col 1): 0.6 -> 204
  EXPECT_EQ(at(14 + 1, 8 + 1), 0);            // empty cell (row 1, col 2)

  EXPECT_THROW(write_png_grid(tmp.path / "no-such-dir" / "g.png", images, 3), IoError);
}

}  // namespace
}  // namespace retort
