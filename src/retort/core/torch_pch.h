// Precompiled header: LibTorch is the expensive include in every translation unit.
#pragma once
#include <torch/torch.h>
