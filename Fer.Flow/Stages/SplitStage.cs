using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Fer.Core.Data;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Stages;

public sealed record SplitSettings
{
    [Description("Share of training images held out for validation (random mode)"), Range(0.0, 1.0, MinimumIsExclusive = true, MaximumIsExclusive = true)]
    public double ValidFraction { get; init; } = 0.1;
    [Description("Seed of the split")] public int Seed { get; init; }
    [Description("Split rows independently after flipping (the seed report's mistake)")] public bool Leaky { get; init; }
    [Description("random: stratified split of the training rows; usage: Kaggle's Training/PublicTest/PrivateTest; auto: usage when the data has PublicTest rows")]
    public SplitChoice Mode { get; init; } = SplitChoice.Auto;
}

/// <summary>How the split divides the data: <see cref="SplitMode"/>, or chosen from the data (auto).</summary>
public enum SplitChoice { Auto, Random, Usage }

public sealed record SplitMetrics(string Mode, bool Leaky, double ValidFraction, long Train, long Valid, long Test, long TwinsAcrossSplit);

/// <summary>The train, validation and test tables: what members learn from and are judged on.</summary>
public sealed record SplitFaces(FaceTable Train, FaceTable Valid, FaceTable Test, SplitMetrics Metrics) : IHasMetrics
{
    object IHasMetrics.Metrics => Metrics;
}

/// <summary>
/// Train / validation / test split. Leak-free by default: an image and its mirror twin stay on one side.
/// leaky=true reproduces the seed report's flip-then-split, whose mirror twins inflate validation accuracy.
/// </summary>
public sealed class SplitStage : Stage<TrainingFaces, SplitSettings, SplitFaces>
{
    public override string Kind => "split";

    protected override async Task<SplitFaces> RunAsync(StageContext ctx, TrainingFaces training, SplitSettings s)
    {
        var faces = await training.Faces.ReadAsync(ctx.CancellationToken);
        var mode = s.Mode switch
        {
            SplitChoice.Usage => SplitMode.Usage,
            SplitChoice.Random => SplitMode.Random,
            _ => faces.Usage.Contains(FaceUsage.PublicTest) ? SplitMode.Usage : SplitMode.Random,
        };
        var split = FaceSplitter.Split(faces, new SplitOptions(s.ValidFraction, s.Seed, s.Leaky, mode));
        if (split.Train.Count == 0 || split.Valid.Count == 0)
            throw new FlowDefinitionException(
                $"stage {ctx.Node}: the split leaves {split.Train.Count} training and {split.Valid.Count} validation images " +
                (mode == SplitMode.Usage ? "(mode usage needs Training and PublicTest rows)" : $"of {faces.Count}; use more data or another valid_fraction") +
                "; training needs both");
        var validSources = split.Valid.SourceIds.ToHashSet();
        long straddling = split.Train.SourceIds.Count(validSources.Contains);
        ctx.Rows["train"] = split.Train.Count;
        ctx.Rows["valid"] = split.Valid.Count;
        ctx.Rows["test"] = split.Test.Count;
        ctx.Rows["twins_across_split"] = straddling;
        ctx.Log.Information("Split {Mode} (leaky {Leaky}): train {TrainRows}, valid {ValidRows}, test {TestRows}; {Straddling} training rows share a source image with validation",
            mode, s.Leaky, split.Train.Count, split.Valid.Count, split.Test.Count, straddling);
        return new SplitFaces(
            await FaceTable.WriteAsync(ctx, "train.parquet", split.Train),
            await FaceTable.WriteAsync(ctx, "valid.parquet", split.Valid),
            await FaceTable.WriteAsync(ctx, "test.parquet", split.Test),
            new SplitMetrics(mode.ToString().ToLowerInvariant(), s.Leaky, s.ValidFraction, split.Train.Count, split.Valid.Count, split.Test.Count, straddling));
    }
}
