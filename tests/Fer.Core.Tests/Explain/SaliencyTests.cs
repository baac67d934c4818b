using Fer.Core.Explain;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Explain;

public class SaliencyTests
{
    private static Tensor RandomImages(int count, int side, long seed, ScalarType dtype = ScalarType.Float32)
    {
        var generator = new torch.Generator((ulong)seed, torch.CPU);
        return torch.rand([count, 1, side, side], generator: generator).to(dtype);
    }

    [Fact]
    public void RawGradientEqualsCentralFiniteDifferencesInDoublePrecision()
    {
        using var model = new TinyCnn(side: 8, numClasses: 3, seed: 11);
        model.to(ScalarType.Float64);
        model.SetInputNormalization(0.4f, 0.3f); // the gradient must include the model's own normalisation
        using var images = RandomImages(2, 8, seed: 5, ScalarType.Float64);
        int[] targets = [2, 0];

        var gradient = Saliency.RawGradient(model, images, targets);

        const double step = 1e-6;
        int checkedPixels = 0;
        foreach (var (image, pixel) in new[] { (0, 0), (0, 9), (0, 27), (0, 63), (1, 18), (1, 36), (1, 45), (1, 50) })
        {
            double Score(double delta)
            {
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                var moved = images.clone();
                var flat = moved.view(2, 64);
                flat[image, pixel] = flat[image, pixel] + delta;
                return model.call(moved)[image, targets[image]].item<double>();
            }
            double finiteDifference = (Score(step) - Score(-step)) / (2 * step);
            double analytic = gradient[image * 64 + pixel];
            Assert.True(Math.Abs(analytic - finiteDifference) <= 1e-5 + 1e-4 * Math.Abs(finiteDifference),
                $"image {image} pixel {pixel}: autograd {analytic}, finite difference {finiteDifference}");
            checkedPixels += finiteDifference != 0 ? 1 : 0;
        }
        Assert.True(checkedPixels >= 6, "most checked pixels should have a non-zero gradient");
    }

    [Fact]
    public void VanillaIsTheAbsoluteGradientRescaledPerImage()
    {
        using var model = new TinyCnn(side: 8, numClasses: 3, seed: 12);
        using var images = RandomImages(3, 8, seed: 6);
        int[] targets = [1, 1, 2];
        var raw = Saliency.RawGradient(model, images, targets);
        var vanilla = Saliency.Vanilla(model, images, targets);

        Assert.Equal(targets, vanilla.TargetClasses);
        for (int i = 0; i < 3; i++)
        {
            var magnitude = raw.AsSpan(i * 64, 64).ToArray().Select(Math.Abs).ToArray();
            float min = magnitude.Min(), max = magnitude.Max();
            for (int p = 0; p < 64; p++)
                Assert.Equal((magnitude[p] - min) / (max - min), vanilla.Maps[i * 64 + p], 5);
            Assert.Equal(1f, vanilla.Map(i).ToArray().Max(), 6);
            Assert.Equal(0f, vanilla.Map(i).ToArray().Min(), 6);
        }
    }

    [Fact]
    public void DefaultTargetIsThePredictedClass()
    {
        using var model = new TinyCnn(side: 12, numClasses: 4, seed: 13);
        using var images = RandomImages(6, 12, seed: 7);
        int[] predicted;
        using (torch.no_grad())
        using (var logits = model.call(images))
        using (var argmax = logits.argmax(1))
            predicted = argmax.data<long>().Select(v => (int)v).ToArray();

        Assert.Equal(predicted, Saliency.Vanilla(model, images).TargetClasses);
        Assert.Equal(predicted, Saliency.GradCam(model, images, "conv2d_2").TargetClasses);
        Assert.Equal(predicted, Saliency.SmoothGrad(model, images, samples: 3).TargetClasses);
    }

    [Fact]
    public void BatchedMapsEqualMapsOfEachImageAlone()
    {
        using var model = new TinyCnn(side: 12, numClasses: 3, seed: 14);
        using var images = RandomImages(5, 12, seed: 8);
        int[] targets = [0, 1, 2, 1, 0];
        var vanilla = Saliency.Vanilla(model, images, targets);
        var gradCam = Saliency.GradCam(model, images, "conv2d_2", targets);
        for (int i = 0; i < 5; i++)
        {
            using var one = images.narrow(0, i, 1);
            var alone = Saliency.Vanilla(model, one, [targets[i]]);
            var camAlone = Saliency.GradCam(model, one, "conv2d_2", [targets[i]]);
            for (int p = 0; p < 144; p++)
            {
                Assert.Equal(alone.Maps[p], vanilla.Maps[i * 144 + p], 4);
                Assert.Equal(camAlone.Maps[p], gradCam.Maps[i * 144 + p], 4);
            }
        }
    }

