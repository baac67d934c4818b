using Fer.Core.Data;
using Fer.Core.Storage;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Stages;

/// <summary>Adds a horizontally mirrored twin of every training image; each twin records its source image.</summary>
public sealed class AugmentStage : IStage
{
    public const string FacesFile = "faces.parquet";

    public string Name => "augment";
    public int CodeVersion => 1;
    public IReadOnlyList<string> Upstream => ["ingest"];
    public IReadOnlyList<StageParameter> Parameters { get; } =
    [
        StageParameter.Bool("flip", true, "Add a mirror twin of every training image"),
    ];

    public async Task RunAsync(StageContext ctx)
    {
        var faces = await ParquetTensorStore.ReadFacesAsync(ctx.Input("ingest").PathOf(IngestStage.FacesFile), ctx.CancellationToken);
        var augmented = ctx.Settings.Bool("flip") ? FaceAugment.AddMirrorTwins(faces) : faces;
        await ParquetTensorStore.WriteFacesAsync(ctx.OutputPath(FacesFile), augmented, ct: ctx.CancellationToken);
        ctx.Rows["rows"] = augmented.Count;
        ctx.Rows["mirror_twins"] = augmented.Count - faces.Count;
    }
}
