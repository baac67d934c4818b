using Fer.Core.Data;
using Fer.Core.Storage;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Stages;

/// <summary>
/// Reads the FER2013 CSV files (Kaggle fer2013.csv, or the course's train.csv and optional test.csv), or
/// generates synthetic faces when no file is given, into one Parquet table of every row.
/// </summary>
public sealed class IngestStage : IStage
{
    public const string FacesFile = "faces.parquet";

    public string Name => "ingest";
    public int CodeVersion => 1;
    public IReadOnlyList<string> Upstream => [];

    public IReadOnlyList<StageParameter> Parameters { get; } =
    [
        StageParameter.String("train", "", "Kaggle fer2013.csv or course train.csv; empty: built-in synthetic faces"),
        StageParameter.String("test", "", "Course test.csv (id,feature), optional"),
        StageParameter.String("on_error", "fail", "fail: stop at the first bad row; skip: skip bad rows and log them", "fail", "skip"),
        StageParameter.Int("count", 3000, "Synthetic faces to generate (when train is empty)"),
        StageParameter.Int("seed", 0, "Seed of the synthetic faces"),
        StageParameter.Float("test_fraction", 0.1, "Share of synthetic faces held out as a labelled test set"),
    ];

    public IReadOnlyList<string> InputFiles(StageSettings s) =>
        new[] { s.String("train"), s.String("test") }.Where(p => p.Length > 0).ToList();

    public async Task RunAsync(StageContext ctx)
    {
        var s = ctx.Settings;
        FaceSet faces;
        var trainPath = s.String("train");
        if (trainPath.Length == 0)
        {
            faces = Synthetic((int)s.Int("count"), (int)s.Int("seed"), s.Float("test_fraction"));
            ctx.Log.Information("Generated {Count} synthetic faces (seed {SyntheticSeed}) of {Side}x{Side} pixels", faces.Count, s.Int("seed"), faces.Side, faces.Side);
        }
        else
        {
            var options = new FerCsvReadOptions(s.String("on_error") == "skip" ? OnBadRow.Skip : OnBadRow.Fail);
            faces = Read(ctx, trainPath, options);
            var testPath = s.String("test");
            if (testPath.Length > 0)
            {
                var test = Read(ctx, testPath, options);
                if (test.HasLabels || test.Usage.Any(u => u != FaceUsage.Test))
                    throw new FerDataException(testPath, 0, "the test file must be a course test.csv (id,feature)");
                faces = FaceSet.Concat(faces, test);
            }
        }
        ctx.CancellationToken.ThrowIfCancellationRequested();
        await ParquetTensorStore.WriteFacesAsync(ctx.OutputPath(FacesFile), faces, ct: ctx.CancellationToken);
        ctx.Rows["rows"] = faces.Count;
        foreach (var usage in Enum.GetValues<FaceUsage>())
        {
            var n = faces.Usage.Count(u => u == usage);
            if (n > 0) ctx.Rows[usage.ToString().ToLowerInvariant()] = n;
        }
        RunMetrics.WriteFragment(Path.Combine(ctx.PublishDir, "metrics.json"), new
        {
            data = new
            {
                source = trainPath.Length == 0 ? "synthetic" : Path.GetFullPath(trainPath),
                test = s.String("test"),
                sha256 = ctx.Inputs.Select(i => new { path = i.Path, sha256 = i.Sha256, bytes = i.Bytes }),
                rows = ctx.Rows,
                side = faces.Side,
                class_names = faces.ClassNames,
                class_counts = faces.ClassCounts(),
            },
        });
    }

    private static FaceSet Read(StageContext ctx, string path, FerCsvReadOptions options)
    {
        var result = FerCsvReader.Read(path, options, ctx.CancellationToken);
        foreach (var skipped in result.Skipped)
            ctx.Log.Warning("Skipped {File} line {Line}: {Problem}", path, skipped.Line, skipped.Problem);
        if (result.Skipped.Count > 0)
            ctx.Log.Warning("Skipped {SkippedRows} bad rows of {File}", result.Skipped.Count, path);
        ctx.Log.Information("Read {Rows} rows of {File} ({Format}, {Megabytes:0.0} MB)", result.Faces.Count, path, result.Format, result.Bytes / 1e6);
        ctx.Rows[$"skipped_{Path.GetFileNameWithoutExtension(path)}"] = result.Skipped.Count;
        return result.Faces;
    }

    /// <summary>Synthetic faces with a labelled held-out test share (PrivateTest usage, like Kaggle's file).</summary>
    internal static FaceSet Synthetic(int count, int seed, double testFraction)
    {
        var faces = SyntheticFaces.Generate(new SyntheticFaceOptions(count, seed));
        int testRows = (int)Math.Round(count * testFraction);
        for (int i = count - testRows; i < count; i++) faces.Usage[i] = FaceUsage.PrivateTest;
        return faces;
    }
}
