using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Fer.Core;
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
    [Description("Which explanations to draw: attribution methods (saliency, smoothgrad, gradcam, integrated_gradients, guided_backprop, guided_gradcam, occlusion, eigencam), filters, outputs")]
    public string Methods { get; init; } = "saliency,smoothgrad,gradcam,integrated_gradients,guided_backprop,guided_gradcam,occlusion,eigencam,filters,outputs";
    [Description("Share of most salient pixels kept when masking"), Range(0.0, 1.0, MinimumIsExclusive = true, MaximumIsExclusive = true)] public double KeepFraction { get; init; } = 0.3;
    [Description("Noisy copies averaged by SmoothGrad"), Range(1.0, 1000.0)] public int SmoothgradSamples { get; init; } = 25;
    [Description("Conv layer for Grad-CAM, Guided Grad-CAM and Eigen-CAM (Keras-style name)")] public string GradcamLayer { get; init; } = "conv2d_6";
    [Description("Integrated Gradients: points on the path from the baseline"), Range(1.0, 1024.0)] public int IgSteps { get; init; } = 32;
    [Description("Integrated Gradients' baseline")] public IgBaseline IgBaseline { get; init; } = IgBaseline.Black;
    [Description("Occlusion: side of the square patch in pixels"), Range(1.0, 1024.0)] public int OcclusionPatch { get; init; } = 8;
    [Description("Occlusion: stride of the patch in pixels"), Range(1.0, 1024.0)] public int OcclusionStride { get; init; } = 6;
    [Description("Deletion and insertion curves: points from 0 to all pixels (0: no faithfulness measures)"), Range(0.0, 256.0)] public int FaithfulnessSteps { get; init; } = 10;
    [Description("Sanity check: steps of the cascading randomisation, the last re-initialising every weight layer (0: off)"), Range(0.0, 64.0)] public int SanityLayers { get; init; } = 3;
    [Description("Sanity check: explained images it re-explains at each step"), Range(1.0, 1000.0)] public int SanityImages { get; init; } = 1;
    [Description("Layer whose filters are visualised by gradient ascent")] public string FilterLayer { get; init; } = "max_pooling2d_1";
    [Description("Gradient ascent steps"), Range(1.0, 100_000.0)] public int AscentSteps { get; init; } = 200;
    [Description("At most this many filters of the layer"), Range(1.0, 4096.0)] public int MaxFilters { get; init; } = 64;
    [Description("Layer whose outputs are drawn for one image")] public string OutputLayer { get; init; } = "conv2d_1";
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
        var members = TrainMemberStage.MembersIn(inputs);
        foreach (var wanted in s.Members.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            if (!members.Contains(wanted))
                throw new FlowDefinitionException($"{owner}: members: no member '{wanted}'; members: {string.Join(", ", members)}");
    }

    protected override async Task<Explanations> RunAsync(StageContext ctx, VisualizeInputs inputs, VisualizeSettings s)
    {
        var split = inputs.Split;
        var valid = await split.Valid.ReadAsync(ctx.CancellationToken);
        var members = inputs.Members.Select(p => p.Output).ToList();
        // Each named member exists: the planner checked it against the flow (CheckBound).
        var wanted = s.Members.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var chosen = wanted.Length == 0 ? [members[0]] : members.Where(m => wanted.Contains(m.Member)).ToList();
        var methods = s.MethodList.ToHashSet();
        var rows = PickImages(valid, s.Images, s.PerClass);
        var images = valid.Select(rows);
        var classes = valid.ClassNames;
        var titles = Enumerable.Range(0, images.Count).Select(i => $"id {images.Ids[i]}: {classes[images.Labels[i]]}").ToList();
        var results = new List<MemberExplanations>();
        // Synthetic faces know where their expression is: the seed renders each face's evidence mask.
        int? evidenceSeed = inputs.Data?.Metrics.SyntheticSeed;
        var pixels = Pixels(images); // 0..1, for every figure of every member

        foreach (var member in chosen)
        {
            ctx.CancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            // Everything a member's explanation computes (maps, faithfulness curves, layer outputs) on exact native
            // kernels, so its numbers do not depend on which kernels other work in the process holds (see TorchRuntime).
            using var kernels = TorchRuntime.NativeCpuConvolutions();
            var device = ctx.Run.Device;
            using var model = member.Load(ctx.Models, classes.Count, valid.Side, device);
            var layerNames = model.Layers.Select(l => l.Name).ToHashSet();
            var x = images.ImagesTensor(device);
            var explain = new MemberExplaining(ctx, s, model, member.Member, x, images, pixels, titles, classes, valid.Side, methods, evidenceSeed);
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
            SaliencyResult? smoothMaps = null;
            // The steps in the order they run (each Begin below), counted before the first for the progress row.
            var applicable = explain.ApplicableMethods();
            var steps = new List<string> { "saliency" };
            if (methods.Contains("gradcam")) steps.Add("gradcam");
            if (methods.Contains("smoothgrad")) steps.Add("smoothgrad");
            if (methods.Contains("filters")) steps.Add("filters");
            if (methods.Contains("outputs")) steps.Add("outputs");
            steps.AddRange(applicable.Select(m => m.Name).Where(n => n is not ("saliency" or "gradcam" or "smoothgrad")));
            if (s.FaithfulnessSteps > 0 && applicable.Count > 0) steps.Add("faithfulness");
            if (s.SanityLayers > 0 && applicable.Count > 0) steps.Add("sanity");
            steps.Add("figures");
            using var progress = new StepProgress(ctx.Run.Progress.Start($"visualize {member.Member}"), ctx.Log, member.Member, steps.Count);

            progress.Begin("saliency");
            var saliency = Saliency.Vanilla(model, x);
            var masking = SaliencyMasking.MaskTop(model, x, saliency, s.KeepFraction);
            var random = SaliencyMasking.MaskRandom(model, x, s.KeepFraction, s.Seed);
            maps.Add(await WriteMapsAsync(ctx, $"saliency/{member.Member}.parquet", saliency, images, "vanilla"));
            Lap("saliency");

            SaliencyResult? gradCam = null;
            if (methods.Contains("gradcam"))
            {
                progress.Begin("gradcam");
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
                ExplanationFigures.SaveSaliencyRows(saliencyFigure.Path, pixels, valid.Side, titles, saliency, masking, gradCam, classes);
            }
            if (methods.Contains("smoothgrad"))
            {
                progress.Begin("smoothgrad");
                var smooth = smoothMaps = Saliency.SmoothGrad(model, x, s.SmoothgradSamples, 0.15, s.Seed);
                maps.Add(await WriteMapsAsync(ctx, $"saliency/{member.Member}_smoothgrad.parquet", smooth, images, "smoothgrad"));
                var smoothMasking = SaliencyMasking.MaskTop(model, x, smooth, s.KeepFraction);
                smoothFigure = ctx.Figure($"visualize_{member.Member}_smoothgrad.png");
                ExplanationFigures.SaveSaliencyRows(smoothFigure.Path, pixels, valid.Side, titles, smooth, smoothMasking, gradCam, classes);
                smoothKept = smoothMasking.KeptPredictionRate;
                Lap("smoothgrad");
            }
            if (methods.Contains("filters"))
            {
                progress.Begin("filters");
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
                progress.Begin("outputs");
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
            var done = new Dictionary<string, SaliencyResult?> { ["saliency"] = saliency, ["gradcam"] = gradCam, ["smoothgrad"] = smoothMaps }
                .Where(p => p.Value is not null && methods.Contains(p.Key)).ToDictionary(p => p.Key, p => p.Value!);
            var explained = await explain.MethodsAsync(applicable, done, seconds, maps, progress);
            lapStart = clock.Elapsed.TotalSeconds;
            ctx.Log.Information("Explained member {Model} on {Images} images in {Seconds:0.0} s ({@MethodSeconds}); masking keeps the prediction for {KeptTop:P0} of images (random masks: {KeptRandom:P0})",
                member.Member, images.Count, clock.Elapsed.TotalSeconds, seconds.ToDictionary(p => p.Key, p => Math.Round(p.Value, 2)),
                masking.KeptPredictionRate, random.KeptPredictionRate);
            var metrics = new MemberExplanationMetrics(new MaskingMetrics(s.KeepFraction, masking.KeptPredictionRate, random.KeptPredictionRate),
                smoothKept, filterMetrics, seconds) { Methods = explained.Metrics, RandomMap = explained.Random, SanityLayers = explained.SanityLayers };
            results.Add(new MemberExplanations(member.Member, saliencyFigure, smoothFigure, filterFigure, outputFigure, maps, metrics)
            { MethodFigures = explained.Figures, Curves = explained.Curves, Sanity = explained.Sanity });
        }
        ctx.Rows["images"] = images.Count;
        ctx.Rows["members"] = chosen.Count;
        return new Explanations(results, new ExplanationMetrics(images.Count, results.ToDictionary(r => r.Member, r => r.Metrics)));
    }

    /// <summary>What the attribution methods beyond the seed report's made for one member.</summary>
    private sealed record MethodExplanations(Dictionary<string, FigureFile> Figures, FigureFile? Curves, FigureFile? Sanity,
        Dictionary<string, MethodMetrics> Metrics, RandomMapMetrics? Random, List<string> SanityLayers);

    /// <summary>One member being explained: the model, the images (as a tensor, as 0..1 pixels, their titles) and the settings.</summary>
    private sealed record MemberExplaining(StageContext Ctx, VisualizeSettings S, Fer.Core.Models.FerModel Model, string Member, torch.Tensor X,
        FaceSet Images, float[] Pixels, IReadOnlyList<string> Titles, IReadOnlyList<string> Classes, int Side, HashSet<string> Methods, int? EvidenceSeed)
    {
        public AttributionSettings Attribution { get; } = new()
        {
            SmoothGradSamples = S.SmoothgradSamples, IgSteps = S.IgSteps, IgBaseline = S.IgBaseline, CamLayer = S.GradcamLayer,
            OcclusionPatch = Math.Min(S.OcclusionPatch, Side), OcclusionStride = S.OcclusionStride, Seed = S.Seed,
        };

        /// <summary>The requested attribution methods this model has the layers for (the others are logged and left out).</summary>
        public List<AttributionMethod> ApplicableMethods()
        {
            var requested = AttributionMethods.All.Where(m => Methods.Contains(m.Name)).ToList();
            foreach (var m in requested.Where(m => !m.AppliesTo(Model, Attribution)))
                Ctx.Log.Information("Member {Model} has no layer {Layer}: no {Method}", Member, S.GradcamLayer, m.Title);
            return requested.Where(m => m.AppliesTo(Model, Attribution)).ToList();
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
