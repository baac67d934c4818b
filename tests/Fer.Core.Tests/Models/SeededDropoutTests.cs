using Fer.Core.Models;
using Fer.Core.Tests.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Models;

/// <summary>
/// Fer's dropout draws torch's own masks (libtorch's CPU dropout with the global generator seeded alike) from a
/// generator of the training's, so draws from the global generator meanwhile (another training in the process) change
/// nothing; outside a training it is torch's dropout, and in evaluation the identity.
/// </summary>
[Collection(TorchRandomCollection.Name)]
public class SeededDropoutTests
{
    [Fact]
    public void MasksAreTorchsForTheSeedWhateverTheGlobalGeneratorDoesMeanwhile()
    {
        using var x = torch.rand([8, 3, 12, 12], generator: new torch.Generator(5, torch.CPU));
        using var layer = new SeededDropout(0.3);
        layer.train();
        torch.manual_seed(11);
        using var input = x.detach().requires_grad_(true); // as in training, where libtorch takes its unfused path
        using var expected = nn.functional.dropout(input, 0.3, training: true).detach();

        torch.manual_seed(11);
        using (SeededDropout.DrawFrom(layer, 11, torch.CPU))
        {
            torch.manual_seed(999);
            using var elsewhere = torch.rand(1000); // another computation drawing from the global generator
            using var actual = layer.call(x);
            Assert.True(actual.eq(0).eq(expected.eq(0)).all().item<bool>(), "the masks differ from torch's dropout with the same seed");
            Assert.True(actual.eq(expected).all().item<bool>(), $"values differ by up to {(actual - expected).abs().max().item<float>()}");
            using var zeroed = actual.eq(0).to(ScalarType.Float32).mean();
            Assert.InRange(zeroed.item<float>(), 0.25f, 0.35f);
        }
        Assert.Null(layer.Generator);

        layer.eval();
        using var evaluated = layer.call(x);
        Assert.True(evaluated.eq(x).all().item<bool>());
    }

    [Fact]
    public void TheSeedModelsUseIt()
    {
        using var cnn = new SeedCnn();
        using var dnn = new SeedDnn();
        Assert.Equal(5, cnn.modules().OfType<SeededDropout>().Count());
        Assert.Empty(cnn.modules().OfType<TorchSharp.Modules.Dropout>());
        Assert.Equal(6, dnn.modules().OfType<SeededDropout>().Count());
    }
}
