#include "retort/field/hash_grid.h"

#include <algorithm>
#include <atomic>
#include <cstdint>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "retort/core/error.h"

namespace retort {
namespace F = torch::nn::functional;

HashGridEncodingImpl::HashGridEncodingImpl(const HashGridOptions& opts) : opts_(opts) {
  if (opts.levels < 1 || opts.features < 1 || opts.log2_table < 4 || opts.log2_table > 30 ||
      opts.base_resolution < 1 || opts.max_resolution < opts.base_resolution)
    throw ConfigError("hash grid: need levels >= 1, features >= 1, 4 <= log2_table <= 30 and "
                      "1 <= base_resolution <= max_resolution");
  const int64_t table_size = int64_t{1} << opts.log2_table;
  const double growth = opts.levels > 1 ? std::exp(std::log(double(opts.max_resolution) / opts.base_resolution) /
                                                   double(opts.levels - 1))
                                        : 1.0;
  int64_t offset = 0;
  for (int64_t l = 0; l < opts.levels; ++l) {
    // The small epsilon keeps N_min * b^(L-1) from flooring to N_max - 1.
    const auto res = static_cast<int64_t>(std::floor(opts.base_resolution * std::pow(growth, double(l)) + 1e-6));
    const int64_t verts = (res + 1) * (res + 1) * (res + 1);
    levels_.push_back({res, verts <= table_size, offset});
    offset += std::min(verts, table_size);  // dense levels only need their vertices (as Instant-NGP)
  }
  table = register_parameter("table", torch::empty({offset, opts.features}).uniform_(-opts.init_scale, opts.init_scale));
}

torch::Tensor HashGridEncodingImpl::vertex_rows(const torch::Tensor& ijk, int64_t level) const {
  const auto& lv = levels_.at(level);
  auto i = ijk.select(-1, 0), j = ijk.select(-1, 1), k = ijk.select(-1, 2);
  torch::Tensor row;
  if (lv.dense) {
    const int64_t n = lv.resolution + 1;
    row = i + n * (j + n * k);
  } else {
    // Instant-NGP's hash in uint32 arithmetic; the low T bits of the int64 products are the same.
    const int64_t mask = (int64_t{1} << opts_.log2_table) - 1;
    row = torch::bitwise_and(torch::bitwise_xor(torch::bitwise_xor(i, j * int64_t{2654435761}), k * int64_t{805459861}), mask);
  }
  return row + lv.offset;
}

namespace {

// out[f,b,m] = sum_c w[b,c,m] table[rows[b,c,m], f]. Every tensor keeps the points innermost:
// broadcasting over a last dimension of 2 or 8 ran ~40 ns per element in TensorIterator here, and
// autograd's backward of a row gather (index_add) was slower still, so the backward is written
// out as one flat scatter_add: d table[r,f] = sum w[b,c,m] g[f,b,m] over rows[b,c,m] == r, and
// d w[b,c,m] = sum_f table[rows[b,c,m],f] g[f,b,m]. Checked against finite differences in
// tests/field_test.cpp (Field.HashGatherGradientsMatchFiniteDifferences).
torch::Tensor flat_index(const torch::Tensor& rows, int64_t features) {
  auto f = torch::arange(features, rows.options()).view({features, 1, 1, 1});
  return (rows.unsqueeze(0) * features + f).reshape(-1);  // [F*B*8*M]
}

struct HashGather : torch::autograd::Function<HashGather> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& table,
                               const torch::Tensor& rows, const torch::Tensor& w) {
    ctx->save_for_backward({table, rows, w});
    const int64_t F = table.size(1);
    auto vals = table.reshape(-1).index_select(0, flat_index(rows, F)).view({F, rows.size(0), 8, rows.size(2)});
    return (vals * w.unsqueeze(0)).sum(2);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &table = saved[0], &rows = saved[1], &w = saved[2];
    auto g = grads[0].unsqueeze(2);  // [F,B,1,M]
    const int64_t F = table.size(1);
    auto idx = flat_index(rows, F);
    torch::Tensor d_table, d_w;
    if (ctx->needs_input_grad(0))
      d_table = torch::zeros({table.numel()}, g.options()).scatter_add_(0, idx, (g * w.unsqueeze(0)).reshape(-1)).view_as(table);
    if (ctx->needs_input_grad(2))
      d_w = (table.reshape(-1).index_select(0, idx).view({F, rows.size(0), 8, rows.size(2)}) * g).sum(0);
    return {d_table, torch::Tensor(), d_w};
  }
};

}  // namespace

