using Fer.Core.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Tests.Models;

public class SelectedChannelsTests
{
    /// <summary>Each selectable layer kind: image n's selected channel equals channel channels[n] of the full output.</summary>
    public static TheoryData<string> Layers => ["conv2d", "conv2d-strided", "conv2d-relu", "linear", "flatten-dense", "sequential"];

    [Theory]
    [MemberData(nameof(Layers))]
    public void SelectedChannelEqualsThatChannelOfTheFullOutput(string kind)
    {
        torch.manual_seed(3);
        using var scope = torch.NewDisposeScope();
        nn.Module<Tensor, Tensor> layer = kind switch
        {
            "conv2d" => nn.Conv2d(3, 7, 3, padding: 1),
            "conv2d-strided" => nn.Conv2d(3, 7, 5, stride: 2, padding: 2, dilation: 1),
            "conv2d-relu" => new Conv2dRelu(3, 7, 3, padding: 1),
            "linear" => nn.Linear(3 * 10 * 10, 7),
            "flatten-dense" => new FlattenDense(3 * 10 * 10, 7),
            "sequential" => nn.Sequential(nn.Conv2d(3, 7, 3), nn.ReLU(), nn.MaxPool2d(2)),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        layer.eval();
        var select = SelectedChannels.For(layer);
        Assert.NotNull(select);
        var input = torch.randn([5, 3, 10, 10]);
        if (kind == "linear") input = input.flatten(1);
        var channels = torch.tensor(new long[] { 6, 0, 3, 3, 1 });

        var full = layer.call(input);
        var expected = full.dim() == 4
            ? full.gather(1, channels.view(5, 1, 1, 1).expand(5, 1, full.shape[2], full.shape[3]))
            : full.gather(1, channels.view(5, 1));
        var actual = select!(input, channels);
        Assert.Equal(expected.shape, actual.shape);
        Assert.True((actual - expected).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void LayersThatMixChannelsInOtherWaysAreNotSelectable()
    {
        Assert.Null(SelectedChannels.For(nn.Conv2d(4, 8, 3, groups: 2)));
        Assert.Null(SelectedChannels.For(nn.Conv2d(4, 8, 3, padding: 1, padding_mode: PaddingModes.Reflect)));
        Assert.Null(SelectedChannels.For(nn.BatchNorm2d(8)));
        Assert.Null(SelectedChannels.For(nn.Sequential(nn.Conv2d(4, 8, 3), nn.BatchNorm2d(8))));
        Assert.True(SelectedChannels.IsChannelWise(nn.Sequential(nn.ReLU(), nn.ZeroPad2d(1), nn.AvgPool2d(3, 2))));
        Assert.False(SelectedChannels.IsChannelWise(nn.Flatten()));
    }
}
