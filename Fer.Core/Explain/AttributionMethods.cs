using Fer.Core.Models;
using static TorchSharp.torch;

namespace Fer.Core.Explain;

/// <summary>The knobs of the attribution methods; each method reads the ones it needs.</summary>
public sealed record AttributionSettings
{
    public int SmoothGradSamples { get; init; } = 25;
    public double SmoothGradNoise { get; init; } = 0.15;
    public int IgSteps { get; init; } = 32;
    public IgBaseline IgBaseline { get; init; } = IgBaseline.Black;
    /// <summary>The convolutional layer of Grad-CAM, Guided Grad-CAM and Eigen-CAM (null: the model's own, <see cref="FerModel.CamLayer"/>).</summary>
    public string? CamLayer { get; init; }

    /// <summary>The CAM layer for this model: the one named, else the model's default (null when it has none).</summary>
    public string? CamLayerOf(FerModel model) => CamLayer ?? model.CamLayer;
    public int OcclusionPatch { get; init; } = 8;
    public int OcclusionStride { get; init; } = 6;
    public long Seed { get; init; }
}

/// <summary>
/// One attribution method under its snake_case name: how to compute its maps for a batch, and whether it needs the
/// CAM layer (a model without that layer, such as a fully connected one, cannot be explained by it).
/// </summary>
public sealed record AttributionMethod(string Name, string Title, bool UsesCamLayer, bool NeedsGradients,
    Func<FerModel, Tensor, int[]?, AttributionSettings, SaliencyResult> Compute)
{
    /// <summary>Whether the method can explain <paramref name="model"/> (CAM methods need the CAM layer).</summary>
    public bool AppliesTo(FerModel model, AttributionSettings settings) =>
        !UsesCamLayer || (settings.CamLayerOf(model) is { } layer && model.Layers.Any(l => l.Name == layer));

    public SaliencyResult Explain(FerModel model, Tensor images, AttributionSettings settings, int[]? targets = null) =>
        Compute(model, images, targets, settings);
}

/// <summary>
/// Every attribution method Fer knows, in one list (as a model registers its layers): the stage's
/// <c>methods</c> setting, the faithfulness measures, the sanity check and the figures all go through it.
/// </summary>
public static class AttributionMethods
{
    public static readonly IReadOnlyList<AttributionMethod> All =
    [
        new("saliency", "Vanilla gradient", false, true, (m, x, t, s) => Saliency.Vanilla(m, x, t)),
        new("smoothgrad", "SmoothGrad", false, true, (m, x, t, s) => Saliency.SmoothGrad(m, x, s.SmoothGradSamples, s.SmoothGradNoise, s.Seed, t)),
        new("gradcam", "Grad-CAM", true, true, (m, x, t, s) => Saliency.GradCam(m, x, CamLayer(m, s), t)),
        new("integrated_gradients", "Integrated Gradients", false, true, (m, x, t, s) => Attributions.IntegratedGradients(m, x, s.IgSteps, s.IgBaseline, t)),
        new("guided_backprop", "Guided Backpropagation", false, true, (m, x, t, s) => Attributions.GuidedBackprop(m, x, t)),
        new("guided_gradcam", "Guided Grad-CAM", true, true, (m, x, t, s) => Attributions.GuidedGradCam(m, x, CamLayer(m, s), t)),
        new("occlusion", "Occlusion", false, false, (m, x, t, s) => Attributions.Occlusion(m, x, s.OcclusionPatch, s.OcclusionStride, t)),
        new("eigencam", "Eigen-CAM", true, false, (m, x, t, s) => Attributions.EigenCam(m, x, CamLayer(m, s))),
    ];

    public static IReadOnlyList<string> Names { get; } = All.Select(m => m.Name).ToList();

    private static string CamLayer(FerModel model, AttributionSettings s) => s.CamLayerOf(model)
        ?? throw new ArgumentException($"model {model.GetName()} has no convolution for a CAM method; name a layer with feature maps");

    /// <summary>The method of that name; an unknown name is an error listing the known ones.</summary>
    public static AttributionMethod Get(string name) =>
        All.FirstOrDefault(m => m.Name == name)
        ?? throw new ArgumentException($"unknown attribution method '{name}'; known methods: {string.Join(", ", Names)}", nameof(name));
}
