using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Fer.Core;
using Fer.Core.Data;
using Fer.Core.Explain;
using Fer.Core.Models;
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
    [Description("Which explanations to draw: attribution methods (saliency, smoothgrad, gradcam, integrated_gradients, guided_backprop, guided_gradcam, occlusion, eigencam), filters, outputs")]
    public string Methods { get; init; } = "saliency,smoothgrad,gradcam,integrated_gradients,guided_backprop,guided_gradcam,occlusion,eigencam,filters,outputs";
    [Description("Share of most salient pixels kept when masking"), Range(0.0, 1.0, MinimumIsExclusive = true, MaximumIsExclusive = true)] public double KeepFraction { get; init; } = 0.3;
    [Description("Noisy copies averaged by SmoothGrad"), Range(1.0, 1000.0)] public int SmoothgradSamples { get; init; } = 25;
    [Description("Layer with feature maps for Grad-CAM, Guided Grad-CAM and Eigen-CAM (Keras-style name; default: each model's last convolution)")] public string GradcamLayer { get; init; } = "";
    [Description("Integrated Gradients: points on the path from the baseline"), Range(1.0, 1024.0)] public int IgSteps { get; init; } = 32;
    [Description("Integrated Gradients' baseline")] public IgBaseline IgBaseline { get; init; } = IgBaseline.Black;
    [Description("Occlusion: side of the square patch in pixels"), Range(1.0, 1024.0)] public int OcclusionPatch { get; init; } = 8;
    [Description("Occlusion: stride of the patch in pixels"), Range(1.0, 1024.0)] public int OcclusionStride { get; init; } = 6;
    [Description("Deletion and insertion curves: points from 0 to all pixels (0: no faithfulness measures)"), Range(0.0, 256.0)] public int FaithfulnessSteps { get; init; } = 10;
    [Description("Sanity check: steps of the cascading randomisation, the last re-initialising every weight layer (0: off)"), Range(0.0, 64.0)] public int SanityLayers { get; init; } = 3;
    [Description("Sanity check: explained images it re-explains at each step"), Range(1.0, 1000.0)] public int SanityImages { get; init; } = 1;
    [Description("Layer whose filters are visualised by gradient ascent (default: each model's first pooling layer, else its first convolution)")] public string FilterLayer { get; init; } = "";
    [Description("Gradient ascent steps"), Range(1.0, 100_000.0)] public int AscentSteps { get; init; } = 200;
    [Description("At most this many filters of the layer"), Range(1.0, 4096.0)] public int MaxFilters { get; init; } = 64;
    [Description("Layer whose outputs are drawn for one image (default: each model's first convolution)")] public string OutputLayer { get; init; } = "";
    [Description("Seed of SmoothGrad noise and ascent start images")] public long Seed { get; init; }

    /// <summary>The explanation methods this stage knows (checked at plan time).</summary>
    public static readonly IReadOnlyList<string> KnownMethods = [.. AttributionMethods.Names, "filters", "outputs"];

    public IReadOnlyList<string> MethodList => Methods.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

public sealed record MaskingMetrics(double KeepFraction, double KeptPredictionTop, double KeptPredictionRandom);

public sealed record FilterMetrics(string Layer, int Count, double Seconds, double MeanStartActivation, double MeanFinalActivation, bool SelectedChannelsOnly);

/// <summary>
/// One attribution method's measured faithfulness on the explained images (see <see cref="FaithfulnessResult"/>):
/// deletion and insertion areas, ROAD's most- and least-relevant-first scores, their combination
/// (insertion - deletion + LeRF - MoRF), the rank correlation with the fully randomised model's maps (null when the
/// sanity check is off) and the share of the map on the synthetic faces' evidence regions over their area share
/// (null on real data).
/// </summary>
public sealed record MethodMetrics(string Title, double DeletionAuc, double InsertionAuc, double RoadMorf, double RoadLerf, double FaithfulnessScore,
    double? SanityRankCorrelation, bool? DependsOnModel, double? EvidenceRatio, double Seconds);

