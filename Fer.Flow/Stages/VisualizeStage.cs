using Fer.Core.Data;
using Fer.Core.Explain;
using Fer.Core.Models;
using Fer.Core.Plots;
using Fer.Core.Storage;
using Fer.Flow.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace Fer.Flow.Stages;

/// <summary>
/// Explains trained members (the seed report's sections 4 and 5): saliency maps with low-saliency pixels
/// masked and the prediction re-checked, SmoothGrad and Grad-CAM, filters found by gradient ascent, and a
/// layer's outputs for one image. Runs from cached weights and data, so `--only visualize` trains nothing.
/// </summary>
public sealed class VisualizeStage : IStage
{
    public string Name => "visualize";
    public int CodeVersion => 2; // 2: filter contrast by percentiles, per-method seconds, all maps as Parquet
    public IReadOnlyList<string> Upstream => ["split", "train"];
    public IReadOnlyList<StageParameter> Parameters { get; } =
    [
        StageParameter.String("members", "", "Comma-separated members to explain (default: the first member)"),
        StageParameter.String("images", "", "Comma-separated validation image ids (default: per_class images of each class)"),
        StageParameter.Int("per_class", 1, "Validation images per class when images is empty"),
        StageParameter.String("methods", "saliency,smoothgrad,gradcam,filters,outputs", "Which explanations to draw"),
        StageParameter.Float("keep_fraction", 0.3, "Share of most salient pixels kept when masking"),
        StageParameter.Int("smoothgrad_samples", 25, "Noisy copies averaged by SmoothGrad"),
        StageParameter.String("gradcam_layer", "conv2d_6", "Conv layer for Grad-CAM (Keras-style name)"),
        StageParameter.String("filter_layer", "max_pooling2d_1", "Layer whose filters are visualised by gradient ascent"),
        StageParameter.Int("ascent_steps", 200, "Gradient ascent steps"),
        StageParameter.Int("max_filters", 64, "At most this many filters of the layer"),
        StageParameter.String("output_layer", "conv2d_1", "Layer whose outputs are drawn for one image"),
        StageParameter.Int("seed", 0, "Seed of SmoothGrad noise and ascent start images"),
    ];

    public async Task RunAsync(StageContext ctx)
    {
        var s = ctx.Settings;
        var split = ctx.Input("split");
        var trainOutput = ctx.Input("train");
        var valid = await ParquetTensorStore.ReadFacesAsync(split.PathOf(SplitStage.ValidFile), ctx.CancellationToken);
        var members = TrainStage.ReadMembers(trainOutput);
        var wanted = s.String("members").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var w in wanted)
            if (!members.Any(m => m.Name == w))
                throw new FlowDefinitionException($"visualize.members: no member '{w}'; members: {string.Join(", ", members.Select(m => m.Name))}");
        var chosen = wanted.Length == 0 ? [members[0]] : members.Where(m => wanted.Contains(m.Name)).ToList();
        var methods = s.String("methods").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
        var rows = PickImages(valid, s.String("images"), (int)s.Int("per_class"));
        var images = valid.Select(rows);
        var classes = valid.ClassNames;
        var titles = Enumerable.Range(0, images.Count).Select(i => $"id {images.Ids[i]}: {classes[images.Labels[i]]}").ToList();
        var metrics = new Dictionary<string, object>();

