using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Models;

/// <summary>
/// A convolution followed by ReLU, as one layer: Keras' Conv2D(activation='relu') is one row of the summary,
/// and the seed report's table has no separate activation rows for its convolutions.
/// </summary>
public sealed class Conv2dRelu : nn.Module<Tensor, Tensor>, IDescribedLayer
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

    public IReadOnlyList<LayerOp> Ops => [LayerSpecs.Describe(conv, "conv"), LayerSpecs.Op("relu")];
}

/// <summary>Flatten then dense, as one layer: the seed DNN's table starts at dense_1 on the flattened image.</summary>
public sealed class FlattenDense : nn.Module<Tensor, Tensor>, IDescribedLayer
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

    public IReadOnlyList<LayerOp> Ops => [new("flatten", null, new Dictionary<string, object> { ["start_dim"] = 1L, ["end_dim"] = -1L }), LayerSpecs.Describe(dense, "dense")];
}

/// <summary>
/// Keras' Cropping2D with the same margin on every side: the network sees the centre (side - 2 * margin) square of
/// its input. As a model's first layer it makes the model take whole images yet learn from crops, as the published
/// FER2013 recipes do (40x40 crops of 48x48 faces): training draws random crops by shifting each image by up to
/// <see cref="Margin"/> pixels before this layer (<see cref="Training.OnlineAugmentation.CropMargin"/>), and ten-crop
/// prediction shifts it so that each corner crop lands in the centre (<see cref="Ensemble.Predictor"/>).
/// </summary>
public sealed class CenterCrop2d : nn.Module<Tensor, Tensor>, IDescribedLayer
{
    public CenterCrop2d(int margin) : base("CenterCrop2d")
    {
        if (margin < 1) throw new ArgumentOutOfRangeException(nameof(margin), margin, "a crop's margin must be at least 1 pixel");
        Margin = margin;
    }

    /// <summary>Pixels cut from each side.</summary>
    public int Margin { get; }

    public override Tensor forward(Tensor x)
    {
        long h = x.shape[2], w = x.shape[3];
        if (h <= 2 * Margin || w <= 2 * Margin)
            throw new ArgumentException($"a {h}x{w} input has nothing left after cropping {Margin} pixels from each side");
        return x.narrow(2, Margin, h - 2 * Margin).narrow(3, Margin, w - 2 * Margin);
    }

    public IReadOnlyList<LayerOp> Ops => [new("center_crop", null, new Dictionary<string, object> { ["margin"] = (long)Margin })];
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

/// <summary>
/// Dropout that draws its masks from the generator the trainer hands it for each epoch instead of torch's global one,
/// so a training gives the same numbers when other work in the process draws random numbers meanwhile (two members
/// with --parallel, flows side by side in a test host). It computes what libtorch's CPU dropout does (a mask from
/// bernoulli_(1 - p) on an empty_like tensor, then x * mask / (1 - p)), so with the generator seeded as the global
/// one was, the masks are the same. Without a generator (a model used outside <c>Trainer</c>) it is torch's dropout.
/// </summary>
public sealed class SeededDropout : nn.Module<Tensor, Tensor>
{
    public SeededDropout(double p) : base("Dropout")
    {
        if (p is < 0 or > 1 or double.NaN) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1]");
        P = p;
    }

    /// <summary>The probability of zeroing an element.</summary>
    public double P { get; }

    /// <summary>Where the masks come from while training; set by the trainer at each epoch.</summary>
    public torch.Generator? Generator { get; set; }

    /// <summary>
    /// Until the returned scope closes, every <see cref="SeededDropout"/> of <paramref name="model"/> draws from one new
    /// generator seeded with <paramref name="seed"/>, in the order the forward pass reaches them.
    /// </summary>
    public static IDisposable DrawFrom(nn.Module model, long seed, Device device)
    {
        ArgumentNullException.ThrowIfNull(model);
        var layers = model.modules().Prepend(model).OfType<SeededDropout>().Distinct().ToList(); // modules() leaves out the model itself
        var generator = new torch.Generator((ulong)seed, device);
        foreach (var layer in layers) layer.Generator = generator;
        return new GeneratorScope(layers, generator);
    }

    private sealed class GeneratorScope(List<SeededDropout> layers, torch.Generator generator) : IDisposable
    {
        public void Dispose()
        {
            foreach (var layer in layers) if (ReferenceEquals(layer.Generator, generator)) layer.Generator = null;
            generator.Dispose();
        }
    }

    public override Tensor forward(Tensor x)
    {
        if (!training || P == 0) return x.alias();
        if (P == 1) return torch.zeros_like(x);
        if (Generator is null) return nn.functional.dropout(x, P, training: true);
        using var mask = torch.empty_like(x).bernoulli_(1 - P, Generator);
        mask.div_(1 - P);
        return x.mul(mask);
    }
}