    [Fact]
    public void SmoothGradWithoutNoiseIsVanillaAndIsReproducibleWithNoise()
    {
        using var model = new TinyCnn(side: 12, numClasses: 3, seed: 15);
        using var images = RandomImages(7, 12, seed: 9);
        var vanilla = Saliency.Vanilla(model, images);
        // 40 samples: 3 images per pass, so this also runs over several passes.
        var noiseless = Saliency.SmoothGrad(model, images, samples: 40, noiseStd: 0);
        for (int k = 0; k < vanilla.Maps.Length; k++) Assert.Equal(vanilla.Maps[k], noiseless.Maps[k], 4);

        var first = Saliency.SmoothGrad(model, images, samples: 10, noiseStd: 0.2, seed: 3);
        var again = Saliency.SmoothGrad(model, images, samples: 10, noiseStd: 0.2, seed: 3);
        var otherSeed = Saliency.SmoothGrad(model, images, samples: 10, noiseStd: 0.2, seed: 4);
        Assert.Equal(first.Maps, again.Maps);
        Assert.True(first.Maps.Zip(otherSeed.Maps).Max(p => Math.Abs(p.First - p.Second)) > 1e-3);
        Assert.True(first.Maps.Zip(vanilla.Maps).Max(p => Math.Abs(p.First - p.Second)) > 1e-3);
    }

    [Fact]
    public void GradCamIsNonNegativeUpsampledAndRescaled()
    {
        using var model = new TinyCnn(side: 12, numClasses: 3, seed: 16);
        using var images = RandomImages(4, 12, seed: 10);
        var cam = Saliency.GradCam(model, images, "conv2d_2");
        Assert.Equal(12, cam.Side);
        Assert.Equal(4 * 144, cam.Maps.Length);
        Assert.All(cam.Maps, v => Assert.InRange(v, 0f, 1f));
        for (int i = 0; i < 4; i++)
        {
            float max = cam.Map(i).ToArray().Max();
            Assert.True(max == 1f || max == 0f, $"image {i}: max {max}");
        }
        Assert.Contains("conv2d_2", cam.Method);
    }

    [Fact]
    public void ExplanationsRestoreTrainingModeAndLeaveNoParameterGradients()
    {
        using var model = new TinyCnn(side: 12, numClasses: 3, seed: 17);
        using var images = RandomImages(3, 12, seed: 11);
        foreach (bool training in new[] { true, false })
        {
            model.train(training);
            Saliency.Vanilla(model, images);
            Assert.Equal(training, model.training);
            Saliency.SmoothGrad(model, images, samples: 4);
            Assert.Equal(training, model.training);
            Saliency.GradCam(model, images, "conv2d_1");
            Assert.Equal(training, model.training);
            Saliency.RawGradient(model, images, [0, 1, 2]);
            Assert.Equal(training, model.training);
            Assert.All(model.parameters(), p => Assert.True(p.grad is null, "a parameter got a gradient"));
        }
    }

    [Fact]
    public void WorksInsideNoGradBlocksOfTheCaller()
    {
        using var model = new TinyCnn(side: 12, numClasses: 3, seed: 18);
        using var images = RandomImages(2, 12, seed: 12);
        using var noGrad = torch.no_grad();
        Assert.Contains(Saliency.Vanilla(model, images).Maps, v => v > 0);
        Assert.Contains(Saliency.GradCam(model, images, "conv2d_2").Maps, v => v >= 0);
    }

    [Fact]
    public void UnknownOrUnsuitableLayerIsAnArgumentExceptionNamingTheValidLayers()
    {
        using var model = new TinyCnn(side: 12, numClasses: 3, seed: 19);
        using var images = RandomImages(2, 12, seed: 13);
        var unknown = Assert.Throws<ArgumentException>(() => Saliency.GradCam(model, images, "conv2d_9"));
        Assert.Contains("conv2d_9", unknown.Message);
        Assert.Contains("conv2d_1", unknown.Message);
        Assert.Contains("max_pooling2d_2", unknown.Message);
        Assert.Contains("dense_1", unknown.Message);
        var flat = Assert.Throws<ArgumentException>(() => Saliency.GradCam(model, images, "flatten_1"));
        Assert.Contains("spatial", flat.Message);
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        using var model = new TinyCnn(side: 12, numClasses: 3, seed: 20);
        using var images = RandomImages(2, 12, seed: 14);
        using var wrongSide = RandomImages(2, 8, seed: 14);
        Assert.Throws<ArgumentException>(() => Saliency.Vanilla(model, wrongSide));
        Assert.Throws<ArgumentException>(() => Saliency.Vanilla(model, images, [0]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Saliency.Vanilla(model, images, [0, 3]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Saliency.SmoothGrad(model, images, samples: 0));
    }
}
