using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Fer.Core.Models;

/// <summary>
/// One chosen output channel per image, without computing the others: what activation maximisation needs when it
/// optimises one image per filter. A convolution with C filters costs C times less this way (image n is convolved
/// with filter channels[n] alone, as one grouped convolution over the batch), and so does its backward pass.
/// Only layers whose arithmetic Fer can restate are selectable: convolutions (zero padding, one group), dense
/// layers, Fer's Conv2dRelu and FlattenDense, and a Sequential starting with one of those followed by channel-wise
/// modules. Everything else is left to the full computation.
/// </summary>
public static class SelectedChannels
{
    /// <summary>
    /// A function (input [N, ...], channels long [N]) -> output [N, 1, h, w] (convolutions) or [N, 1] (dense) equal
    /// to channel channels[n] of the module's output for image n; null when the module is not one Fer can select from.
    /// </summary>
    public static Func<Tensor, Tensor, Tensor>? For(nn.Module<Tensor, Tensor> module) => module switch
    {
        Conv2d conv when CanSelect(conv) => (x, channels) => Convolution(conv, x, channels),
        Linear dense => (x, channels) => Dense(dense, x, channels),
        Conv2dRelu block when CanSelect(block.Convolution) =>
            (x, channels) => nn.functional.relu(Convolution(block.Convolution, x, channels)),
        FlattenDense block => (x, channels) => Dense(block.Dense, x.flatten(1), channels),
        Sequential sequence when sequence.Count > 0 && Rest(sequence).All(IsChannelWise)
                                 && sequence[0] is nn.Module<Tensor, Tensor> first && For(first) is { } head =>
            (x, channels) => Rest(sequence).Aggregate(head(x, channels), (y, m) => ((nn.Module<Tensor, Tensor>)m).call(y)),
        _ => null,
    };

    /// <summary>
    /// Whether a module, in eval mode, acts on every channel alone and alike, so it commutes with picking a channel:
    /// padding, pooling, element-wise activations, dropout (the identity in eval mode), and sequences of those.
    /// </summary>
    public static bool IsChannelWise(nn.Module module) => module switch
    {
        ReLU or LeakyReLU or ELU or Tanh or Sigmoid or Identity or Dropout => true,
        ZeroPad2d or MaxPool2d or AvgPool2d => true,
        Sequential sequence => Enumerable.Range(0, sequence.Count).All(i => sequence[i] is nn.Module m && IsChannelWise(m)),
        _ => false,
    };

    private static IEnumerable<nn.Module> Rest(Sequential sequence) =>
        Enumerable.Range(1, sequence.Count - 1).Select(i => (nn.Module)sequence[i]);

    private static bool CanSelect(Conv2d conv) =>
        conv.groups == 1 && conv.padding_mode == PaddingModes.Zeros && conv.padding_type is null && conv.padding is not null;

    private static Tensor Convolution(Conv2d conv, Tensor x, Tensor channels)
    {
        long n = x.shape[0], inChannels = x.shape[1];
        var weight = conv.weight.index_select(0, channels);
        var bias = conv.bias?.index_select(0, channels);
        // The batch becomes the channel axis of a single image, and image n's group meets filter channels[n] alone.
        var grouped = nn.functional.conv2d(x.reshape(1, n * inChannels, x.shape[2], x.shape[3]), weight, bias,
            conv.stride, conv.padding, conv.dilation, groups: n);
        return grouped.view(n, 1, grouped.shape[2], grouped.shape[3]);
    }

    private static Tensor Dense(Linear dense, Tensor x, Tensor channels)
    {
        if (x.dim() != 2)
            throw new ArgumentException($"a dense layer's channel selection takes [N, features]; got [{string.Join(", ", x.shape)}]");
        var rows = dense.weight.index_select(0, channels);
        var y = (x * rows).sum(1, keepdim: true);
        return dense.bias is null ? y : y + dense.bias.index_select(0, channels).unsqueeze(1);
    }
}
