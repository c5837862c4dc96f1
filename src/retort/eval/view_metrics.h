// Per-view quality against the ground truth, as novel-view-synthesis papers report it (PSNR and
// SSIM of MVSplat360's / FVGen's tables). Images are [N,C,H,W] with values in [0,1]; both are
// clipped to [0,1] first. Results are per image, [N] float64.
#pragma once
#include <torch/torch.h>

namespace retort {

// -10 log10(MSE); the MSE is floored at 1e-10, so identical images score 100 dB.
torch::Tensor psnr(const torch::Tensor& images, const torch::Tensor& reference);
// PSNR over the pixels where mask [N,1,H,W] (or [N,H,W]) is nonzero, all channels; NaN where a
// mask is empty (e.g. the holes of a view the point cloud covers entirely).
torch::Tensor masked_psnr(const torch::Tensor& images, const torch::Tensor& reference, const torch::Tensor& mask);

// SSIM (Wang et al. 2004) with an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma),
// K1 = 0.01, K2 = 0.03, data range 1, population covariances; the mean of the SSIM map over the
// window positions that lie wholly inside the image (no padding: scikit-image pads, then crops
// those border positions away) and over channels. Equals scikit-image's structural_similarity(
// a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1,
// channel_axis=0). Images must be at least 11x11 (an Error otherwise).
torch::Tensor ssim(const torch::Tensor& images, const torch::Tensor& reference);

class ClassifierImpl;
// LPIPS's formula without its learned weights (its `lpips=False` baseline) on the convolution
// stages of a classifier retort trained itself (e.g. weights/world-evaluator.safetensors): per
// stage, features unit-normalised over channels, squared difference summed over channels and
// averaged over positions; summed over stages. 0 for identical images. Not comparable with
// published LPIPS values (other network, no calibration). Images in [0,1] at the classifier's size.
torch::Tensor feature_distance(ClassifierImpl& net, const torch::Tensor& images, const torch::Tensor& reference);


}  // namespace retort
