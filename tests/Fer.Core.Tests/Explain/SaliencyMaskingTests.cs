using Fer.Core.Explain;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Explain;

public class SaliencyMaskingTests
{
    private const int Side = 12, Pixels = Side * Side;

    private static Tensor RandomImages(int count, long seed)
    {
        var generator = new torch.Generator((ulong)seed, torch.CPU);
        return torch.rand([count, 1, Side, Side], generator: generator);
    }

    private static int[] Predict(TinyCnn model, float[] images, int count)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        return model.call(torch.tensor(images, [count, 1, Side, Side])).argmax(1).data<long>().Select(v => (int)v).ToArray();
    }

    [Fact]
    public void MaskTopKeepsExactlyTheMostSalientPixelsAndFillsTheRestWithTheImageMean()
    {
        using var model = new TinyCnn(Side, numClasses: 3, seed: 21);
        using var images = RandomImages(3, seed: 1);
        var pixels = images.data<float>().ToArray();
        // A known ranking: image i's saliency grows with (pixel index + 37 i) mod Pixels.
        var maps = new float[3 * Pixels];
        for (int i = 0; i < 3; i++)
            for (int p = 0; p < Pixels; p++) maps[i * Pixels + p] = (p + 37 * i) % Pixels;
        var saliency = new SaliencyResult(maps, [0, 0, 0], Side);

        var result = SaliencyMasking.MaskTop(model, images, saliency, keepFraction: 0.25);

        int keep = Pixels / 4;
        for (int i = 0; i < 3; i++)
        {
            float mean = pixels.AsSpan(i * Pixels, Pixels).ToArray().Average();
            for (int p = 0; p < Pixels; p++)
            {
                bool top = (p + 37 * i) % Pixels >= Pixels - keep;
                float expected = top ? pixels[i * Pixels + p] : mean;
                Assert.Equal(expected, result.MaskedImages[i * Pixels + p], 5);
            }
        }
        Assert.Equal(Predict(model, pixels, 3), result.OriginalPrediction);
        Assert.Equal(Predict(model, result.MaskedImages, 3), result.MaskedPrediction);
        double kept = result.OriginalPrediction.Zip(result.MaskedPrediction).Count(p => p.First == p.Second) / 3.0;
        Assert.Equal(kept, result.KeptPredictionRate, 10);
        Assert.All(result.OriginalConfidence.Concat(result.MaskedConfidence), c => Assert.InRange(c, 1f / 3 - 1e-6f, 1f));
        Assert.Equal(0.25, result.KeepFraction);
    }

    [Fact]
    public void KeepingEverythingChangesNothing()
    {
        using var model = new TinyCnn(Side, numClasses: 3, seed: 22);
        using var images = RandomImages(4, seed: 2);
        var saliency = Saliency.Vanilla(model, images);
        var result = SaliencyMasking.MaskTop(model, images, saliency, keepFraction: 1.0);
        Assert.Equal(images.data<float>().ToArray(), result.MaskedImages);
        Assert.Equal(1.0, result.KeptPredictionRate);
        Assert.Equal(result.OriginalConfidence, result.MaskedConfidence);
    }

    [Fact]
    public void MaskRandomKeepsAsManyPixelsAtSeedDependentPlaces()
    {
        using var model = new TinyCnn(Side, numClasses: 3, seed: 23);
        using var images = RandomImages(4, seed: 3);
        var pixels = images.data<float>().ToArray();
        var first = SaliencyMasking.MaskRandom(model, images, 0.3, seed: 5);
        var again = SaliencyMasking.MaskRandom(model, images, 0.3, seed: 5);
        var other = SaliencyMasking.MaskRandom(model, images, 0.3, seed: 6);
        Assert.Equal(first.MaskedImages, again.MaskedImages);
        Assert.NotEqual(first.MaskedImages, other.MaskedImages);

        int keep = (int)Math.Round(0.3 * Pixels);
        for (int i = 0; i < 4; i++)
        {
            float mean = pixels.AsSpan(i * Pixels, Pixels).ToArray().Average();
            int unchanged = 0, filled = 0;
            for (int p = 0; p < Pixels; p++)
            {
                float value = first.MaskedImages[i * Pixels + p];
                if (value == pixels[i * Pixels + p]) unchanged++;
                else { Assert.Equal(mean, value, 5); filled++; }
            }
            // Random 0..1 pixels never equal the mean exactly, so unchanged pixels are exactly the kept ones.
            Assert.Equal(keep, unchanged);
            Assert.Equal(Pixels - keep, filled);
        }
        Assert.Equal(Predict(model, first.MaskedImages, 4), first.MaskedPrediction);
    }

    [Fact]
    public void MismatchedSaliencyIsRejected()
    {
        using var model = new TinyCnn(Side, numClasses: 3, seed: 24);
        using var images = RandomImages(2, seed: 4);
        var threeMaps = new SaliencyResult(new float[3 * Pixels], [0, 0, 0], Side);
        Assert.Throws<ArgumentException>(() => SaliencyMasking.MaskTop(model, images, threeMaps));
        var twoMaps = new SaliencyResult(new float[2 * Pixels], [0, 0], Side);
        Assert.Throws<ArgumentOutOfRangeException>(() => SaliencyMasking.MaskTop(model, images, twoMaps, 1.5));
    }
}
