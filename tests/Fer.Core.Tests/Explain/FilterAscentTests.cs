using Fer.Core.Explain;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Explain;

public class FilterAscentTests
{
    /// <summary>
    /// "Far above its start" measured against what the filter does on images: with the regularisers off, each
    /// filter's ascent image excites it more than the best of 256 uniform-noise images, and more than its start image
    /// by at least the spread (standard deviation) of its activation over those noise images. With the default
    /// regularisers (which trade activation for smoother images) every filter still rises by that spread.
    /// Near-dead filters (no noise image excites them to 1 % of the layer's best) are exempt: a random tiny model has
    /// some, with activations around 1e-4, that a ReLU's zero gradient leaves in a local optimum.
    /// </summary>
    [Theory]
    [InlineData("conv2d_1", false)]
    [InlineData("max_pooling2d_2", false)]
    [InlineData("dense_1", false)]
    [InlineData("conv2d_1", true)]
    [InlineData("max_pooling2d_2", true)]
    [InlineData("dense_1", true)]
    public void AscentRaisesEveryFilterFarAboveItsStart(string layer, bool regularised)
    {
        using var model = new TinyCnn(side: 16, numClasses: 3, seed: 31, filters1: 6, filters2: 8);
        var options = regularised
            ? new FilterAscentOptions(Steps: 60, Seed: 1)
            : new FilterAscentOptions(Steps: 60, Seed: 1, L2Decay: 0, JitterPixels: 0, BlurSigma: 0);
        var result = FilterVisualizer.Ascend(model, layer, options, torch.CPU);

        Assert.Equal(layer, result.Layer);
        Assert.Equal(16, result.Side);
        Assert.Equal(result.Count * 256, result.Images.Length);
        Assert.True(result.SelectedChannelsOnly);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        model.eval();
        var noise = torch.rand([256, 1, 16, 16], generator: new torch.Generator(5, torch.CPU));
        var output = model.ForwardTo(layer, noise);
        var perFilter = output.dim() == 4 ? output.mean([2, 3]) : output;
        var best = perFilter.amax([0]).data<float>().ToArray();
        var spread = perFilter.std([0]).data<float>().ToArray();
        var live = Enumerable.Range(0, result.Count).Where(f => best[f] >= 0.01f * best.Max()).ToList();
        Assert.True(live.Count >= result.Count / 2, $"only {live.Count} of {result.Count} filters of {layer} respond to noise");
        foreach (int f in live)
        {
            float start = result.StartActivation[f], final = result.FinalActivation[f];
            Assert.True((regularised || final > best[f]) && final > start + spread[f],
                $"{layer} filter {f}: start {start}, final {final}, best of 256 noise images {best[f]}, spread {spread[f]}");
        }
        Assert.All(result.Images, v => Assert.InRange(v, 0f, 1f));
    }

    [Fact]
    public void BatchedAscentEqualsOneFilterAtATime()
    {
        using var model = new TinyCnn(side: 16, numClasses: 3, seed: 32, filters1: 5, filters2: 6);
        // Every regulariser on, so each must be per-filter for batched and serial runs to agree.
        var options = new FilterAscentOptions(Steps: 30, LearningRate: 0.05, L2Decay: 0.01, JitterPixels: 2,
            BlurSigma: 0.6, BlurEvery: 3, TotalVariation: 0.05, Seed: 7);
        var batched = FilterVisualizer.Ascend(model, "conv2d_2", options, torch.CPU);
        var serial = FilterVisualizer.AscendOneByOne(model, "conv2d_2", options, torch.CPU);

        Assert.Equal(6, batched.Count);
        Assert.Equal(6, serial.Count);
        double maxDifference = batched.Images.Zip(serial.Images).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(maxDifference < 1e-3, $"batched and serial images differ by up to {maxDifference}");
        for (int f = 0; f < 6; f++)
        {
            Assert.Equal(batched.StartActivation[f], serial.StartActivation[f], 4);
            Assert.True(Math.Abs(batched.FinalActivation[f] - serial.FinalActivation[f]) <= 1e-3 * Math.Max(1, Math.Abs(serial.FinalActivation[f])),
                $"filter {f}: batched {batched.FinalActivation[f]}, serial {serial.FinalActivation[f]}");
        }
    }

    [Fact]
    public void SeedChangesTheImagesAndFilterCountsAreRespected()
    {
        using var model = new TinyCnn(side: 16, numClasses: 3, seed: 33, filters1: 6, filters2: 8);
        var a = FilterVisualizer.Ascend(model, "conv2d_1", new FilterAscentOptions(Steps: 10, Seed: 1), torch.CPU);
        var b = FilterVisualizer.Ascend(model, "conv2d_1", new FilterAscentOptions(Steps: 10, Seed: 2), torch.CPU);
        Assert.True(a.Images.Zip(b.Images).Max(p => Math.Abs(p.First - p.Second)) > 1e-2);

        var limited = FilterVisualizer.Ascend(model, "conv2d_2", new FilterAscentOptions(Steps: 5, MaxFilters: 3), torch.CPU);
        Assert.Equal(3, limited.Count);
        Assert.Equal(3 * 256, limited.Images.Length);
        var firstTwo = FilterVisualizer.AscendOneByOne(model, "conv2d_2", new FilterAscentOptions(Steps: 5), torch.CPU, filterCount: 2);
        Assert.Equal(2, firstTwo.Count);
        Assert.Equal(5, firstTwo.Steps);
    }

    [Fact]
    public void AscentRestoresTrainingModeAndLeavesNoParameterGradients()
    {
        using var model = new TinyCnn(side: 16, numClasses: 3, seed: 34);
        model.train();
        FilterVisualizer.Ascend(model, "conv2d_1", new FilterAscentOptions(Steps: 3), torch.CPU);
        Assert.True(model.training);
        Assert.All(model.parameters(), p => Assert.True(p.grad is null));
    }

    [Fact]
    public void UnknownLayerOrBadOptionsAreRejected()
    {
        using var model = new TinyCnn(side: 16, numClasses: 3, seed: 35);
        var unknown = Assert.Throws<ArgumentException>(() =>
            FilterVisualizer.Ascend(model, "max_pooling2d_7", new FilterAscentOptions(), torch.CPU));
        Assert.Contains("max_pooling2d_1", unknown.Message);
        Assert.Contains("conv2d_2", unknown.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            FilterVisualizer.Ascend(model, "conv2d_1", new FilterAscentOptions(LearningRate: 0), torch.CPU));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            FilterVisualizer.Ascend(model, "conv2d_1", new FilterAscentOptions(MaxFilters: 0), torch.CPU));
    }
}
