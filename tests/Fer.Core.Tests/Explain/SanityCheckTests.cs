using Fer.Core.Explain;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Explain;

public class SanityCheckTests
{
    [Fact]
    public void SpearmanMatchesHandComputedRanksWithTies()
    {
        Assert.Equal(1.0, SanityCheck.Spearman(new float[] { 1, 2, 3, 4 }, new float[] { 10, 20, 30, 40 }), 12);
        Assert.Equal(-1.0, SanityCheck.Spearman(new float[] { 1, 2, 3, 4 }, new float[] { 4, 3, 2, 1 }), 12);
        // Ranks (0.5, 0.5, 2, 3) against (0, 1, 2, 3): Pearson of the ranks = 0.9486833
        Assert.Equal(0.9486833, SanityCheck.Spearman(new float[] { 5, 5, 6, 7 }, new float[] { 1, 2, 3, 4 }), 6);
        Assert.Equal(0.0, SanityCheck.Spearman(new float[] { 2, 2, 2 }, new float[] { 1, 2, 3 }), 12);
    }

    /// <summary>
    /// The image itself as a "map" ignores the model: it stays perfectly correlated after every layer is randomised
    /// and is flagged; the vanilla gradient of a trained model changes once the model is random. The weights are
    /// restored afterwards, bit for bit.
    /// </summary>
    [Fact]
    public void AMapThatIgnoresTheModelIsFlaggedAndTheWeightsComeBack()
    {
        using var model = new TinyCnn(side: 8, numClasses: 3, seed: 31);
        var generator = new torch.Generator(3, torch.CPU);
        using var images = torch.rand([4, 1, 8, 8], generator: generator);
        var labels = torch.tensor(new long[] { 0, 1, 2, 0 });
        TinyModels.Train(model, images, labels, epochs: 30, batchSize: 4, learningRate: 0.02, seed: 1);
        var before = model.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        // Trained weights are finite (oneDNN's faulty input gradients once trained this 4->6 convolution to NaN, and
        // NaN never equals itself, which made the restore check below fail with a misleading message).
        foreach (var (name, tensor) in before) Assert.False(tensor.isnan().any().item<bool>(), $"training left NaN in {name}");
        var imageItself = new AttributionMethod("image", "the image", false, false, (m, x, t, s) =>
            new SaliencyResult(x.reshape(x.shape[0], 64).data<float>().ToArray(), t ?? new int[x.shape[0]], 8));
        var methods = new[] { AttributionMethods.Get("saliency"), imageItself };
        var result = SanityCheck.CascadingRandomisation(model, images, methods, new AttributionSettings(), checkpoints: 3, seed: 2);

        Assert.Equal(3, result.WeightLayers); // conv2d_1, conv2d_2, dense_1
        Assert.Equal(["dense_1", "conv2d_2", "conv2d_1"], result.Steps.Select(s => s.Layer));
        Assert.Equal(1.0, result.FinalCorrelation("image"), 9);
        Assert.False(result.DependsOnModel("image"));
        Assert.True(result.FinalCorrelation("saliency") < 0.5, $"saliency correlation {result.FinalCorrelation("saliency"):0.000}");
        Assert.True(result.DependsOnModel("saliency"));
        foreach (var (name, tensor) in model.state_dict())
            Assert.True(tensor.eq(before[name]).all().item<bool>(), $"{name} was not restored");
    }

    /// <summary>The restore goes by name into the model's state as it is afterwards: a parameter a method swapped for
    /// another tensor gets its trained values back; one whose shape it changed cannot, and the sanity check says so,
    /// naming the tensor, instead of returning a model that is no longer the trained one.</summary>
    [Theory]
    [InlineData(3, false)]
    [InlineData(5, true)]
    public void AWeightSwappedByAMethodIsRestoredOrNamedInAnError(int swappedLength, bool unrestorable)
    {
        using var model = new TinyCnn(side: 8, numClasses: 3, seed: 31);
        using var images = torch.rand([2, 1, 8, 8], generator: new torch.Generator(3, torch.CPU));
        var dense = (TorchSharp.Modules.Linear)model.Layers.Single(l => l.Name == "dense_1").Module;
        var trainedBias = dense.bias!.detach().clone();
        var swapping = new AttributionMethod("swap", "swaps dense_1's bias", false, false, (m, x, t, s) =>
        {
            dense.bias = new TorchSharp.Modules.Parameter(torch.full([swappedLength], 7f));
            return new SaliencyResult(new float[x.shape[0] * 64], t ?? new int[x.shape[0]], 8);
        });
        var trained = new Dictionary<string, SaliencyResult> { ["swap"] = new(new float[2 * 64], new int[2], 8) };
        SanityResult Check() => SanityCheck.CascadingRandomisation(model, images, [swapping], new AttributionSettings(), checkpoints: 1, seed: 2, trained: trained);
        if (unrestorable)
        {
            var e = Assert.Throws<InvalidOperationException>(Check);
            Assert.Contains("dense_1.bias", e.Message);
            Assert.DoesNotContain("conv2d_1", e.Message);
        }
        else
        {
            Check();
            Assert.True(dense.bias!.eq(trainedBias).all().item<bool>(), "the swapped bias did not get its trained values back");
        }
    }
}
