using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Training;

/// <summary>Applies <see cref="OnlineAugmentation"/> to a batch with one affine warp per image (affine_grid + grid_sample).</summary>
public static class BatchAugmenter
{
    /// <summary>
    /// Returns a new tensor: each image of <paramref name="images"/> [N, C, H, W] shifted, rotated, zoomed and maybe
    /// mirrored. The random parameters are a pure function of (seed, epoch, batch) and the image's position in the
    /// batch, so a resumed run warps exactly as an uninterrupted one. Runs on the device of <paramref name="images"/>.
    /// </summary>
    public static Tensor Augment(Tensor images, OnlineAugmentation augmentation, long seed, int epoch, int batch)
    {
        if (images.dim() != 4) throw new ArgumentException($"expected [N, C, H, W], got [{string.Join(", ", images.shape)}]", nameof(images));
        int n = (int)images.shape[0];
        var theta = new float[n * 6];
        var random = new KeyedRandom(seed, 0x41_55_47 /* "AUG" */, epoch, batch);
        for (int i = 0; i < n; i++)
        {
            // affine_grid maps each output position (x, y in [-1, 1]) to the input position it samples:
            // input = R(angle) * diag(zoomX * flip, zoomY) * output + shift. A shift of f of the side is 2f in these units.
            double angle = random.NextSymmetric(augmentation.MaxRotationDegrees) * Math.PI / 180;
            double shiftX = 2 * random.NextSymmetric(augmentation.MaxShift);
            double shiftY = 2 * random.NextSymmetric(augmentation.MaxShift);
            double zoomX = 1 + random.NextSymmetric(augmentation.MaxZoom);
            double zoomY = 1 + random.NextSymmetric(augmentation.MaxZoom);
            double flip = augmentation.HorizontalFlip && random.NextDouble() < 0.5 ? -1 : 1;
            double cos = Math.Cos(angle), sin = Math.Sin(angle);
            theta[i * 6 + 0] = (float)(cos * zoomX * flip);
            theta[i * 6 + 1] = (float)(-sin * zoomY);
            theta[i * 6 + 2] = (float)shiftX;
            theta[i * 6 + 3] = (float)(sin * zoomX * flip);
            theta[i * 6 + 4] = (float)(cos * zoomY);
            theta[i * 6 + 5] = (float)shiftY;
        }
        using var scope = NewDisposeScope();
        var thetaTensor = tensor(theta, [n, 2, 3]).to(images.dtype).to(images.device);
        var grid = nn.functional.affine_grid(thetaTensor, images.shape, align_corners: false);
        var warped = nn.functional.grid_sample(images, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Border, align_corners: false);
        return warped.MoveToOuterDisposeScope();
    }
}
