using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Fer.Core.Data;
using Fer.Core.Explain;
using Fer.Core.Plots;
using Fer.Core.Storage;
using Fer.Flow.Pipeline;
using TorchSharp;

namespace Fer.Flow.Stages;

public sealed record VisualizeSettings
{
    [Description("Comma-separated members to explain (default: the first member)")] public string Members { get; init; } = "";
    [Description("Comma-separated validation image ids (default: per_class images of each class)")] public string Images { get; init; } = "";
    [Description("Validation images per class when images is empty"), Range(1.0, 1000.0)] public int PerClass { get; init; } = 1;
    [Description("Which explanations to draw")] public string Methods { get; init; } = "saliency,smoothgrad,gradcam,filters,outputs";
    [Description("Share of most salient pixels kept when masking"), Range(0.0, 1.0, MinimumIsExclusive = true, MaximumIsExclusive = true)] public double KeepFraction { get; init; } = 0.3;
    [Description("Noisy copies averaged by SmoothGrad"), Range(1.0, 1000.0)] public int SmoothgradSamples { get; init; } = 25;
    [Description("Conv layer for Grad-CAM (Keras-style name)")] public string GradcamLayer { get; init; } = "conv2d_6";
    [Description("Layer whose filters are visualised by gradient ascent")] public string FilterLayer { get; init; } = "max_pooling2d_1";
    [Description("Gradient ascent steps"), Range(1.0, 100_000.0)] public int AscentSteps { get; init; } = 200;
    [Description("At most this many filters of the layer"), Range(1.0, 4096.0)] public int MaxFilters { get; init; } = 64;
    [Description("Layer whose outputs are drawn for one image")] public string OutputLayer { get; init; } = "conv2d_1";
    [Description("Seed of SmoothGrad noise and ascent start images")] public long Seed { get; init; }

    /// <summary>The explanation methods this stage knows (checked at plan time).</summary>
    public static readonly IReadOnlyList<string> KnownMethods = ["saliency", "smoothgrad", "gradcam", "filters", "outputs"];

    public IReadOnlyList<string> MethodList => Methods.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

public sealed record MaskingMetrics(double KeepFraction, double KeptPredictionTop, double KeptPredictionRandom);

public sealed record FilterMetrics(string Layer, int Count, double Seconds, double MeanStartActivation, double MeanFinalActivation, bool SelectedChannelsOnly);

public sealed record MemberExplanationMetrics(MaskingMetrics Masking, double? SmoothgradKeptPredictionTop, FilterMetrics? Filters,
    IReadOnlyDictionary<string, double> Seconds);

/// <summary>One member's explanations: its figures (absent when not drawn) and the maps as Parquet tensors.</summary>
public sealed record MemberExplanations(string Member, FigureFile? Saliency, FigureFile? SmoothGrad, FigureFile? Filters, FigureFile? Outputs,
    IReadOnlyList<TensorFile> Maps, MemberExplanationMetrics Metrics);

public sealed record ExplanationMetrics(int Images, IReadOnlyDictionary<string, MemberExplanationMetrics> Members);

public sealed record Explanations(IReadOnlyList<MemberExplanations> Members, ExplanationMetrics Metrics) : IHasMetrics
{
    object IHasMetrics.Metrics => Metrics;
}

/// <summary>
/// Explains trained members (the seed report's sections 4 and 5): saliency maps with low-saliency pixels
/// masked and the prediction re-checked, SmoothGrad and Grad-CAM, filters found by gradient ascent, and a
/// layer's outputs for one image. Runs from cached weights and data, so `--only visualize` trains nothing.
/// </summary>
public sealed class VisualizeStage : Stage<VisualizeSettings, Explanations>
{
    public override string Kind => "visualize";
    public override int CodeVersion => 3; // 3: members as nodes
    public override IReadOnlyList<InputPort> Inputs => [InputPort.One<SplitFaces>(), InputPort.All<TrainedMember>()];

    public override object BindSettings(IReadOnlyDictionary<string, object> given, string owner, PlanScope scope)
    {
        var s = (VisualizeSettings)base.BindSettings(given, owner, scope);
        foreach (var m in s.MethodList)
            if (!VisualizeSettings.KnownMethods.Contains(m))
                throw new FlowDefinitionException($"{owner}: methods: unknown method '{m}'; known methods: {string.Join(", ", VisualizeSettings.KnownMethods)}");
        return s;
    }

