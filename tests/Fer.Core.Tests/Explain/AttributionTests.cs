using Fer.Core.Explain;
using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Explain;

public class AttributionTests
{
    private static Tensor RandomImages(int count, int side, long seed, ScalarType dtype = ScalarType.Float32)
    {
        var generator = new torch.Generator((ulong)seed, torch.CPU);
        return torch.rand([count, 1, side, side], generator: generator).to(dtype);
    }

    /// <summary>
    /// Completeness on a small random ReLU net in double precision: the midpoint rule's error comes from the path
    /// crossing ReLU and max-pool kinks, so it shrinks as steps grow (to under 1% at 256 steps on these images).
    /// The 1%-at-64-steps check on a trained CNN is in <see cref="EvidenceMaskTests"/>.
    /// </summary>
    [Theory]
    [InlineData(IgBaseline.Black)]
    [InlineData(IgBaseline.Mean)]
    [InlineData(IgBaseline.Blurred)]
    public void IntegratedGradientsConvergeToCompleteness(IgBaseline baseline)
    {
        using var model = new TinyCnn(side: 8, numClasses: 3, seed: 21);
        model.to(ScalarType.Float64);
        model.SetInputNormalization(0.4f, 0.3f);
        using var images = RandomImages(4, 8, seed: 3, ScalarType.Float64);
        var coarse = Attributions.IntegratedGradientsRaw(model, images, steps: 8, baseline);
        var fine = Attributions.IntegratedGradientsRaw(model, images, steps: 256, baseline, coarse.TargetClasses);
        double coarseError = Enumerable.Range(0, 4).Average(coarse.CompletenessError);
        // The relative error is ill-conditioned where the score hardly moves; those images are left out (at most two).
        var moving = Enumerable.Range(0, 4).Where(i => Math.Abs(fine.ImageScore[i] - fine.BaselineScore[i]) > 0.05).ToArray();
        Assert.True(moving.Length >= 2, $"only {moving.Length} images move the score");
        foreach (var i in moving)
        {
            double delta = fine.ImageScore[i] - fine.BaselineScore[i];
            Assert.True(fine.CompletenessError(i) < 0.01,
                $"image {i}: sum {fine.AttributionSum(i):0.0000} vs score difference {delta:0.0000} ({fine.CompletenessError(i):P2})");
        }
        Assert.True(Enumerable.Range(0, 4).Average(fine.CompletenessError) < coarseError, "more steps did not help");
    }

    [Fact]
    public void IntegratedGradientsOfALinearModelAreWeightTimesInputExactly()
    {
        using var model = new LinearModel(side: 4, classes: 2, seed: 4);
        using var images = RandomImages(2, 4, seed: 9);
        var result = Attributions.IntegratedGradientsRaw(model, images, steps: 3, IgBaseline.Black, [1, 0]);
        var weights = model.Weights();
        var pixels = images.reshape(2, 16).data<float>().ToArray();
        for (int i = 0; i < 2; i++)
        {
            int target = result.TargetClasses[i];
            for (int p = 0; p < 16; p++)
                Assert.Equal(weights[target, p] * pixels[i * 16 + p], result.Attributions[i * 16 + p], 5);
        }
    }

    [Fact]
    public void BatchedIntegratedGradientsEqualOneImageAtATime()
    {
        using var model = new TinyCnn(side: 8, numClasses: 3, seed: 22);
        using var images = RandomImages(6, 8, seed: 4);
        var all = Attributions.IntegratedGradientsRaw(model, images, steps: 48);
        for (int i = 0; i < 6; i++)
        {
            var one = Attributions.IntegratedGradientsRaw(model, images.narrow(0, i, 1), steps: 48, targetClasses: [all.TargetClasses[i]]);
            for (int p = 0; p < 64; p++) Assert.Equal(one.Attributions[p], all.Attributions[i * 64 + p], 4);
        }
    }

