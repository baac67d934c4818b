using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Models;

/// <summary>
/// A convolution followed by ReLU, as one layer: Keras' Conv2D(activation='relu') is one row of the summary,
/// and the seed report's table has no separate activation rows for its convolutions.
/// </summary>
public sealed class Conv2dRelu : nn.Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Conv2d conv;

    public Conv2dRelu(long inChannels, long outChannels, long kernel, long padding = 0) : base("Conv2dRelu")
    {
        conv = nn.Conv2d(inChannels, outChannels, kernel, padding: padding);
        RegisterComponents();
    }

    /// <summary>The convolution before the ReLU.</summary>
    public TorchSharp.Modules.Conv2d Convolution => conv;

    public override Tensor forward(Tensor x) => nn.functional.relu(conv.call(x));
}

/// <summary>Flatten then dense, as one layer: the seed DNN's table starts at dense_1 on the flattened image.</summary>
public sealed class FlattenDense : nn.Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Linear dense;

    public FlattenDense(long inFeatures, long outFeatures) : base("FlattenDense")
    {
        dense = nn.Linear(inFeatures, outFeatures);
        RegisterComponents();
    }

    /// <summary>The dense layer after the flatten.</summary>
    public TorchSharp.Modules.Linear Dense => dense;

    public override Tensor forward(Tensor x) => dense.call(x.flatten(1));
}

/// <summary>Keras-style layer names: a counter per layer type (conv2d_1, conv2d_2, dropout_1, ...).</summary>
public sealed class KerasNames
{
    private readonly Dictionary<string, int> _counts = [];
    private readonly List<NamedLayer> _layers = [];

    public IReadOnlyList<NamedLayer> Layers => _layers;

    /// <summary>Adds a layer named after its Keras type (snake_case prefix + counter) and returns its name.</summary>
    public string Add(string prefix, string kerasType, nn.Module<Tensor, Tensor> module)
    {
        _counts[prefix] = _counts.GetValueOrDefault(prefix) + 1;
        var name = $"{prefix}_{_counts[prefix]}";
        _layers.Add(new NamedLayer(name, kerasType, module));
        return name;
    }
}

/// <summary>
/// Keras' default initialisation: glorot_uniform kernels (limit sqrt(6 / (fan_in + fan_out))) and zero biases. The seed
/// report's models were built in Keras with these defaults, and they need them: under libtorch's default
/// (uniform +-1/sqrt(fan_in)) the signal shrinks about 6x per ReLU layer, and the seed CNN's nine weight layers
/// then start with near-constant outputs and stayed at chance (loss ln 7) for all four quickstart epochs.
/// </summary>
public static class KerasInitialization
{
    /// <summary>Initialises every convolution and dense layer; draws from <paramref name="generator"/> when given,
    /// else from torch's global generator.</summary>
    public static void Apply(nn.Module model, torch.Generator? generator = null)
    {
        using var noGrad = torch.no_grad();
        foreach (var (weight, bias) in WeightLayers(model))
        {
            long receptive = weight.dim() > 2 ? weight.shape.Skip(2).Aggregate(1L, (a, b) => a * b) : 1;
            double limit = Math.Sqrt(6.0 / ((weight.shape[1] + weight.shape[0]) * receptive));
            using var values = torch.rand(weight.shape, dtype: weight.dtype, generator: generator).mul_(2 * limit).sub_(limit);
            weight.copy_(values);
            bias?.zero_();
        }
    }

    /// <summary>libtorch's own scheme for convolutions and dense layers (uniform +-1/sqrt(fan_in) for weights and
    /// biases), drawn from <paramref name="generator"/>.</summary>
    public static void ApplyTorchDefault(nn.Module model, torch.Generator generator)
    {
        using var noGrad = torch.no_grad();
        foreach (var (weight, bias) in WeightLayers(model))
        {
            double bound = 1.0 / Math.Sqrt(weight.numel() / weight.shape[0]);
            using var values = torch.rand(weight.shape, dtype: weight.dtype, generator: generator).mul_(2 * bound).sub_(bound);
            weight.copy_(values);
            if (bias is null) continue;
            using var biasValues = torch.rand(bias.shape, dtype: bias.dtype, generator: generator).mul_(2 * bound).sub_(bound);
            bias.copy_(biasValues);
        }
    }

    private static IEnumerable<(Tensor Weight, Tensor? Bias)> WeightLayers(nn.Module model)
    {
        foreach (var (_, module) in model.named_modules())
        {
            switch (module)
            {
                case TorchSharp.Modules.Conv2d conv: yield return (conv.weight, conv.bias); break;
                case TorchSharp.Modules.Linear dense: yield return (dense.weight, dense.bias); break;
            }
        }
    }
}
