using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Explain;

/// <summary>Puts a model into eval mode and gives its previous training mode back on dispose.</summary>
internal sealed class EvalModeScope : IDisposable
{
    private readonly FerModel _model;
    private readonly bool _wasTraining;

    public EvalModeScope(FerModel model)
    {
        _model = model;
        _wasTraining = model.training;
        model.eval();
    }

    public void Dispose() => _model.train(_wasTraining);
}

internal static class ExplainSupport
{
    /// <summary>The device the model's tensors live on (every FerModel has its normalisation buffers).</summary>
    public static Device ModelDevice(FerModel model) => model.buffers().First().device;

    /// <summary>Checks an image batch is [N, 1, S, S] with S the model's side.</summary>
    public static (int Count, int Side) CheckImages(FerModel model, Tensor images, string paramName)
    {
        if (images.dim() != 4 || images.shape[1] != 1 || images.shape[2] != images.shape[3])
            throw new ArgumentException($"images must be [N, 1, S, S]; got [{string.Join(", ", images.shape)}]", paramName);
        if (images.shape[2] != model.InputSide)
            throw new ArgumentException($"images are {images.shape[2]} px but the model takes {model.InputSide} px", paramName);
        if (images.shape[0] == 0)
            throw new ArgumentException("images must hold at least one image", paramName);
        return ((int)images.shape[0], (int)images.shape[2]);
    }

    public static void CheckTargets(FerModel model, int[] targets, int count, string paramName)
    {
        if (targets.Length != count)
            throw new ArgumentException($"{targets.Length} target classes for {count} images", paramName);
        foreach (var t in targets)
            if (t < 0 || t >= model.NumClasses)
                throw new ArgumentOutOfRangeException(paramName, $"target class {t} outside 0..{model.NumClasses - 1}");
    }

    /// <summary>
    /// A class-activation map [N, 1, h, w] bilinearly upsampled onto the input's pixels [N, 1, side, side]. For a model
    /// that crops its input's centre (<see cref="FerModel.CropMargin"/>) the feature maps cover that centre only: the
    /// map is upsampled onto it and the margin, which the model never sees, takes the map's lowest value (0 after
    /// normalisation).
    /// </summary>
    public static Tensor UpsampleToInput(Tensor cam, int side, int cropMargin)
    {
        int seen = side - 2 * cropMargin;
        var upsampled = torch.nn.functional.interpolate(cam, size: [seen, seen], mode: InterpolationMode.Bilinear, align_corners: false);
        if (cropMargin == 0) return upsampled;
        var lowest = upsampled.amin([2, 3], keepdim: true);
        return torch.nn.functional.pad(upsampled - lowest, [cropMargin, cropMargin, cropMargin, cropMargin]) + lowest;
    }

    /// <summary>A tensor's values as floats on the host, whatever its dtype and device.</summary>
    public static float[] ToFloats(Tensor t)
    {
        using var scope = torch.NewDisposeScope();
        return t.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
    }

    /// <summary>Rescales each of the <paramref name="count"/> consecutive maps of <paramref name="size"/> values
    /// to 0..1 (min-max, as keras-vis does); a constant map becomes <paramref name="constantValue"/>.</summary>
    public static void NormalisePerMap(float[] values, int count, int size, float constantValue = 0f)
    {
        for (int i = 0; i < count; i++)
        {
            var map = values.AsSpan(i * size, size);
            float min = float.PositiveInfinity, max = float.NegativeInfinity;
            foreach (var v in map) { if (v < min) min = v; if (v > max) max = v; }
            float range = max - min;
            if (!(range > 1e-12f) || float.IsInfinity(range)) { map.Fill(constantValue); continue; }
            for (int k = 0; k < map.Length; k++) map[k] = (map[k] - min) / range;
        }
    }

