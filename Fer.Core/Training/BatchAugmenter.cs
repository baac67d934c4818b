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
            if (augmentation.CropMargin > 0)
            {
                // A whole-pixel move (2 units span the side): the crop the model takes is a true crop, not resampled.
                shiftX += 2.0 * (random.NextInt(2 * augmentation.CropMargin + 1) - augmentation.CropMargin) / images.shape[3];
                shiftY += 2.0 * (random.NextInt(2 * augmentation.CropMargin + 1) - augmentation.CropMargin) / images.shape[2];
            }
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
        if (augmentation.EraseProbability > 0)
            warped = warped.mul(EraseMask(n, (int)images.shape[2], (int)images.shape[3], augmentation.EraseProbability, random).to(images.dtype).to(images.device));
        return warped.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Random erasing as one multiplicative mask [N, 1, H, W] (torchvision's RandomErasing: with probability p, a rectangle
    /// of 2-33 % of the area and aspect ratio 0.3-3.3, up to 10 tries to fit it, set to 0), drawn from the batch's keyed
    /// random numbers: the whole batch is erased by one tensor product, not image by image.
    /// </summary>
    internal static Tensor EraseMask(int n, int height, int width, double probability, KeyedRandom random)
    {
        var mask = new float[n * height * width];
        Array.Fill(mask, 1f);
        for (int i = 0; i < n; i++)
        {
            if (random.NextDouble() >= probability) continue;
            for (int attempt = 0; attempt < 10; attempt++)
            {
                double area = height * width * (0.02 + 0.31 * random.NextDouble());
                double aspect = Math.Exp(Math.Log(0.3) + (Math.Log(3.3) - Math.Log(0.3)) * random.NextDouble());
                int h = (int)Math.Round(Math.Sqrt(area * aspect)), w = (int)Math.Round(Math.Sqrt(area / aspect));
                if (h < 1 || w < 1 || h >= height || w >= width) continue;
                int top = (int)(random.NextDouble() * (height - h + 1)), left = (int)(random.NextDouble() * (width - w + 1));
                for (int y = top; y < top + h; y++)
                    Array.Fill(mask, 0f, i * height * width + y * width + left, w);
                break;
            }
        }
        return tensor(mask, [n, 1, height, width]);
    }
}
