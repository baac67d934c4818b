using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Core.Models;

/// <summary>One layer of a model as the Keras-style summary names it (conv2d_1, zero_padding2d_1, ...).</summary>
public sealed record NamedLayer(string Name, string KerasType, nn.Module<Tensor, Tensor> Module);

/// <summary>
/// A classifier of [N, 1, S, S] images into class logits [N, C] whose layers run in a fixed order and are
/// addressed by Keras-style names. Explanations and summaries work through <see cref="Layers"/>, so every
/// model in Fer is a sequence of named layers (the seed CNN and DNN are; a VGG-style net is too).
/// Subclasses hold their layers as fields, call RegisterComponents() and list them in <see cref="Layers"/>.
/// </summary>
public abstract class FerModel : nn.Module<Tensor, Tensor>
{
    protected FerModel(string name) : base(name)
    {
        // Input normalisation lives in the model (as buffers saved with the weights), so prediction and
        // explanations take plain 0..1 images and gradients are with respect to those pixels.
        register_buffer("input_mean", torch.zeros(1));
        register_buffer("input_std", torch.ones(1));
    }

    /// <summary>Sets the (x - mean) / std applied to 0..1 images before the first layer.</summary>
    public void SetInputNormalization(float mean, float std)
    {
        if (!(std > 0)) throw new ArgumentOutOfRangeException(nameof(std), "std must be positive");
        using var _ = torch.no_grad();
        get_buffer("input_mean")!.fill_(mean);
        get_buffer("input_std")!.fill_(std);
    }

    public (float Mean, float Std) InputNormalization =>
        (get_buffer("input_mean")!.item<float>(), get_buffer("input_std")!.item<float>());

    private Tensor Normalize(Tensor input) =>
        input.sub(get_buffer("input_mean")!).div(get_buffer("input_std")!);

    /// <summary>The layers in forward order. Names are unique.</summary>
    public abstract IReadOnlyList<NamedLayer> Layers { get; }

    /// <summary>Input image side the model was built for (48 for FER2013).</summary>
    public abstract int InputSide { get; }

    public abstract int NumClasses { get; }

    /// <summary>
    /// Pixels the model cuts from each side of its input before anything else (a first layer <see cref="CenterCrop2d"/>),
    /// 0 when it sees the whole image. Training shifts images by up to this much (random crops); ten-crop prediction
    /// and Grad-CAM's upsampling take it into account.
    /// </summary>
    public int CropMargin => Layers.Count > 0 && Layers[0].Module is CenterCrop2d crop ? crop.Margin : 0;

    /// <summary>
    /// The layer Grad-CAM, Guided Grad-CAM and Eigen-CAM explain by default: the last convolution (null for a model
    /// without one, which those methods cannot explain). A model whose last convolution is not the right place overrides it.
    /// </summary>
    public virtual string? CamLayer => Layers.LastOrDefault(l => l.KerasType == "Conv2D")?.Name;

    /// <summary>The layer whose filters gradient ascent draws by default: the first pooling layer (the seed report's
    /// max_pooling2d_1), else the first convolution.</summary>
    public virtual string? FilterLayer =>
        (Layers.FirstOrDefault(l => l.KerasType.EndsWith("Pooling2D", StringComparison.Ordinal)) ?? Layers.FirstOrDefault(l => l.KerasType == "Conv2D"))?.Name;

    /// <summary>The layer whose outputs for one image are drawn by default: the first convolution (the seed report's conv2d_1).</summary>
    public virtual string? OutputLayer => Layers.FirstOrDefault(l => l.KerasType == "Conv2D")?.Name;

    public override Tensor forward(Tensor input)
    {
        var x = Normalize(input);
        foreach (var layer in Layers)
            x = layer.Module.call(x);
        return x;
    }

    /// <summary>The index of a layer by name; an unknown name is an error listing the valid ones.</summary>
    public int LayerIndex(string name)
    {
        var layers = Layers;
        for (int i = 0; i < layers.Count; i++)
            if (layers[i].Name == name) return i;
        throw new ArgumentException(
            $"model {GetName()} has no layer '{name}'; valid layers: {string.Join(", ", layers.Select(l => l.Name))}",
            nameof(name));
    }

    /// <summary>Normalises the 0..1 input, runs the layers up to and including <paramref name="layer"/> and returns that layer's output.</summary>
    public Tensor ForwardTo(string layer, Tensor input) => ForwardFirst(LayerIndex(layer) + 1, input);

    /// <summary>Normalises the 0..1 input and runs the first <paramref name="count"/> layers (0: the normalised input).</summary>
    public Tensor ForwardFirst(int count, Tensor input)
    {
        if (count < 0 || count > Layers.Count)
            throw new ArgumentOutOfRangeException(nameof(count), $"count must be in 0..{Layers.Count}");
        var x = Normalize(input);
        for (int i = 0; i < count; i++) x = Layers[i].Module.call(x);
        return x;
    }

    /// <summary>Runs the whole model and also returns the output of <paramref name="layer"/> (for Grad-CAM).</summary>
    public (Tensor Activation, Tensor Logits) ForwardCapturing(string layer, Tensor input)
    {
        int at = LayerIndex(layer);
        var x = Normalize(input);
        Tensor? activation = null;
        for (int i = 0; i < Layers.Count; i++)
        {
            x = Layers[i].Module.call(x);
            if (i == at) activation = x;
        }
        return (activation!, x);
    }

    public long ParameterCount() => parameters().Sum(p => p.numel());

    /// <summary>
    /// Draws every convolution and dense weight afresh from a generator seeded with <paramref name="seed"/> alone
    /// (on the CPU, then copied to the model's device), so a model's starting point depends on its seed and on
    /// nothing that used torch's global generator before. The default is libtorch's own scheme; the seed models use
    /// Keras' (see <see cref="KerasInitialization"/>).
    /// </summary>
    public virtual void Initialize(long seed) =>
        KerasInitialization.ApplyTorchDefault(this, new torch.Generator((ulong)seed, torch.CPU));
}