torch::Tensor hash_gather(const torch::Tensor& table, const torch::Tensor& rows, const torch::Tensor& weights) {
  return HashGather::apply(table.contiguous(), rows.contiguous(), weights.to(table.dtype()).contiguous());
}

// The encoding as one CPU kernel (tiny-cuda-nn's HashGrid on the GPU does the same per thread):
// for each point and level, the 8 corners' rows and trilinear weights are computed in registers and
// the features accumulated, instead of materialising [L,8,N] row and weight tensors. The backward
// to the table runs one level per task (levels own disjoint table rows, so no two tasks write the
// same entry); the backward to the points, one point per task.
namespace {

struct LevelGeometry {
  int64_t resolution, offset;
  bool dense;
};

// Row of vertex (i,j,k) at one level: x fastest on dense levels, Instant-NGP's uint32 hash otherwise.
inline int64_t corner_row(const LevelGeometry& lv, uint32_t mask, uint32_t i, uint32_t j, uint32_t k) {
  if (lv.dense) {
    const int64_t n = lv.resolution + 1;
    return lv.offset + i + n * (j + n * int64_t(k));
  }
  return lv.offset + int64_t((i ^ (j * 2654435761u) ^ (k * 805459861u)) & mask);
}

// Calls visit(row, weight, dweight/du[3]) for the 8 corners of `u` (in [0,1]^3) at level lv.
template <class scalar_t, class Visit>
inline void for_each_corner(const LevelGeometry& lv, uint32_t mask, const scalar_t* u, Visit&& visit) {
  uint32_t base[3];
  scalar_t frac[3];
  for (int a = 0; a < 3; ++a) {
    const scalar_t pos = u[a] * scalar_t(lv.resolution);
    // Points on the far face use the last cell.
    const scalar_t b = std::min(std::floor(pos), scalar_t(lv.resolution - 1));
    base[a] = uint32_t(b);
    frac[a] = pos - b;
  }
  const scalar_t res = scalar_t(lv.resolution);
  for (int c = 0; c < 8; ++c) {
    const int dx = c & 1, dy = (c >> 1) & 1, dz = (c >> 2) & 1;
    const scalar_t wx = dx ? frac[0] : 1 - frac[0], wy = dy ? frac[1] : 1 - frac[1], wz = dz ? frac[2] : 1 - frac[2];
    // d w / d u: d frac / d u = res, and the "1 - frac" factors flip the sign.
    const scalar_t gx = (dx ? res : -res) * wy * wz, gy = wx * (dy ? res : -res) * wz, gz = wx * wy * (dz ? res : -res);
    const scalar_t grad[3] = {gx, gy, gz};
    visit(corner_row(lv, mask, base[0] + dx, base[1] + dy, base[2] + dz), wx * wy * wz, grad);
  }
}

struct HashEncode : torch::autograd::Function<HashEncode> {
  // table [rows,F], unit [N,3] in [0,1] -> [N, L*F]
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& table,
                               const torch::Tensor& unit, const std::vector<LevelGeometry>& levels, int64_t log2_table) {
    RECORD_FUNCTION("retort::hash_encode", std::vector<c10::IValue>({unit}));  // a profiler range (bench-step --profile)
    ctx->save_for_backward({table, unit});
    ctx->saved_data["log2_table"] = log2_table;
    std::vector<int64_t> flat;
    for (const auto& lv : levels) flat.insert(flat.end(), {lv.resolution, lv.offset, int64_t(lv.dense)});
    ctx->saved_data["levels"] = flat;
    const int64_t N = unit.size(0), L = int64_t(levels.size()), F = table.size(1);
    auto out = torch::zeros({N, L * F}, table.options());
    const uint32_t mask = uint32_t((int64_t{1} << log2_table) - 1);
    AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "hash_encode", [&] {
      const scalar_t* t = table.data_ptr<scalar_t>();
      const scalar_t* u = unit.data_ptr<scalar_t>();
      scalar_t* o = out.data_ptr<scalar_t>();
      // Levels outermost within a chunk of points: one level's rows at a time stay in cache.
      at::parallel_for(0, N, 1024, [&](int64_t begin, int64_t end) {
        for (int64_t l = 0; l < L; ++l)
          for (int64_t n = begin; n < end; ++n) {
            scalar_t* dst = o + n * L * F + l * F;
            if (F == 2) {  // threestudio's and retort's feature count, unrolled
              scalar_t a = 0, b = 0;
              for_each_corner<scalar_t>(levels[l], mask, u + 3 * n, [&](int64_t row, scalar_t w, const scalar_t*) {
                a += w * t[2 * row], b += w * t[2 * row + 1];
              });
              dst[0] = a, dst[1] = b;
            } else {
              for_each_corner<scalar_t>(levels[l], mask, u + 3 * n, [&](int64_t row, scalar_t w, const scalar_t*) {
                for (int64_t f = 0; f < F; ++f) dst[f] += w * t[row * F + f];
              });
            }
          }
      });
    });
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &table = saved[0], &unit = saved[1];
    const auto flat = ctx->saved_data["levels"].toIntVector();
    std::vector<LevelGeometry> levels;
    for (size_t i = 0; i < flat.size(); i += 3) levels.push_back({flat[i], flat[i + 1], flat[i + 2] != 0});
    const uint32_t mask = uint32_t((int64_t{1} << ctx->saved_data["log2_table"].toInt()) - 1);
    const int64_t N = unit.size(0), L = int64_t(levels.size()), F = table.size(1);
    auto g = grads[0].contiguous();
    torch::Tensor d_table, d_unit;
    if (ctx->needs_input_grad(0)) d_table = torch::zeros_like(table);
    if (ctx->needs_input_grad(1)) d_unit = torch::zeros_like(unit);
    AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "hash_encode_backward", [&] {
      const scalar_t* t = table.data_ptr<scalar_t>();
      const scalar_t* u = unit.data_ptr<scalar_t>();
      const scalar_t* go = g.data_ptr<scalar_t>();
      if (d_table.defined()) {
        scalar_t* dt = d_table.data_ptr<scalar_t>();
        // Threads take contiguous ranges; levels in the order 0, L-1, 1, L-2, ... give each thread
        // cheap coarse (dense, cache-resident) and costly fine (hashed) levels alike.
        std::vector<int64_t> order;
        for (int64_t a = 0, b = L - 1; a <= b; ++a, --b) {
          order.push_back(a);
          if (a != b) order.push_back(b);
        }
        at::parallel_for(0, L, 1, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i)
            for (int64_t n = 0, l = order[i]; n < N; ++n) {
              const scalar_t* gn = go + n * L * F + l * F;
              if (F == 2) {
                const scalar_t g0 = gn[0], g1 = gn[1];
                for_each_corner<scalar_t>(levels[l], mask, u + 3 * n, [&](int64_t row, scalar_t w, const scalar_t*) {
                  dt[2 * row] += w * g0, dt[2 * row + 1] += w * g1;
                });
              } else {
                for_each_corner<scalar_t>(levels[l], mask, u + 3 * n, [&](int64_t row, scalar_t w, const scalar_t*) {
                  for (int64_t f = 0; f < F; ++f) dt[row * F + f] += w * gn[f];
                });
              }
            }
        });
      }
      if (d_unit.defined()) {
        scalar_t* du = d_unit.data_ptr<scalar_t>();
        at::parallel_for(0, N, 1024, [&](int64_t begin, int64_t end) {
          for (int64_t n = begin; n < end; ++n)
            for (int64_t l = 0; l < L; ++l) {
              const scalar_t* gn = go + n * L * F + l * F;
              for_each_corner<scalar_t>(levels[l], mask, u + 3 * n, [&](int64_t row, scalar_t, const scalar_t* dw) {
                scalar_t dot = 0;
                for (int64_t f = 0; f < F; ++f) dot += gn[f] * t[row * F + f];
                for (int a = 0; a < 3; ++a) du[3 * n + a] += dot * dw[a];
              });
            }
        });
      }
    });
    return {d_table, d_unit, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

namespace {
std::atomic<bool> vectorised_default{false};
}  // namespace

void set_hash_grid_vectorised_default(bool vectorised) { vectorised_default = vectorised; }
bool hash_grid_vectorised_default() { return vectorised_default; }

torch::Tensor HashGridEncodingImpl::forward(const torch::Tensor& points) {
  // Points outside the box are clamped onto it; the clamp's gradient is zero there, as before.
  auto unit = ((points.to(table.dtype()) / opts_.bound + 1) * 0.5).clamp(0, 1);
  if (table.device().is_cpu() && !vectorised) {
    std::vector<LevelGeometry> geometry;
    for (const auto& lv : levels_) geometry.push_back({lv.resolution, lv.offset, lv.dense});
    return HashEncode::apply(table, unit.contiguous(), geometry, opts_.log2_table);
  }
  return forward_vectorised(points);
}

torch::Tensor HashGridEncodingImpl::forward_vectorised(const torch::Tensor& points) {
  const int64_t N = points.size(0), L = opts_.levels, Fd = opts_.features;
  auto unit = ((points.to(table.dtype()) / opts_.bound + 1) * 0.5).clamp(0, 1).t().contiguous();  // [3,N]
  std::vector<torch::Tensor> rows, weights;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t res = levels_[l].resolution;
    auto pos = unit * double(res);
    auto base = pos.floor().clamp_max(double(res - 1));  // points on the far face use the last cell
    auto frac = pos - base;
    auto b = base.to(torch::kLong);
    // Per axis the two corner coordinates and linear weights [2,N]; the 8 corners are their outer
    // product laid out (z, y, x), so corner c = dx + 2 dy + 4 dz.
    auto two = [](const torch::Tensor& lo, const torch::Tensor& hi) { return torch::stack({lo, hi}); };
    auto cx = two(b[0], b[0] + 1), cy = two(b[1], b[1] + 1), cz = two(b[2], b[2] + 1);
    torch::Tensor row;
    if (levels_[l].dense) {
      const int64_t n = res + 1;
      row = (cz * (n * n)).view({2, 1, 1, N}) + (cy * n).view({1, 2, 1, N}) + cx.view({1, 1, 2, N});
    } else {
      // Instant-NGP's hash in uint32 arithmetic; the low T bits of the int64 products are the same.
      const int64_t mask = (int64_t{1} << opts_.log2_table) - 1;
      auto hz = torch::bitwise_and(cz * int64_t{805459861}, mask), hy = torch::bitwise_and(cy * int64_t{2654435761}, mask);
      row = torch::bitwise_xor(torch::bitwise_xor(hz.view({2, 1, 1, N}), hy.view({1, 2, 1, N})), cx.view({1, 1, 2, N}));
      row = torch::bitwise_and(row, mask);
    }
    rows.push_back(row.view({8, N}) + levels_[l].offset);
    auto wx = two(1 - frac[0], frac[0]), wy = two(1 - frac[1], frac[1]), wz = two(1 - frac[2], frac[2]);
    weights.push_back((wz.view({2, 1, 1, N}) * wy.view({1, 2, 1, N}) * wx.view({1, 1, 2, N})).view({8, N}));
  }
  auto out = hash_gather(table, torch::stack(rows), torch::stack(weights));  // [F,L,N]
  return out.permute({2, 1, 0}).reshape({N, L * Fd});
}

