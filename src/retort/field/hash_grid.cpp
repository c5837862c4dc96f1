#include "retort/field/hash_grid.h"

#include <algorithm>
#include <cmath>
#include <string>

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

torch::Tensor HashGridEncodingImpl::forward(const torch::Tensor& points) {
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

HashGridFieldImpl::HashGridFieldImpl(const HashGridOptions& opts) : RadianceField(opts.bound), opts_(opts) {
  encoding = register_module("encoding", HashGridEncoding(opts));
  mlp = torch::nn::Sequential();
  int64_t in = encoding->output_dim();
  for (int64_t h = 0; h < opts.hidden_layers; ++h) {
    mlp->push_back(torch::nn::Linear(in, opts.hidden));
    mlp->push_back(torch::nn::ReLU());
    in = opts.hidden;
  }
  mlp->push_back(torch::nn::Linear(in, 4));
  register_module("mlp", mlp);
}

FieldSample HashGridFieldImpl::query(const torch::Tensor& points) {
  auto out = mlp->forward(encoding->forward(points));
  auto bias = blob_density_bias(points.to(out.dtype()), opts_.blob_density, opts_.blob_radius);
  return {F::softplus(out.select(1, 0) + bias), torch::sigmoid(out.slice(1, 1, 4))};
}

}  // namespace retort
