using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Fer.Core.Explain.ExplainSupport;

namespace Fer.Core.Explain;

/// <summary>
/// Images with all but a kept set of pixels blanked, and the model's prediction before and after.
/// Confidences are softmax probabilities of the predicted class. <see cref="KeptPredictionRate"/> is the share of
/// images whose predicted class is the same after masking.
/// </summary>
public sealed record MaskingResult(float[] MaskedImages, int[] OriginalPrediction, float[] OriginalConfidence,
    int[] MaskedPrediction, float[] MaskedConfidence, double KeptPredictionRate)
{
    /// <summary>The share of each image's pixels that was kept.</summary>
    public double KeepFraction { get; init; }

    /// <summary>Which pixels were kept ("top saliency", "random").</summary>
    public string Selection { get; init; } = "";
}

/// <summary>
/// The seed report's "mask the low-saliency part" check, made into a measurement: keep the top keepFraction of
/// each image's pixels by saliency, blank the rest and predict again; compare with keeping as many random pixels.
/// Blanked pixels are set to the mean of that image's pixels (what the course's sample code did): a neutral grey of
/// the image's own brightness, which removes the information without adding the strong artificial edges and the
/// out-of-range darkness a fill with 0 (black) would add.
/// </summary>
public static class SaliencyMasking
{
    private const int PredictBatch = 256;

    public static MaskingResult MaskTop(FerModel model, Tensor images, SaliencyResult saliency, double keepFraction = 0.3)
    {
        var (count, side) = CheckImages(model, images, nameof(images));
        CheckFraction(keepFraction);
        if (saliency.Count != count || saliency.Side != side || saliency.Maps.Length != count * side * side)
            throw new ArgumentException(
                $"saliency holds {saliency.Count} maps of {saliency.Side} px for {count} images of {side} px", nameof(saliency));
        int pixels = side * side;
        int keep = KeptPixels(keepFraction, pixels);
        var order = new int[pixels];
        var keys = new float[pixels];
        return Mask(model, images, keepFraction, "top saliency", (image, kept) =>
        {
            var map = saliency.Map(image);
            for (int p = 0; p < pixels; p++) { order[p] = p; keys[p] = -map[p]; }
            // Sort by descending saliency; ties go to the lower pixel index, so the selection is deterministic.
            Array.Sort(keys, order);
            SortTiesByIndex(keys, order);
            for (int k = 0; k < keep; k++) kept[order[k]] = true;
        });
    }

    /// <summary>The baseline: keep as many pixels as <see cref="MaskTop"/> does, at random positions that depend only
    /// on (seed, image index).</summary>
    public static MaskingResult MaskRandom(FerModel model, Tensor images, double keepFraction, long seed)
    {
        var (_, side) = CheckImages(model, images, nameof(images));
        CheckFraction(keepFraction);
        int pixels = side * side;
        int keep = KeptPixels(keepFraction, pixels);
        var order = new int[pixels];
        return Mask(model, images, keepFraction, "random", (image, kept) =>
        {
            for (int p = 0; p < pixels; p++) order[p] = p;
            var random = new Random(MixToInt(seed, image));
            // Partial Fisher-Yates: the first `keep` entries become a uniform random subset.
            for (int k = 0; k < keep; k++)
            {
                int j = random.Next(k, pixels);
                (order[k], order[j]) = (order[j], order[k]);
                kept[order[k]] = true;
            }
        });
    }

    private static MaskingResult Mask(FerModel model, Tensor images, double keepFraction, string selection,
        Action<int, bool[]> chooseKept)
    {
        var (count, side) = CheckImages(model, images, nameof(images));
        int pixels = side * side;
        var original = ToFloats(images);
        var masked = new float[original.Length];
        var kept = new bool[pixels];
        for (int image = 0; image < count; image++)
        {
            var source = original.AsSpan(image * pixels, pixels);
            var target = masked.AsSpan(image * pixels, pixels);
            double sum = 0;
            foreach (var v in source) sum += v;
            float fill = (float)(sum / pixels);
            Array.Clear(kept);
            chooseKept(image, kept);
            for (int p = 0; p < pixels; p++) target[p] = kept[p] ? source[p] : fill;
        }

        using var eval = new EvalModeScope(model);
        using var scope = torch.NewDisposeScope();
        var (originalPrediction, originalConfidence) = PredictWithConfidence(model, images);
        var maskedTensor = torch.tensor(masked, [count, 1, side, side]).to(images.dtype);
        var (maskedPrediction, maskedConfidence) = PredictWithConfidence(model, maskedTensor);
        int same = 0;
        for (int i = 0; i < count; i++) if (originalPrediction[i] == maskedPrediction[i]) same++;
        return new MaskingResult(masked, originalPrediction, originalConfidence, maskedPrediction, maskedConfidence,
            (double)same / count)
        { KeepFraction = keepFraction, Selection = selection };
    }

    private static (int[] Prediction, float[] Confidence) PredictWithConfidence(FerModel model, Tensor images)
    {
        int count = (int)images.shape[0];
        var prediction = new int[count];
        var confidence = new float[count];
        var device = ModelDevice(model);
        for (int start = 0; start < count; start += PredictBatch)
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            int n = Math.Min(PredictBatch, count - start);
            var probabilities = torch.nn.functional.softmax(model.call(images.narrow(0, start, n).to(device)), 1);
            var (best, index) = probabilities.max(1);
            ToFloats(best).CopyTo(confidence, start);
            var indices = index.cpu().data<long>().ToArray();
            for (int i = 0; i < n; i++) prediction[start + i] = (int)indices[i];
        }
        return (prediction, confidence);
    }

    private static int KeptPixels(double keepFraction, int pixels) =>
        Math.Clamp((int)Math.Round(keepFraction * pixels), 0, pixels);

    private static void CheckFraction(double keepFraction)
    {
        if (!(keepFraction >= 0 && keepFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(keepFraction), "keepFraction must be in 0..1");
    }
}