    protected override async Task<Explanations> RunAsync(StageContext ctx, VisualizeSettings s)
    {
        var split = ctx.Input<SplitFaces>();
        var valid = await split.Valid.ReadAsync(ctx.CancellationToken);
        var members = ctx.Inputs<TrainedMember>().Select(p => p.Output).ToList();
        var wanted = s.Members.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var w in wanted)
            if (!members.Any(m => m.Member == w))
                throw new FlowDefinitionException($"visualize.members: no member '{w}'; members: {string.Join(", ", members.Select(m => m.Member))}");
        var chosen = wanted.Length == 0 ? [members[0]] : members.Where(m => wanted.Contains(m.Member)).ToList();
        var methods = s.MethodList.ToHashSet();
        var rows = PickImages(valid, s.Images, s.PerClass);
        var images = valid.Select(rows);
        var classes = valid.ClassNames;
        var titles = Enumerable.Range(0, images.Count).Select(i => $"id {images.Ids[i]}: {classes[images.Labels[i]]}").ToList();
        var results = new List<MemberExplanations>();

        foreach (var member in chosen)
        {
            ctx.CancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            var device = ctx.Run.Device;
            using var model = member.Load(ctx.Models, classes.Count, valid.Side, device);
            var layerNames = model.Layers.Select(l => l.Name).ToHashSet();
            var x = images.ImagesTensor(device);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var seconds = new Dictionary<string, double>();
            var maps = new List<TensorFile>();
            double lapStart = 0;
            void Lap(string method)
            {
                seconds[method] = clock.Elapsed.TotalSeconds - lapStart;
                lapStart = clock.Elapsed.TotalSeconds;
            }
            FigureFile? saliencyFigure = null, smoothFigure = null, filterFigure = null, outputFigure = null;
            FilterMetrics? filterMetrics = null;
            double? smoothKept = null;

            var saliency = Saliency.Vanilla(model, x);
            var masking = SaliencyMasking.MaskTop(model, x, saliency, s.KeepFraction);
            var random = SaliencyMasking.MaskRandom(model, x, s.KeepFraction, s.Seed);
            maps.Add(await WriteMapsAsync(ctx, $"saliency/{member.Member}.parquet", saliency, images, "vanilla"));
            Lap("saliency");

            SaliencyResult? gradCam = null;
            if (methods.Contains("gradcam"))
            {
                if (layerNames.Contains(s.GradcamLayer))
                {
                    gradCam = Saliency.GradCam(model, x, s.GradcamLayer);
                    maps.Add(await WriteMapsAsync(ctx, $"saliency/{member.Member}_gradcam.parquet", gradCam, images, $"gradcam:{s.GradcamLayer}"));
                }
                else ctx.Log.Information("Member {Model} has no layer {Layer}: no Grad-CAM", member.Member, s.GradcamLayer);
                Lap("gradcam");
            }
            if (methods.Contains("saliency"))
            {
                saliencyFigure = ctx.Figure($"visualize_{member.Member}_saliency.png");
                ExplanationFigures.SaveSaliencyRows(saliencyFigure.Path, Pixels(images), valid.Side, titles, saliency, masking, gradCam, classes);
            }
            if (methods.Contains("smoothgrad"))
            {
                var smooth = Saliency.SmoothGrad(model, x, s.SmoothgradSamples, 0.15, s.Seed);
                maps.Add(await WriteMapsAsync(ctx, $"saliency/{member.Member}_smoothgrad.parquet", smooth, images, "smoothgrad"));
                var smoothMasking = SaliencyMasking.MaskTop(model, x, smooth, s.KeepFraction);
                smoothFigure = ctx.Figure($"visualize_{member.Member}_smoothgrad.png");
                ExplanationFigures.SaveSaliencyRows(smoothFigure.Path, Pixels(images), valid.Side, titles, smooth, smoothMasking, gradCam, classes);
                smoothKept = smoothMasking.KeptPredictionRate;
                Lap("smoothgrad");
            }
            if (methods.Contains("filters"))
            {
                if (layerNames.Contains(s.FilterLayer))
                {
                    var ascent = FilterVisualizer.Ascend(model, s.FilterLayer,
                        new FilterAscentOptions(Steps: s.AscentSteps, Seed: s.Seed, MaxFilters: s.MaxFilters), device);
                    filterFigure = ctx.Figure($"visualize_{member.Member}_filters_{s.FilterLayer}.png");
                    ExplanationFigures.SaveFilterGrid(filterFigure.Path, ascent, $"Filters of layer {s.FilterLayer} (# Ascent Epoch {s.AscentSteps}), {member.Member}");
                    filterMetrics = new FilterMetrics(s.FilterLayer, ascent.FinalActivation.Length, ascent.Seconds, ascent.StartActivation.Average(),
                        ascent.FinalActivation.Average(), ascent.SelectedChannelsOnly);
                    ctx.Log.Information("Gradient ascent on {Filters} filters of {Layer} of {Model}: {Steps} steps in {Seconds:0.0} s, mean activation {Start:0.000} -> {Final:0.000}, own filter only {SelectedChannelsOnly}",
                        ascent.FinalActivation.Length, s.FilterLayer, member.Member, s.AscentSteps, ascent.Seconds, ascent.StartActivation.Average(),
                        ascent.FinalActivation.Average(), ascent.SelectedChannelsOnly);
                }
                else ctx.Log.Information("Member {Model} has no layer {Layer}: no filter visualisation", member.Member, s.FilterLayer);
                Lap("filters");
            }
            if (methods.Contains("outputs"))
            {
                if (layerNames.Contains(s.OutputLayer))
                {
                    var one = x.narrow(0, 0, 1);
                    var activations = LayerOutputs.Capture(model, s.OutputLayer, one, out var ch, out var h, out var w);
                    outputFigure = ctx.Figure($"visualize_{member.Member}_outputs_{s.OutputLayer}.png");
                    ExplanationFigures.SaveLayerOutputGrid(outputFigure.Path, activations, ch, h, w,
                        $"Output of layer {s.OutputLayer} (Given image {images.Ids[0]}), {member.Member}");
                }
                else ctx.Log.Information("Member {Model} has no layer {Layer}: no layer outputs", member.Member, s.OutputLayer);
                Lap("outputs");
            }
            ctx.Log.Information("Explained member {Model} on {Images} images in {Seconds:0.0} s ({@MethodSeconds}); masking keeps the prediction for {KeptTop:P0} of images (random masks: {KeptRandom:P0})",
                member.Member, images.Count, clock.Elapsed.TotalSeconds, seconds.ToDictionary(p => p.Key, p => Math.Round(p.Value, 2)),
                masking.KeptPredictionRate, random.KeptPredictionRate);
            var metrics = new MemberExplanationMetrics(new MaskingMetrics(s.KeepFraction, masking.KeptPredictionRate, random.KeptPredictionRate),
                smoothKept, filterMetrics, seconds);
            results.Add(new MemberExplanations(member.Member, saliencyFigure, smoothFigure, filterFigure, outputFigure, maps, metrics));
        }
        ctx.Rows["images"] = images.Count;
        ctx.Rows["members"] = chosen.Count;
        return new Explanations(results, new ExplanationMetrics(images.Count, results.ToDictionary(r => r.Member, r => r.Metrics)));
    }