/// <summary>The random-map baseline of the same curves.</summary>
public sealed record RandomMapMetrics(double DeletionAuc, double InsertionAuc, double RoadMorf, double RoadLerf, double FaithfulnessScore);

public sealed record MemberExplanationMetrics(MaskingMetrics Masking, double? SmoothgradKeptPredictionTop, FilterMetrics? Filters,
    IReadOnlyDictionary<string, double> Seconds)
{
    /// <summary>Per attribution method, by its name (integrated_gradients, ...); empty when faithfulness is off.</summary>
    public IReadOnlyDictionary<string, MethodMetrics> Methods { get; init; } = new Dictionary<string, MethodMetrics>();
    public RandomMapMetrics? RandomMap { get; init; }
    /// <summary>The sanity check's steps: the weight layer re-initialised last at each (top down).</summary>
    public IReadOnlyList<string> SanityLayers { get; init; } = [];
}

/// <summary>One member's explanations: its figures (absent when not drawn) and the maps as Parquet tensors.</summary>
public sealed record MemberExplanations(string Member, FigureFile? Saliency, FigureFile? SmoothGrad, FigureFile? Filters, FigureFile? Outputs,
    IReadOnlyList<TensorFile> Maps, MemberExplanationMetrics Metrics)
{
    /// <summary>The new methods' figures by method name (integrated_gradients, guided_gradcam, occlusion, ...).</summary>
    public IReadOnlyDictionary<string, FigureFile> MethodFigures { get; init; } = new Dictionary<string, FigureFile>();
    /// <summary>Every method's deletion, insertion and ROAD curves.</summary>
    public FigureFile? Curves { get; init; }
    /// <summary>The sanity check's rows of maps per randomised layer.</summary>
    public FigureFile? Sanity { get; init; }
}

public sealed record ExplanationMetrics(int Images, IReadOnlyDictionary<string, MemberExplanationMetrics> Members);

public sealed record Explanations(IReadOnlyList<MemberExplanations> Members, ExplanationMetrics Metrics) : IHasMetrics
{
    object IHasMetrics.Metrics => Metrics;
}

/// <summary>What explanations are made from: the split, every trained member, and the raw data when the flow ingests it.</summary>
public sealed record VisualizeInputs(SplitFaces Split, IReadOnlyList<Produced<TrainedMember>> Members, RawFaces? Data) : IStageInputs;

/// <summary>
/// Explains trained members (the seed report's sections 4 and 5): saliency maps with low-saliency pixels
/// masked and the prediction re-checked, SmoothGrad and Grad-CAM, filters found by gradient ascent, and a
/// layer's outputs for one image. Runs from cached weights and data, so `--only visualize` trains nothing.
/// </summary>
public sealed class VisualizeStage : Stage<VisualizeInputs, VisualizeSettings, Explanations>
{
    public override string Kind => "visualize";

    public override object BindSettings(IReadOnlyDictionary<string, object> given, string owner, PlanScope scope)
    {
        var s = (VisualizeSettings)base.BindSettings(given, owner, scope);
        foreach (var m in s.MethodList)
            if (!VisualizeSettings.KnownMethods.Contains(m))
                throw new FlowDefinitionException($"{owner}: methods: unknown method '{m}'; known methods: {string.Join(", ", VisualizeSettings.KnownMethods)}");
        return s;
    }