        foreach (var member in chosen)
        {
            ctx.CancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            var device = ctx.Run.Device;
            using var model = TrainStage.LoadModel(trainOutput, member, classes.Count, valid.Side, device);
            var layerNames = model.Layers.Select(l => l.Name).ToHashSet();
            var x = images.ImagesTensor(device);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var memberMetrics = new Dictionary<string, object>();
            var seconds = new Dictionary<string, double>();
            double lapStart = 0;
            void Lap(string method)
            {
                seconds[method] = clock.Elapsed.TotalSeconds - lapStart;
                lapStart = clock.Elapsed.TotalSeconds;
            }

            var saliency = Saliency.Vanilla(model, x);
            var masking = SaliencyMasking.MaskTop(model, x, saliency, s.Float("keep_fraction"));
            var random = SaliencyMasking.MaskRandom(model, x, s.Float("keep_fraction"), s.Int("seed"));
            memberMetrics["masking"] = new { keep_fraction = s.Float("keep_fraction"), kept_prediction_top = masking.KeptPredictionRate, kept_prediction_random = random.KeptPredictionRate };
            await WriteMapsAsync(ctx, $"saliency/{member.Name}.parquet", saliency, images, "vanilla");
            Lap("saliency");

            SaliencyResult? gradCam = null;
            var camLayer = s.String("gradcam_layer");
            if (methods.Contains("gradcam"))
            {
                if (layerNames.Contains(camLayer))
                {
                    gradCam = Saliency.GradCam(model, x, camLayer);
                    await WriteMapsAsync(ctx, $"saliency/{member.Name}_gradcam.parquet", gradCam, images, $"gradcam:{camLayer}");
                }
                else ctx.Log.Information("Member {Model} has no layer {Layer}: no Grad-CAM", member.Name, camLayer);
                Lap("gradcam");
            }
            if (methods.Contains("saliency"))
                ExplanationFigures.SaveSaliencyRows(ctx.OutputPath($"publish/figures/visualize_{member.Name}_saliency.png"),
                    Pixels(images), valid.Side, titles, saliency, masking, gradCam, classes);
            if (methods.Contains("smoothgrad"))
            {
                var smooth = Saliency.SmoothGrad(model, x, (int)s.Int("smoothgrad_samples"), 0.15, s.Int("seed"));
                await WriteMapsAsync(ctx, $"saliency/{member.Name}_smoothgrad.parquet", smooth, images, "smoothgrad");
                var smoothMasking = SaliencyMasking.MaskTop(model, x, smooth, s.Float("keep_fraction"));
                ExplanationFigures.SaveSaliencyRows(ctx.OutputPath($"publish/figures/visualize_{member.Name}_smoothgrad.png"),
                    Pixels(images), valid.Side, titles, smooth, smoothMasking, gradCam, classes);
                memberMetrics["smoothgrad_kept_prediction_top"] = smoothMasking.KeptPredictionRate;
                Lap("smoothgrad");
            }
            var filterLayer = s.String("filter_layer");
            if (methods.Contains("filters"))
            {
                if (layerNames.Contains(filterLayer))
                {
                    var ascent = FilterVisualizer.Ascend(model, filterLayer,
                        new FilterAscentOptions(Steps: (int)s.Int("ascent_steps"), Seed: s.Int("seed"), MaxFilters: (int)s.Int("max_filters")), device);
                    ExplanationFigures.SaveFilterGrid(ctx.OutputPath($"publish/figures/visualize_{member.Name}_filters_{filterLayer}.png"), ascent,
                        $"Filters of layer {filterLayer} (# Ascent Epoch {s.Int("ascent_steps")}), {member.Name}");
                    memberMetrics["filters"] = new
                    {
                        layer = filterLayer, count = ascent.FinalActivation.Length, seconds = ascent.Seconds,
                        mean_start_activation = ascent.StartActivation.Average(), mean_final_activation = ascent.FinalActivation.Average(),
                        selected_channels_only = ascent.SelectedChannelsOnly,
                    };
                    ctx.Log.Information("Gradient ascent on {Filters} filters of {Layer} of {Model}: {Steps} steps in {Seconds:0.0} s, mean activation {Start:0.000} -> {Final:0.000}, own filter only {SelectedChannelsOnly}",
                        ascent.FinalActivation.Length, filterLayer, member.Name, s.Int("ascent_steps"), ascent.Seconds, ascent.StartActivation.Average(),
                        ascent.FinalActivation.Average(), ascent.SelectedChannelsOnly);
                }
                else ctx.Log.Information("Member {Model} has no layer {Layer}: no filter visualisation", member.Name, filterLayer);
                Lap("filters");
            }
            var outputLayer = s.String("output_layer");
            if (methods.Contains("outputs"))
            {
                if (layerNames.Contains(outputLayer))
                {
                    var one = x.narrow(0, 0, 1);
                    var maps = LayerOutputs.Capture(model, outputLayer, one, out var ch, out var h, out var w);
                    ExplanationFigures.SaveLayerOutputGrid(ctx.OutputPath($"publish/figures/visualize_{member.Name}_outputs_{outputLayer}.png"), maps, ch, h, w,
                        $"Output of layer {outputLayer} (Given image {images.Ids[0]}), {member.Name}");
                }
                else ctx.Log.Information("Member {Model} has no layer {Layer}: no layer outputs", member.Name, outputLayer);
                Lap("outputs");
            }
            memberMetrics["seconds"] = seconds;
            ctx.Log.Information("Explained member {Model} on {Images} images in {Seconds:0.0} s ({@MethodSeconds}); masking keeps the prediction for {KeptTop:P0} of images (random masks: {KeptRandom:P0})",
                member.Name, images.Count, clock.Elapsed.TotalSeconds, seconds.ToDictionary(p => p.Key, p => Math.Round(p.Value, 2)),
                masking.KeptPredictionRate, random.KeptPredictionRate);
            metrics[member.Name] = memberMetrics;
        }
        ctx.Rows["images"] = images.Count;
        ctx.Rows["members"] = chosen.Count;
        RunMetrics.WriteFragment(Path.Combine(ctx.PublishDir, "metrics.json"), new { visualize = metrics });
    }

    /// <summary>A method's maps as a Parquet tensor [images, side, side], with the image ids, method and target classes.</summary>
    private static Task WriteMapsAsync(StageContext ctx, string relativePath, SaliencyResult maps, FaceSet images, string method) =>
        ParquetTensorStore.WriteTensorAsync(ctx.OutputPath(relativePath), maps.Maps, [maps.Count, maps.Side, maps.Side],
            new Dictionary<string, string>
            {
                ["ids"] = string.Join(",", images.Ids), ["method"] = method,
                ["target_classes"] = string.Join(",", maps.TargetClasses),
            }, ctx.CancellationToken);

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
