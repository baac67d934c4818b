using Fer.Core.Explain;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Explain;

public class LayerOutputsTests
{
    [Theory]
    [InlineData("conv2d_1", 4, 16, 16)]
    [InlineData("max_pooling2d_1", 4, 8, 8)]
    [InlineData("conv2d_2", 6, 8, 8)]
    [InlineData("max_pooling2d_2", 6, 4, 4)]
    [InlineData("flatten_1", 96, 1, 1)]
    [InlineData("dense_1", 3, 1, 1)]
    public void CaptureReturnsTheLayerOutputWithItsShape(string layer, int channels, int height, int width)
    {
        using var model = new TinyCnn(side: 16, numClasses: 3, seed: 41);
        var generator = new torch.Generator(3, torch.CPU);
        using var image = torch.rand([1, 1, 16, 16], generator: generator);

        var maps = LayerOutputs.Capture(model, layer, image, out int c, out int h, out int w);

        Assert.Equal((channels, height, width), (c, h, w));
        Assert.Equal(c * h * w, maps.Length);
        using (torch.no_grad())
        using (var expected = model.ForwardTo(layer, image))
            Assert.Equal(expected.data<float>().ToArray(), maps);
        if (layer.StartsWith("conv2d") || layer.StartsWith("max_pooling")) Assert.All(maps, v => Assert.True(v >= 0));
    }

    [Fact]
    public void CaptureRejectsUnknownLayersAndBatches()
    {
        using var model = new TinyCnn(side: 16, numClasses: 3, seed: 42);
        using var two = torch.rand([2, 1, 16, 16]);
        using var one = torch.rand([1, 1, 16, 16]);
        var unknown = Assert.Throws<ArgumentException>(() => LayerOutputs.Capture(model, "layer0", one, out _, out _, out _));
        Assert.Contains("conv2d_1", unknown.Message);
        Assert.Throws<ArgumentException>(() => LayerOutputs.Capture(model, "conv2d_1", two, out _, out _, out _));
    }
}