    /// <summary>A method's maps as a Parquet tensor [images, side, side], with the image ids, method and target classes.</summary>
    private static async Task<TensorFile> WriteMapsAsync(StageContext ctx, string relativePath, SaliencyResult maps, FaceSet images, string method)
    {
        var path = ctx.OutputPath(relativePath);
        await ParquetTensorStore.WriteTensorAsync(path, maps.Maps, [maps.Count, maps.Side, maps.Side],
            new Dictionary<string, string>
            {
                ["ids"] = string.Join(",", images.Ids), ["method"] = method,
                ["target_classes"] = string.Join(",", maps.TargetClasses),
            }, ctx.CancellationToken);
        return new TensorFile(path);
    }

    private static float[] Pixels(FaceSet faces) => faces.Pixels.Select(b => b / 255f).ToArray();

    /// <summary>The rows of the requested ids, or the first per_class originals of each class, in class order.</summary>
    internal static int[] PickImages(FaceSet valid, string ids, int perClass)
    {
        if (ids.Trim().Length > 0)
        {
            return ids.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t =>
            {
                if (!long.TryParse(t, out var id)) throw new FlowDefinitionException($"visualize.images: '{t}' is not an image id");
                int row = Array.FindIndex(valid.Ids, x => x == id);
                return row >= 0 ? row : throw new FlowDefinitionException($"visualize.images: id {id} is not in the validation set");
            }).ToArray();
        }
        var rows = new List<int>();
        for (int c = 0; c < valid.ClassNames.Count; c++)
            rows.AddRange(Enumerable.Range(0, valid.Count).Where(i => valid.Labels[i] == c && !valid.Flipped[i]).Take(perClass));
        if (rows.Count == 0) throw new FlowDefinitionException("visualize: the validation set is empty");
        return rows.ToArray();
    }
}
