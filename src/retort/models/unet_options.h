// The UNet's architecture keys, declared once for every config that builds one ([model] of the
// image teacher and of the novel-view video teacher). Channels, resolution, classes, frames and
// condition channels come from the data, not from these keys.
#pragma once
#include "retort/core/options.h"
#include "retort/models/unet.h"

namespace retort {

// widths, blocks, time_dim, groups, heads, dropout; with `video`, also temporal_heads and temporal_from.
const OptionTable<UNetOptions>& unet_option_table(bool video = false);

}  // namespace retort
