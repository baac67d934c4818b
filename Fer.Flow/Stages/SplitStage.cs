using Fer.Core.Data;
using Fer.Core.Storage;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Stages;

/// <summary>
/// Train / validation / test split. Leak-free by default: an image and its mirror twin stay on one side.
/// leaky=true reproduces the seed report's flip-then-split, whose mirror twins inflate validation accuracy.
/// </summary>
public sealed class SplitStage : IStage
{
    public const string TrainFile = "train.parquet", ValidFile = "valid.parquet", TestFile = "test.parquet";

    public string Name => "split";
    public int CodeVersion => 1;
    public IReadOnlyList<string> Upstream => ["augment"];
    public IReadOnlyList<StageParameter> Parameters { get; } =
    [
        StageParameter.Float("valid_fraction", 0.1, "Share of training images held out for validation (random mode)"),
        StageParameter.Int("seed", 0, "Seed of the split"),
        StageParameter.Bool("leaky", false, "Split rows independently after flipping (the seed report's mistake)"),
        StageParameter.String("mode", "auto", "random: stratified split of the training rows; usage: Kaggle's Training/PublicTest/PrivateTest; auto: usage when the data has PublicTest rows", "auto", "random", "usage"),
    ];

    public async Task RunAsync(StageContext ctx)
    {
        var s = ctx.Settings;
        var faces = await ParquetTensorStore.ReadFacesAsync(ctx.Input("augment").PathOf(AugmentStage.FacesFile), ctx.CancellationToken);
        var mode = s.String("mode") switch
        {
            "usage" => SplitMode.Usage,
            "random" => SplitMode.Random,
            _ => faces.Usage.Contains(FaceUsage.PublicTest) ? SplitMode.Usage : SplitMode.Random,
        };
        var split = FaceSplitter.Split(faces, new SplitOptions(s.Float("valid_fraction"), (int)s.Int("seed"), s.Bool("leaky"), mode));
        await ParquetTensorStore.WriteFacesAsync(ctx.OutputPath(TrainFile), split.Train, ct: ctx.CancellationToken);
        await ParquetTensorStore.WriteFacesAsync(ctx.OutputPath(ValidFile), split.Valid, ct: ctx.CancellationToken);
        await ParquetTensorStore.WriteFacesAsync(ctx.OutputPath(TestFile), split.Test, ct: ctx.CancellationToken);
        ctx.Rows["train"] = split.Train.Count;
        ctx.Rows["valid"] = split.Valid.Count;
        ctx.Rows["test"] = split.Test.Count;
        var validSources = split.Valid.SourceIds.ToHashSet();
        long straddling = split.Train.SourceIds.Count(validSources.Contains);
        ctx.Rows["twins_across_split"] = straddling;
        ctx.Log.Information("Split {Mode} (leaky {Leaky}): train {TrainRows}, valid {ValidRows}, test {TestRows}; {Straddling} training rows share a source image with validation",
            mode, s.Bool("leaky"), split.Train.Count, split.Valid.Count, split.Test.Count, straddling);
        RunMetrics.WriteFragment(Path.Combine(ctx.PublishDir, "metrics.json"), new
        {
            split = new { mode = mode.ToString().ToLowerInvariant(), leaky = s.Bool("leaky"), valid_fraction = s.Float("valid_fraction"), rows = ctx.Rows },
        });
    }
}
