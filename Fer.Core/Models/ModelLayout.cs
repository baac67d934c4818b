using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using TorchSharp;

namespace Fer.Core.Models;

/// <summary>One layer as a flow can name it: its Keras-style name and type and what it outputs for one image.</summary>
public sealed record LayerShape(string Name, string KerasType, IReadOnlyList<long> Output)
{
    /// <summary>Whether the layer outputs feature maps [1, C, h, w] (what Grad-CAM and Eigen-CAM weigh).</summary>
    public bool Spatial => Output.Count == 4;

    /// <summary>Whether the layer outputs channels, as maps or as a vector (what filter ascent and layer outputs draw).</summary>
    public bool HasChannels => Output.Count is 2 or 3 or 4;

    public override string ToString() => $"{Name} [{string.Join(", ", Output)}]";
}

/// <summary>
/// What a model looks like from outside, read by building it and passing one blank image through: its layers with
/// their output shapes, and the layers explanations use by default. Settings that name a layer are checked against
/// it when a flow is planned, before anything runs.
/// </summary>
public sealed record ModelLayout(IReadOnlyList<LayerShape> Layers, string? CamLayer, string? FilterLayer, string? OutputLayer)
{
    private static readonly ConcurrentDictionary<string, ModelLayout> Known = new(StringComparer.Ordinal);

    public LayerShape? Find(string name) => Layers.FirstOrDefault(l => l.Name == name);

    /// <summary>The layout of a model (built on the CPU, in eval mode, without gradients).</summary>
    public static ModelLayout Of(FerModel model)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        bool training = model.training;
        model.eval();
        try
        {
            var device = model.parameters().FirstOrDefault()?.device ?? torch.CPU;
            // The model's own input normalisation (its first 0 layers), then each layer in turn.
            var x = model.ForwardFirst(0, torch.zeros([1, 1, model.InputSide, model.InputSide], device: device));
            var shapes = new List<LayerShape>();
            foreach (var layer in model.Layers)
            {
                x = layer.Module.call(x);
                shapes.Add(new LayerShape(layer.Name, layer.KerasType, [.. x.shape]));
            }
            return new ModelLayout(shapes, model.CamLayer, model.FilterLayer, model.OutputLayer);
        }
        finally { model.train(training); }
    }

    /// <summary>
    /// The layout of a catalog's model with these hyperparameters, for the usual 48-pixel faces (layer names and kinds
    /// do not depend on the side). Built once per process and model; null when the model cannot be built at that side.
    /// </summary>
    public static ModelLayout? Of(ModelCatalog catalog, string model, IReadOnlyDictionary<string, double> hyperparameters, int classes = 7, int side = 48)
    {
        var entry = catalog.Get(model);
        var key = $"{entry.Name}|{entry.SourceHash}|{classes}|{side}|{string.Join(",", hyperparameters.OrderBy(h => h.Key, StringComparer.Ordinal).Select(h => $"{h.Key}={h.Value:R}"))}";
        if (Known.TryGetValue(key, out var known)) return known;
        try
        {
            using var built = catalog.Create(model, classes, side, hyperparameters);
            return Known[key] = Of(built);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or ExternalException)
        {
            return null; // e.g. a script's model that needs another image side: its layers are checked when it runs
        }
    }
}