HashGridFieldImpl::HashGridFieldImpl(const HashGridOptions& opts)
    : RadianceField(opts.bound), opts_(opts), active_levels_(opts.levels) {
  encoding = register_module("encoding", HashGridEncoding(opts));
  mlp = torch::nn::Sequential();
  int64_t in = encoding->output_dim();
  for (int64_t h = 0; h < opts.hidden_layers; ++h) {
    mlp->push_back(torch::nn::Linear(in, opts.hidden));
    mlp->push_back(torch::nn::ReLU(torch::nn::ReLUOptions().inplace(true)));  // on the Linear's own output: no copy
    in = opts.hidden;
  }
  mlp->push_back(torch::nn::Linear(in, 4));
  register_module("mlp", mlp);
}

void HashGridFieldImpl::set_active_levels(int64_t n) {
  if (n < 1 || n > opts_.levels)
    throw ConfigError(fmt::format("hash grid: active levels {} outside [1, {}]", n, opts_.levels));
  active_levels_ = n;
}

FieldSample HashGridFieldImpl::query(const torch::Tensor& points) {
  auto features = encoding->forward(points);
  if (active_levels_ < opts_.levels) {
    auto mask = torch::zeros({features.size(1)}, features.options());
    mask.slice(0, 0, active_levels_ * opts_.features).fill_(1);
    features = features * mask;
  }
  auto out = mlp->forward(features);
  auto bias = blob_density_bias(points.to(out.dtype()), opts_.blob_density, opts_.blob_radius);
  return {F::softplus(out.select(1, 0) + bias), torch::sigmoid(out.slice(1, 1, 4))};
}

}  // namespace retort