    /// <summary>
    /// A 2x2 image, flattened, through dense_1 = ReLU(W1 x + b1) (3 hidden units) and dense_2 = W2 h. By hand, for
    /// x = (1, 2, 3, 4): W1 x + b1 = (1-2+0+4, -1+2+3+0, 0+0+0+4-5) = (3, 4, -1): units 0 and 1 are active, unit 2 is
    /// not. The logit of class 0 has W2[0] = (1, -2, 3). Vanilla gradient: W2[0] masked by activity = (1, -2, 0) through
    /// W1: 1*(1,-1,0,1) - 2*(-1,1,1,0) = (3, -3, -2, 1). Guided backprop also drops the negative gradient -2 at unit 1:
    /// (1, 0, 0) through W1 = (1, -1, 0, 1).
    /// </summary>
    [Fact]
    public void GuidedBackpropOfATinyReluNetMatchesTheHandComputedGradient()
    {
        using var model = new TwoLayerRelu();
        using var image = torch.tensor(new float[] { 1, 2, 3, 4 }, [1, 1, 2, 2]);
        var vanilla = Saliency.RawGradient(model, image, [0]);
        var guided = Attributions.GuidedGradient(model, image, [0]);
        Assert.Equal(new float[] { 3, -3, -2, 1 }, vanilla);
        Assert.Equal(new float[] { 1, -1, 0, 1 }, guided);
        // Class 1 has W2[1] = (-1, 1, 1): guided keeps unit 1 only (unit 0's gradient is negative, unit 2 is off).
        Assert.Equal(new float[] { -1, 1, 1, 0 }, Attributions.GuidedGradient(model, image, [1]));
    }

    [Fact]
    public void GuidedGradCamIsGuidedBackpropTimesGradCam()
    {
        using var model = new TinyCnn(side: 8, numClasses: 3, seed: 23);
        using var images = RandomImages(3, 8, seed: 5);
        int[] targets = [0, 1, 2];
        var cam = Saliency.GradCam(model, images, "conv2d_1", targets);
        var guided = Attributions.GuidedGradient(model, images, targets);
        var combined = Attributions.GuidedGradCam(model, images, "conv2d_1", targets);
        int checkedImages = 0;
        for (int i = 0; i < 3; i++)
        {
            var expected = Enumerable.Range(0, 64).Select(p => Math.Abs(guided[i * 64 + p]) * cam.Maps[i * 64 + p]).ToArray();
            double max = expected.Max(), min = expected.Min();
            if (!(max > min))
            {
                // Grad-CAM's ReLU can leave nothing for a class no channel supports: then the product is 0 as well.
                Assert.All(combined.Map(i).ToArray(), v => Assert.Equal(0f, v));
                continue;
            }
            checkedImages++;
            for (int p = 0; p < 64; p++) Assert.Equal((expected[p] - min) / (max - min), combined.Maps[i * 64 + p], 4);
        }
        Assert.True(checkedImages >= 2, $"only {checkedImages} images had a Grad-CAM map");
    }

    /// <summary>For a linear model and a 1x1 patch, occluding pixel p with the image mean m lowers the logit by
    /// w_p (x_p - m): the occlusion map is that, rescaled to 0..1.</summary>
    [Fact]
    public void OcclusionOfALinearModelWithOnePixelPatchesIsWeightTimesDistanceToTheMean()
    {
        using var model = new LinearModel(side: 6, classes: 3, seed: 5);
        using var images = RandomImages(2, 6, seed: 6);
        var map = Attributions.Occlusion(model, images, patch: 1, stride: 1, targetClasses: [2, 0]);
        var weights = model.Weights();
        var pixels = images.reshape(2, 36).data<float>().ToArray();
        for (int i = 0; i < 2; i++)
        {
            float mean = pixels.Skip(i * 36).Take(36).Average();
            var drop = Enumerable.Range(0, 36).Select(p => weights[map.TargetClasses[i], p] * (pixels[i * 36 + p] - mean)).ToArray();
            float min = drop.Min(), max = drop.Max();
            for (int p = 0; p < 36; p++) Assert.Equal((drop[p] - min) / (max - min), map.Maps[i * 36 + p], 3);
        }
    }

    [Fact]
    public void OcclusionPatchesCoverEveryPixel()
    {
        Assert.Equal(new[] { 0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40 }, Attributions.PatchPositions(48, 8, 4));
        Assert.Equal(new[] { 0, 6, 12, 18, 24, 30, 36, 40 }, Attributions.PatchPositions(48, 8, 6));
        Assert.Equal(new[] { 0 }, Attributions.PatchPositions(8, 8, 3));
    }

    [Fact]
    public void EigenCamIsTheSameForEveryClassAndFollowsTheDominantActivationPattern()
    {
        using var model = new TinyCnn(side: 8, numClasses: 3, seed: 24);
        using var images = RandomImages(3, 8, seed: 7);
        var a = Attributions.EigenCam(model, images, "conv2d_1");
        Assert.All(a.Maps, v => Assert.InRange(v, 0f, 1f));
        // The first principal direction of the activations and the map: the map correlates positively with the
        // summed activation (the sign convention) for each image.
        using var noGrad = torch.no_grad();
        var summed = model.ForwardTo("conv2d_1", images).sum(1).reshape(3, 64).data<float>().ToArray();
        for (int i = 0; i < 3; i++)
            Assert.True(SanityCheck.Spearman(a.Map(i), summed.AsSpan(i * 64, 64)) > 0, $"image {i}");
    }

