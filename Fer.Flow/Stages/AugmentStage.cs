using System.ComponentModel;
using Fer.Core.Data;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Stages;

public sealed record AugmentSettings
{
    [Description("Add a mirror twin of every training image")] public bool Flip { get; init; } = true;
}

/// <summary>
/// The faces a split divides: augment's output. A stage that takes and makes TrainingFaces (a flow script's
/// `equalize`) refines them in place: split then takes the refined faces.
/// </summary>
public sealed record TrainingFaces(FaceTable Faces);

/// <summary>Adds a horizontally mirrored twin of every training image; each twin records its source image.</summary>
public sealed class AugmentStage : Stage<RawFaces, AugmentSettings, TrainingFaces>
{
    public override string Kind => "augment";

    protected override async Task<TrainingFaces> RunAsync(StageContext ctx, RawFaces raw, AugmentSettings s)
    {
        var faces = await raw.Faces.ReadAsync(ctx.CancellationToken);
        var augmented = s.Flip ? FaceAugment.AddMirrorTwins(faces) : faces;
        ctx.Rows["rows"] = augmented.Count;
        ctx.Rows["mirror_twins"] = augmented.Count - faces.Count;
        return new TrainingFaces(await FaceTable.WriteAsync(ctx, "faces.parquet", augmented));
    }
}