    protected override void CheckBound(VisualizeSettings s, BoundInputs inputs, string owner)
    {
        var members = TrainMemberStage.MembersOf(inputs);
        var names = members.Select(m => m.Member).ToList();
        var wanted = s.Members.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var name in wanted)
            if (!names.Contains(name))
                throw new FlowDefinitionException($"{owner}: members: no member '{name}'; members: {string.Join(", ", names)}");
        // Each layer a setting names must be in every member explained, with the output its methods need.
        foreach (var (member, settings) in wanted.Length == 0 ? members.Take(1) : members.Where(m => wanted.Contains(m.Member)))
        {
            if (ModelLayout.Of(inputs.Scope.Models, settings.Model, settings.Hyperparameters) is not { } layout) continue;
            CheckLayer(owner, "gradcam_layer", s.GradcamLayer, member, settings.Model, layout, l => l.Spatial, "feature maps [N, C, h, w]");
            CheckLayer(owner, "filter_layer", s.FilterLayer, member, settings.Model, layout, l => l.HasChannels, "channels");
            CheckLayer(owner, "output_layer", s.OutputLayer, member, settings.Model, layout, l => l.HasChannels, "channels");
        }
    }

    private static void CheckLayer(string owner, string setting, string name, string member, string model, ModelLayout layout,
        Func<LayerShape, bool> fits, string needs)
    {
        if (name.Length == 0) return; // the model's own default
        var layer = layout.Find(name);
        if (layer is not null && fits(layer)) return;
        var fitting = layout.Layers.Where(fits).Select(l => l.Name).ToList();
        throw new FlowDefinitionException($"{owner}: {setting}: " +
            (layer is null ? $"member {member} (model {model}) has no layer '{name}'" : $"layer {layer} of member {member} (model {model}) has no {needs}") +
            $"; its layers with {needs}: {(fitting.Count == 0 ? "none" : string.Join(", ", fitting))}");
    }

    protected override async Task<Explanations> RunAsync(StageContext ctx, VisualizeInputs inputs, VisualizeSettings s)
    {
        var valid = await inputs.Split.Valid.ReadAsync(ctx.CancellationToken);
        var members = inputs.Members.Select(p => p.Output).ToList();
        // Each named member exists and has the layers named: the planner checked them against the flow (CheckBound).
        var wanted = s.Members.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var chosen = wanted.Length == 0 ? [members[0]] : members.Where(m => wanted.Contains(m.Member)).ToList();
        var images = valid.Select(PickImages(valid, s.Images, s.PerClass));
        var shown = new ShownImages
        {
            Faces = images,
            Pixels = Pixels(images),
            Classes = valid.ClassNames,
            Titles = [.. Enumerable.Range(0, images.Count).Select(i => $"id {images.Ids[i]}: {valid.ClassNames[images.Labels[i]]}")],
            // Synthetic faces know where their expression is: the seed renders each face's evidence mask.
            EvidenceSeed = inputs.Data?.Metrics.SyntheticSeed,
        };
        var results = new List<MemberExplanations>();
        foreach (var member in chosen)
        {
            ctx.CancellationToken.ThrowIfCancellationRequested();
            results.Add(await ExplainAsync(ctx, s, member, shown));
        }
        ctx.Rows["images"] = images.Count;
        ctx.Rows["members"] = chosen.Count;
        return new Explanations(results, new ExplanationMetrics(images.Count, results.ToDictionary(r => r.Member, r => r.Metrics)));
    }

    /// <summary>One member's explanations: the seed report's figures first, then the other attribution methods and their checks.</summary>
    private static async Task<MemberExplanations> ExplainAsync(StageContext ctx, VisualizeSettings s, TrainedMember member, ShownImages shown)
    {
        using var scope = torch.NewDisposeScope();
        // Everything a member's explanation computes (maps, faithfulness curves, layer outputs) on exact native
        // kernels, so its numbers do not depend on which kernels other work in the process holds (see TorchRuntime).
        using var kernels = TorchRuntime.NativeCpuConvolutions();
        using var model = member.Load(ctx.Models, shown.Classes.Count, shown.Faces.Side, ctx.Run.Device);
        var explain = new MemberExplaining(ctx, s, model, member.Member, shown);
        var applicable = explain.ApplicableMethods();
        using var progress = new StepProgress(ctx.Run.Progress.Start($"visualize {member.Member}"), ctx.Log, member.Member, explain.Steps(applicable).Count);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var seed = await explain.SeedReportAsync(progress);
        var explained = await explain.MethodsAsync(applicable, seed.Done, seed.Seconds, seed.Maps, progress);
        ctx.Log.Information("Explained member {Model} on {Images} images in {Seconds:0.0} s ({@MethodSeconds}); masking keeps the prediction for {KeptTop:P0} of images (random masks: {KeptRandom:P0})",
            member.Member, shown.Faces.Count, clock.Elapsed.TotalSeconds, seed.Seconds.ToDictionary(p => p.Key, p => Math.Round(p.Value, 2)),
            seed.Masking.KeptPredictionRate, seed.RandomMasking.KeptPredictionRate);
        var metrics = new MemberExplanationMetrics(new MaskingMetrics(s.KeepFraction, seed.Masking.KeptPredictionRate, seed.RandomMasking.KeptPredictionRate),
            seed.SmoothGradKept, seed.FilterMetrics, seed.Seconds) { Methods = explained.Metrics, RandomMap = explained.Random, SanityLayers = explained.SanityLayers };
        return new MemberExplanations(member.Member, seed.Saliency, seed.SmoothGrad, seed.Filters, seed.Outputs, seed.Maps, metrics)
        { MethodFigures = explained.Figures, Curves = explained.Curves, Sanity = explained.Sanity };
    }

    /// <summary>The validation images explained, shared by every member: faces, 0..1 pixels, titles, class names.</summary>
    private sealed record ShownImages
    {
        public required FaceSet Faces { get; init; }
        public required float[] Pixels { get; init; }
        public required IReadOnlyList<string> Titles { get; init; }
        public required IReadOnlyList<string> Classes { get; init; }
        /// <summary>The synthetic faces' seed (null on real data): with it their evidence masks are rendered.</summary>
        public int? EvidenceSeed { get; init; }
    }

    /// <summary>What the seed report's sections made for one member, and the maps later steps reuse.</summary>
    private sealed record SeedReportExplanations
    {
        public required MaskingResult Masking { get; init; }
        public required MaskingResult RandomMasking { get; init; }
        public FigureFile? Saliency { get; init; }
        public FigureFile? SmoothGrad { get; init; }
        public FigureFile? Filters { get; init; }
        public FigureFile? Outputs { get; init; }
        public FilterMetrics? FilterMetrics { get; init; }
        public double? SmoothGradKept { get; init; }
        /// <summary>Maps already made, by method name (saliency, gradcam, smoothgrad), for the methods requested.</summary>
        public required Dictionary<string, SaliencyResult> Done { get; init; }
        public required Dictionary<string, double> Seconds { get; init; }
        public required List<TensorFile> Maps { get; init; }
    }

    /// <summary>What the attribution methods beyond the seed report's made for one member.</summary>
    private sealed record MethodExplanations(Dictionary<string, FigureFile> Figures, FigureFile? Curves, FigureFile? Sanity,
        Dictionary<string, MethodMetrics> Metrics, RandomMapMetrics? Random, List<string> SanityLayers);

    /// <summary>
    /// One member being explained: the model, the images (as a tensor and as <see cref="ShownImages"/>), the settings,
    /// and the layers its methods use (those named in the settings, else the model's own defaults).
    /// </summary>
    private sealed class MemberExplaining(StageContext ctx, VisualizeSettings s, FerModel model, string member, ShownImages shown)
    {
        public StageContext Ctx { get; } = ctx;
        public VisualizeSettings S { get; } = s;
        public FerModel Model { get; } = model;
        public string Member { get; } = member;
        public torch.Tensor X { get; } = shown.Faces.ImagesTensor(ctx.Run.Device);
        public FaceSet Images => shown.Faces;
        public float[] Pixels => shown.Pixels;
        public IReadOnlyList<string> Titles => shown.Titles;
        public IReadOnlyList<string> Classes => shown.Classes;
        public int Side => shown.Faces.Side;
        public int? EvidenceSeed => shown.EvidenceSeed;
        public HashSet<string> Methods { get; } = [.. s.MethodList];
        public string? CamLayer { get; } = Named(s.GradcamLayer) ?? model.CamLayer;
        public string? FilterLayer { get; } = Named(s.FilterLayer) ?? model.FilterLayer;
        public string? OutputLayer { get; } = Named(s.OutputLayer) ?? model.OutputLayer;

        public AttributionSettings Attribution => new()
        {
            SmoothGradSamples = S.SmoothgradSamples, IgSteps = S.IgSteps, IgBaseline = S.IgBaseline, CamLayer = CamLayer,
            OcclusionPatch = Math.Min(S.OcclusionPatch, Side), OcclusionStride = S.OcclusionStride, Seed = S.Seed,
        };

        private static string? Named(string layer) => layer.Length > 0 ? layer : null;

        private bool Has(string? layer) => layer is not null && Model.Layers.Any(l => l.Name == layer);

        /// <summary>The requested attribution methods this model has the layers for (the others are logged and left out).</summary>
        public List<AttributionMethod> ApplicableMethods()
        {
            var requested = AttributionMethods.All.Where(m => Methods.Contains(m.Name)).ToList();
            foreach (var m in requested.Where(m => !m.AppliesTo(Model, Attribution)))
                Ctx.Log.Information("Member {Model} has no layer {Layer}: no {Method}", Member, CamLayer ?? "with feature maps", m.Title);
            return requested.Where(m => m.AppliesTo(Model, Attribution)).ToList();
        }

        /// <summary>The steps in the order they run (each progress.Begin), counted before the first for the progress row.</summary>
        public List<string> Steps(List<AttributionMethod> applicable)
        {
            var steps = new List<string> { "saliency" };
            steps.AddRange(new[] { "gradcam", "smoothgrad", "filters", "outputs" }.Where(Methods.Contains));
            steps.AddRange(applicable.Select(m => m.Name).Where(n => n is not ("saliency" or "gradcam" or "smoothgrad")));
            if (S.FaithfulnessSteps > 0 && applicable.Count > 0) steps.Add("faithfulness");
            if (S.SanityLayers > 0 && applicable.Count > 0) steps.Add("sanity");
            steps.Add("figures");
            return steps;
        }

        /// <summary>
        /// The seed report's sections 4 and 5: vanilla saliency with the least salient pixels masked (against random masks),
        /// Grad-CAM beside it, SmoothGrad, the filters gradient ascent finds, and one layer's outputs for the first image.
        /// </summary>
        public async Task<SeedReportExplanations> SeedReportAsync(StepProgress progress)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var seconds = new Dictionary<string, double>();
            var maps = new List<TensorFile>();
            void Lap(string method)
            {
                seconds[method] = clock.Elapsed.TotalSeconds;
                clock.Restart();
            }

            progress.Begin("saliency");
            var saliency = Saliency.Vanilla(Model, X);
            var masking = SaliencyMasking.MaskTop(Model, X, saliency, S.KeepFraction);
            var random = SaliencyMasking.MaskRandom(Model, X, S.KeepFraction, S.Seed);
            maps.Add(await WriteMapsAsync(Ctx, $"saliency/{Member}.parquet", saliency, Images, "vanilla"));
            Lap("saliency");

            SaliencyResult? gradCam = null;
            if (Methods.Contains("gradcam"))
            {
                progress.Begin("gradcam");
                if (Has(CamLayer))
                {
                    gradCam = Saliency.GradCam(Model, X, CamLayer!);
                    maps.Add(await WriteMapsAsync(Ctx, $"saliency/{Member}_gradcam.parquet", gradCam, Images, $"gradcam:{CamLayer}"));
                }
                else Ctx.Log.Information("Member {Model} has no layer {Layer}: no Grad-CAM", Member, CamLayer ?? "with feature maps");
                Lap("gradcam");
            }
            FigureFile? saliencyFigure = null;
            if (Methods.Contains("saliency"))
            {
                saliencyFigure = Ctx.Figure($"visualize_{Member}_saliency.png");
                ExplanationFigures.SaveSaliencyRows(saliencyFigure.Path, Pixels, Side, Titles, saliency, masking, gradCam, Classes);
            }
            SaliencyResult? smooth = null;
            FigureFile? smoothFigure = null;
            double? smoothKept = null;
            if (Methods.Contains("smoothgrad"))
            {
                progress.Begin("smoothgrad");
                smooth = Saliency.SmoothGrad(Model, X, S.SmoothgradSamples, 0.15, S.Seed);
                maps.Add(await WriteMapsAsync(Ctx, $"saliency/{Member}_smoothgrad.parquet", smooth, Images, "smoothgrad"));
                var smoothMasking = SaliencyMasking.MaskTop(Model, X, smooth, S.KeepFraction);
                smoothFigure = Ctx.Figure($"visualize_{Member}_smoothgrad.png");
                ExplanationFigures.SaveSaliencyRows(smoothFigure.Path, Pixels, Side, Titles, smooth, smoothMasking, gradCam, Classes);
                smoothKept = smoothMasking.KeptPredictionRate;
                Lap("smoothgrad");
            }
            var (filterFigure, filterMetrics) = Methods.Contains("filters") ? Filters(progress) : (null, null);
            if (Methods.Contains("filters")) Lap("filters");
            var outputFigure = Methods.Contains("outputs") ? Outputs(progress) : null;
            if (Methods.Contains("outputs")) Lap("outputs");
            var done = new Dictionary<string, SaliencyResult?> { ["saliency"] = saliency, ["gradcam"] = gradCam, ["smoothgrad"] = smooth }
                .Where(p => p.Value is not null && Methods.Contains(p.Key)).ToDictionary(p => p.Key, p => p.Value!);
            return new SeedReportExplanations
            {
                Masking = masking, RandomMasking = random, Saliency = saliencyFigure, SmoothGrad = smoothFigure, Filters = filterFigure,
                Outputs = outputFigure, FilterMetrics = filterMetrics, SmoothGradKept = smoothKept, Done = done, Seconds = seconds, Maps = maps,
            };
        }

        /// <summary>The filters of the filter layer found by gradient ascent (the seed report's section 5.1).</summary>
        private (FigureFile?, FilterMetrics?) Filters(StepProgress progress)
        {
            progress.Begin("filters");
            if (!Has(FilterLayer))
            {
                Ctx.Log.Information("Member {Model} has no layer {Layer}: no filter visualisation", Member, FilterLayer ?? "to ascend");
                return (null, null);
            }
            var layer = FilterLayer!;
            var ascent = FilterVisualizer.Ascend(Model, layer, new FilterAscentOptions(Steps: S.AscentSteps, Seed: S.Seed, MaxFilters: S.MaxFilters), Ctx.Run.Device);
            var figure = Ctx.Figure($"visualize_{Member}_filters_{layer}.png");
            ExplanationFigures.SaveFilterGrid(figure.Path, ascent, $"Filters of layer {layer} (# Ascent Epoch {S.AscentSteps}), {Member}");
            Ctx.Log.Information("Gradient ascent on {Filters} filters of {Layer} of {Model}: {Steps} steps in {Seconds:0.0} s, mean activation {Start:0.000} -> {Final:0.000}, own filter only {SelectedChannelsOnly}",
                ascent.FinalActivation.Length, layer, Member, S.AscentSteps, ascent.Seconds, ascent.StartActivation.Average(),
                ascent.FinalActivation.Average(), ascent.SelectedChannelsOnly);
            return (figure, new FilterMetrics(layer, ascent.FinalActivation.Length, ascent.Seconds, ascent.StartActivation.Average(),
                ascent.FinalActivation.Average(), ascent.SelectedChannelsOnly));
        }

        /// <summary>The output layer's outputs for the first image (the seed report's section 5.2).</summary>
        private FigureFile? Outputs(StepProgress progress)
        {
            progress.Begin("outputs");
            if (!Has(OutputLayer))
            {
                Ctx.Log.Information("Member {Model} has no layer {Layer}: no layer outputs", Member, OutputLayer ?? "to draw");
                return null;
            }
            var activations = LayerOutputs.Capture(Model, OutputLayer!, X.narrow(0, 0, 1), out var ch, out var h, out var w);
            var figure = Ctx.Figure($"visualize_{Member}_outputs_{OutputLayer}.png");
            ExplanationFigures.SaveLayerOutputGrid(figure.Path, activations, ch, h, w, $"Output of layer {OutputLayer} (Given image {Images.Ids[0]}), {Member}");
            return figure;
        }

        /// <summary>
        /// The attribution methods beyond the seed report's: each method's maps (reusing those already made in
        /// <paramref name="done"/>), their Parquet tensors and figures, the faithfulness curves of every method against
        /// random maps, the evidence ratio on synthetic faces, and the cascading-randomisation sanity check on the first
        /// sanity_images images.
        /// </summary>
        public async Task<MethodExplanations> MethodsAsync(List<AttributionMethod> chosen, Dictionary<string, SaliencyResult> done,
            Dictionary<string, double> seconds, List<TensorFile> mapFiles, StepProgress progress)
        {
            var s = S;
            var maps = new Dictionary<string, SaliencyResult>();
            var methodSeconds = new Dictionary<string, double>();
            foreach (var m in chosen)
            {
                Ctx.CancellationToken.ThrowIfCancellationRequested();
                if (done.TryGetValue(m.Name, out var existing)) { maps[m.Name] = existing; methodSeconds[m.Name] = seconds.GetValueOrDefault(m.Name); continue; }
                progress.Begin(m.Name);
                var watch = System.Diagnostics.Stopwatch.StartNew();
                maps[m.Name] = m.Explain(Model, X, Attribution);
                methodSeconds[m.Name] = seconds[m.Name] = watch.Elapsed.TotalSeconds;
                mapFiles.Add(await WriteMapsAsync(Ctx, $"saliency/{Member}_{m.Name}.parquet", maps[m.Name], Images, m.Name));
            }

            var metrics = new Dictionary<string, MethodMetrics>();
            RandomMapMetrics? randomMetrics = null;
            FigureFile? curves = null, sanityFigure = null;
            var sanityLayers = new List<string>();
            var faithfulness = new Dictionary<string, FaithfulnessResult>();
            if (s.FaithfulnessSteps > 0 && maps.Count > 0)
            {
                progress.Begin("faithfulness");
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var options = new FaithfulnessOptions(Steps: s.FaithfulnessSteps, Seed: s.Seed);
                foreach (var (name, result) in maps) faithfulness[name] = Faithfulness.Measure(Model, X, result, options);
                var random = Faithfulness.MeasureRandom(Model, X, maps.Values.First().TargetClasses, options);
                randomMetrics = new RandomMapMetrics(random.DeletionAuc, random.InsertionAuc, random.RoadMorfScore, random.RoadLerfScore, random.Score);
                curves = Ctx.Figure($"visualize_{Member}_faithfulness.png");
                ExplanationFigures.SaveFaithfulnessCurves(curves.Path,
                    faithfulness.Select(p => (AttributionMethods.Get(p.Key).Title, p.Value)).ToList(), random, $"{Member}, {Images.Count} images");
                seconds["faithfulness"] = clock.Elapsed.TotalSeconds;
            }

            SanityResult? sanity = null;
            if (s.SanityLayers > 0 && maps.Count > 0)
            {
                progress.Begin("sanity");
                var clock = System.Diagnostics.Stopwatch.StartNew();
                int k = Math.Min(s.SanityImages, Images.Count);
                var subset = X.narrow(0, 0, k);
                var trained = maps.ToDictionary(p => p.Key, p => First(p.Value, k));
                sanity = SanityCheck.CascadingRandomisation(Model, subset, chosen, Attribution, s.SanityLayers, s.Seed, trained);
                sanityLayers.AddRange(sanity.Steps.Select(st => st.Layer));
                sanityFigure = Ctx.Figure($"visualize_{Member}_sanity.png");
                ExplanationFigures.SaveSanityRows(sanityFigure.Path, Pixels.AsSpan(0, Side * Side).ToArray(), Side, sanity,
                    chosen.Select(m => m.Name).ToList(), chosen.Select(m => m.Title).ToList(), 0,
                    $"Sanity check: cascading randomisation of {Member}, image {Images.Ids[0]}");
                seconds["sanity"] = clock.Elapsed.TotalSeconds;
            }

            progress.Begin("figures");
            float[]? evidence = EvidenceSeed is { } seed ? SyntheticFaces.EvidenceMasks(Images, seed) : null;
            var figures = new Dictionary<string, FigureFile>();
            foreach (var m in chosen)
            {
                var result = maps[m.Name];
                double? evidenceRatio = evidence is null ? null : Faithfulness.EvidenceRatio(result, evidence);
                double? rho = sanity?.FinalCorrelation(m.Name);
                if (faithfulness.TryGetValue(m.Name, out var f))
                    metrics[m.Name] = new MethodMetrics(m.Title, f.DeletionAuc, f.InsertionAuc, f.RoadMorfScore, f.RoadLerfScore, f.Score, rho,
                        sanity?.DependsOnModel(m.Name), evidenceRatio, methodSeconds[m.Name]);
                if (done.ContainsKey(m.Name)) continue; // the seed report's figures already show these
                var note = f is null ? null
                    : $"deletion AUC {f.DeletionAuc:0.000} (random {randomMetrics!.DeletionAuc:0.000}), insertion AUC {f.InsertionAuc:0.000} ({randomMetrics.InsertionAuc:0.000}),\n" +
                      $"ROAD MoRF {f.RoadMorfScore:0.000} / LeRF {f.RoadLerfScore:0.000}" + (rho is { } r ? $", rank correlation with a randomised model's maps {r:0.00}" : "") +
                      (evidenceRatio is { } e ? $", evidence ratio {e:0.00}" : "");
                var figure = Ctx.Figure($"visualize_{Member}_{m.Name}.png");
                ExplanationFigures.SaveMethodGrid(figure.Path, Pixels, Side, Titles.Select(t => t.Replace(": ", " ")).ToList(), result, Classes,
                    $"{result.Method}, {Member}", note);
                figures[m.Name] = figure;
            }
            foreach (var (name, mm) in metrics)
                Ctx.Log.Information("Method {Method} of {Model}: deletion AUC {DeletionAuc:0.000}, insertion AUC {InsertionAuc:0.000}, ROAD MoRF {RoadMorf:0.000}, LeRF {RoadLerf:0.000}, score {FaithfulnessScore:0.000}, sanity rank correlation {SanityRankCorrelation}, evidence ratio {EvidenceRatio}, {Seconds:0.00} s",
                    name, Member, mm.DeletionAuc, mm.InsertionAuc, mm.RoadMorf, mm.RoadLerf, mm.FaithfulnessScore, mm.SanityRankCorrelation, mm.EvidenceRatio, mm.Seconds);
            if (randomMetrics is not null)
                Ctx.Log.Information("Random maps of {Model}: deletion AUC {DeletionAuc:0.000}, insertion AUC {InsertionAuc:0.000}, ROAD MoRF {RoadMorf:0.000}, LeRF {RoadLerf:0.000}, score {FaithfulnessScore:0.000}",
                    Member, randomMetrics.DeletionAuc, randomMetrics.InsertionAuc, randomMetrics.RoadMorf, randomMetrics.RoadLerf, randomMetrics.FaithfulnessScore);
            return new MethodExplanations(figures, curves, sanityFigure, metrics, randomMetrics, sanityLayers);
        }
    }

    /// <summary>
    /// A member's explanation steps on its progress row: the step running, how many of all are done, the time so far.
    /// Each plain line is also a structured debug event.
    /// </summary>
    private sealed class StepProgress(ProgressRow row, Serilog.ILogger log, string member, int steps) : IDisposable
    {
        private int _begun;

        /// <summary>The next step begins (steps past the planned count, a slip in the count, stay at the last).</summary>
        public void Begin(string step)
        {
            _begun = Math.Min(_begun + 1, steps);
            if (row.Report($"visualize {member}: {step} (step {_begun}/{steps})", _begun - 1, steps))
                log.Debug("Progress explaining {Model}: step {Step} {StepNumber}/{Steps}", member, step, _begun, steps);
        }

        public void Dispose()
        {
            if (_begun == steps)
                row.Report($"visualize {member}: {steps} steps in {row.Elapsed.TotalSeconds:0.0} s", steps, steps);
            row.Dispose();
        }
    }

    /// <summary>The first <paramref name="k"/> maps of a result.</summary>
    private static SaliencyResult First(SaliencyResult r, int k) =>
        new(r.Maps.AsSpan(0, k * r.Side * r.Side).ToArray(), r.TargetClasses.Take(k).ToArray(), r.Side) { Method = r.Method };

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