    [Fact]
    public void EveryRegisteredMethodGivesUnitMapsThatDoNotDependOnTheBatch()
    {
        using var model = new TinyCnn(side: 8, numClasses: 3, seed: 25);
        using var images = RandomImages(4, 8, seed: 8);
        var settings = new AttributionSettings { CamLayer = "conv2d_2", IgSteps = 16, SmoothGradSamples = 4, OcclusionPatch = 2, OcclusionStride = 2 };
        foreach (var method in AttributionMethods.All)
        {
            var all = method.Explain(model, images, settings);
            Assert.Equal(4 * 64, all.Maps.Length);
            Assert.All(all.Maps, v => Assert.InRange(v, 0f, 1f));
            // SmoothGrad's noise depends on the image index, so only the first image is compared alone.
            var one = method.Explain(model, images.narrow(0, 0, 1), settings, [all.TargetClasses[0]]);
            for (int p = 0; p < 64; p++) Assert.True(Math.Abs(one.Maps[p] - all.Maps[p]) < 1e-3, $"{method.Name} pixel {p}: {one.Maps[p]} vs {all.Maps[p]}");
        }
    }

    [Fact]
    public void AnUnknownMethodNameListsTheKnownOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => AttributionMethods.Get("magic"));
        Assert.Contains("integrated_gradients", e.Message);
        Assert.Contains("eigencam", e.Message);
        Assert.Equal(AttributionMethods.Names.Count, AttributionMethods.Names.Distinct().Count());
    }

    /// <summary>logits = W flatten(x): gradients and occlusion drops known in closed form.</summary>
    private sealed class LinearModel : FerModel
    {
        private readonly nn.Module<Tensor, Tensor> flatten_1, dense_1;
        private readonly List<NamedLayer> _layers;

        public LinearModel(int side, int classes, long seed) : base("linear")
        {
            InputSide = side;
            NumClasses = classes;
            flatten_1 = nn.Flatten();
            dense_1 = nn.Linear(side * side, classes, hasBias: false);
            RegisterComponents();
            _layers = [new("flatten_1", "Flatten", flatten_1), new("dense_1", "Dense", dense_1)];
            TinyModels.InitialiseDeterministically(this, seed);
        }

        public float[,] Weights()
        {
            var w = ((TorchSharp.Modules.Linear)dense_1).weight!;
            var values = w.data<float>().ToArray();
            var result = new float[NumClasses, InputSide * InputSide];
            for (int c = 0; c < NumClasses; c++)
                for (int p = 0; p < InputSide * InputSide; p++) result[c, p] = values[c * InputSide * InputSide + p];
            return result;
        }

        public override IReadOnlyList<NamedLayer> Layers => _layers;
        public override int InputSide { get; }
        public override int NumClasses { get; }
    }

    private sealed class TwoLayerRelu : FerModel
    {
        private readonly nn.Module<Tensor, Tensor> flatten_1, dense_1, dense_2;
        private readonly List<NamedLayer> _layers;

        public TwoLayerRelu() : base("two_layer_relu")
        {
            var hidden = nn.Linear(4, 3);
            var output = nn.Linear(3, 2, hasBias: false);
            flatten_1 = nn.Flatten();
            dense_1 = nn.Sequential(hidden, nn.ReLU());
            dense_2 = output;
            RegisterComponents();
            _layers = [new("flatten_1", "Flatten", flatten_1), new("dense_1", "Dense", dense_1), new("dense_2", "Dense", dense_2)];
            using var noGrad = torch.no_grad();
            hidden.weight!.copy_(torch.tensor(new float[] { 1, -1, 0, 1, -1, 1, 1, 0, 0, 0, 0, 1 }, [3, 4]));
            hidden.bias!.copy_(torch.tensor(new float[] { 0, 0, -5 }));
            output.weight!.copy_(torch.tensor(new float[] { 1, -2, 3, -1, 1, 1 }, [2, 3]));
        }

        public override IReadOnlyList<NamedLayer> Layers => _layers;
        public override int InputSide => 2;
        public override int NumClasses => 2;
    }
}