    /// <summary>SplitMix64 of a seed and a stream index: independent, reproducible sub-seeds, so a random
    /// draw can depend only on (seed, index) and not on how work is batched.</summary>
    public static ulong Mix(long seed, long index, long salt = 0)
    {
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)index * 0xBF58476D1CE4E5B9UL + (ulong)salt * 0x94D049BB133111EBUL + 0x632BE59BD9B4E019UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }

    /// <summary>An int seed for System.Random derived from (seed, index, salt).</summary>
    public static int MixToInt(long seed, long index, long salt = 0) => (int)(Mix(seed, index, salt) & 0x7FFFFFFF);

    /// <summary>A normalised 2-D Gaussian kernel [1, 1, k, k] of standard deviation <paramref name="sigma"/> px,
    /// radius ceil(3 sigma) (at least 1).</summary>
    public static Tensor GaussianKernel(double sigma, ScalarType dtype, Device device)
    {
        int radius = Math.Max(1, (int)Math.Ceiling(3 * sigma));
        var weights = new double[2 * radius + 1];
        for (int i = -radius; i <= radius; i++) weights[i + radius] = Math.Exp(-i * i / (2 * sigma * sigma));
        double sum = weights.Sum();
        var oneD = torch.tensor(weights.Select(w => w / sum).ToArray(), dtype: dtype, device: device);
        return torch.outer(oneD, oneD).view(1, 1, 2 * radius + 1, 2 * radius + 1);
    }

    /// <summary>Convolves [N, 1, S, S] images with a [1, 1, k, k] kernel, reflecting at the borders (needs k/2 &lt; S).</summary>
    public static Tensor Blur(Tensor image, Tensor kernel)
    {
        long radius = kernel.shape[2] / 2;
        var padded = torch.nn.functional.pad(image, [radius, radius, radius, radius], PaddingModes.Reflect);
        return torch.nn.functional.conv2d(padded, kernel);
    }

    /// <summary>Softmax probability of each image's target class, in batches of <paramref name="batch"/> rows, no grad.</summary>
    public static float[] TargetProbabilities(FerModel model, Tensor images, int[] targets, int batch = 256) =>
        TargetScores(model, images, targets, batch, probabilities: true);

    /// <summary>The target logit of each image, in batches, no grad.</summary>
    public static float[] TargetLogits(FerModel model, Tensor images, int[] targets, int batch = 256) =>
        TargetScores(model, images, targets, batch, probabilities: false);

    private static float[] TargetScores(FerModel model, Tensor images, int[] targets, int batch, bool probabilities)
    {
        int count = (int)images.shape[0];
        var result = new float[count];
        var device = ModelDevice(model);
        for (int start = 0; start < count; start += batch)
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            int n = Math.Min(batch, count - start);
            var scores = model.call(images.narrow(0, start, n).to(device));
            if (probabilities) scores = torch.nn.functional.softmax(scores, 1);
            var index = torch.tensor(targets.AsSpan(start, n).ToArray().Select(t => (long)t).ToArray(), device: device).unsqueeze(1);
            ToFloats(scores.gather(1, index).squeeze(1)).CopyTo(result, start);
        }
        return result;
    }

    /// <summary>Array.Sort is not stable; within runs of equal keys, put the pixel indices in ascending order.</summary>
    public static void SortTiesByIndex(float[] keys, int[] order)
    {
        int runStart = 0;
        for (int i = 1; i <= keys.Length; i++)
        {
            if (i < keys.Length && keys[i] == keys[runStart]) continue;
            if (i - runStart > 1) Array.Sort(order, runStart, i - runStart);
            runStart = i;
        }
    }

    /// <summary>The pixel indices of a map from most to least relevant; ties go to the lower index (deterministic).</summary>
    public static int[] RankPixels(ReadOnlySpan<float> map)
    {
        var order = new int[map.Length];
        var keys = new float[map.Length];
        for (int p = 0; p < map.Length; p++) { order[p] = p; keys[p] = -map[p]; }
        Array.Sort(keys, order);
        SortTiesByIndex(keys, order);
        return order;
    }
}
