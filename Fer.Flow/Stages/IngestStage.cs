using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Fer.Core.Data;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Stages;

public sealed record IngestSettings
{
    [Description("Kaggle fer2013.csv or course train.csv; empty: built-in synthetic faces")] public string Train { get; init; } = "";
    [Description("Course test.csv (id,feature), optional")] public string Test { get; init; } = "";
    [Description("fail: stop at the first bad row; skip: skip bad rows and log them")] public OnBadRow OnError { get; init; } = OnBadRow.Fail;
    [Description("Synthetic faces to generate (when train is empty; at most 900,000: 48x48 faces one array holds)"), Range(1.0, 900_000.0)] public long Count { get; init; } = 3000;
    [Description("Seed of the synthetic faces")] public int Seed { get; init; }
    [Description("Share of synthetic faces held out as a labelled test set"), Range(0.0, 1.0, MaximumIsExclusive = true)] public double TestFraction { get; init; } = 0.1;
}

/// <summary>One input file and its content hash.</summary>
public sealed record InputFileMetrics(string Path, string Sha256, long Bytes);

/// <summary>What was read: the data set's source, hashes, size and classes.</summary>
public sealed record DataMetrics(string Source, string Test, IReadOnlyList<InputFileMetrics> Files, IReadOnlyDictionary<string, long> Rows,
    int Side, IReadOnlyList<string> ClassNames, IReadOnlyList<int> ClassCounts)
{
    /// <summary>The seed of the synthetic faces (null for data read from files): with it, visualize can render the
    /// faces' evidence masks and measure how much of each explanation falls on the expression.</summary>
    public int? SyntheticSeed { get; init; }
}

/// <summary>Every row of the input, as read: ingest's output.</summary>
public sealed record RawFaces(FaceTable Faces, DataMetrics Metrics) : IHasMetrics
{
    object IHasMetrics.Metrics => Metrics;
}

/// <summary>
/// Reads the FER2013 CSV files (Kaggle fer2013.csv, or the course's train.csv and optional test.csv), or
/// generates synthetic faces when no file is given, into one Parquet table of every row.
/// </summary>
public sealed class IngestStage : Stage<NoInputs, IngestSettings, RawFaces>
{
    public override string Kind => "ingest";

    protected override IReadOnlyList<string> InputFiles(IngestSettings s) =>
        new[] { s.Train, s.Test }.Where(p => p.Length > 0).ToList();

    protected override async Task<RawFaces> RunAsync(StageContext ctx, NoInputs none, IngestSettings s)
    {
        FaceSet faces;
        if (s.Train.Length == 0)
        {
            faces = Synthetic((int)s.Count, s.Seed, s.TestFraction);
            ctx.Log.Information("Generated {Count} synthetic faces (seed {SyntheticSeed}) of {Side}x{Side} pixels", faces.Count, s.Seed, faces.Side, faces.Side);
        }
        else
        {
            var options = new FerCsvReadOptions(s.OnError);
            faces = Read(ctx, s.Train, options);
            if (s.Test.Length > 0)
            {
                var test = Read(ctx, s.Test, options);
                if (test.HasLabels || test.Usage.Any(u => u != FaceUsage.Test))
                    throw new FerDataException(s.Test, 0, "the test file must be a course test.csv (id,feature)");
                if (test.Count > 0 && faces.Count > 0 && test.Side != faces.Side)
                    throw new FerDataException(s.Test, 0, $"its images are {test.Side}x{test.Side} but those of {s.Train} are {faces.Side}x{faces.Side}");
                faces = FaceSet.Concat(faces, test);
            }
        }
        if (faces.Count == 0)
            throw new FerDataException(s.Train.Length > 0 ? s.Train : "synthetic faces", 0, "no rows to train on");
        ctx.CancellationToken.ThrowIfCancellationRequested();
        var table = await FaceTable.WriteAsync(ctx, "faces.parquet", faces);
        ctx.Rows["rows"] = faces.Count;
        foreach (var usage in Enum.GetValues<FaceUsage>())
        {
            var n = faces.Usage.Count(u => u == usage);
            if (n > 0) ctx.Rows[usage.ToString().ToLowerInvariant()] = n;
        }
        var metrics = new DataMetrics(s.Train.Length == 0 ? "synthetic" : Path.GetFullPath(s.Train), s.Test,
            ctx.InputFiles.Select(i => new InputFileMetrics(i.Path, i.Sha256, i.Bytes)).ToList(),
            new SortedDictionary<string, long>(ctx.Rows), faces.Side, faces.ClassNames, faces.ClassCounts())
        { SyntheticSeed = s.Train.Length == 0 ? s.Seed : null };
        return new RawFaces(table, metrics);
    }

    private static FaceSet Read(StageContext ctx, string path, FerCsvReadOptions options)
    {
        FerCsvReadResult result;
        using (var row = ctx.Run.Progress.Start($"ingest {Path.GetFileName(path)}"))
        {
            var progress = new InlineProgress<CsvReadProgress>(p =>
            {
                if (row.Report($"ingest {Path.GetFileName(path)}: {p.RowsParsed:N0}/{p.Rows:N0} rows, {p.BytesParsed / 1e6:0.0}/{p.Bytes / 1e6:0.0} MB, {p.MegabytesPerSecond:0} MB/s",
                        p.RowsParsed, p.Rows))
                    ctx.Log.Debug("Progress reading {File}: {RowsParsed}/{Rows} rows, {MegabytesPerSecond:0} MB/s", path, p.RowsParsed, p.Rows, p.MegabytesPerSecond);
            });
            result = FerCsvReader.Read(path, options with { Progress = progress }, ctx.CancellationToken);
        }
        // The first rows one by one, then one summary: a file of a million bad rows gives a short log.
        foreach (var skipped in result.Skipped.Take(FerCsvReader.KeptSkippedRows))
            ctx.Log.Warning("Skipped {File} line {Line}: {Problem}", path, skipped.Line, skipped.Problem);
        if (result.SkippedCount > 0)
            ctx.Log.Warning("Skipped {SkippedRows} bad rows of {File} ({Logged} logged above); by problem: {SkippedByProblem}",
                result.SkippedCount, path, Math.Min(result.SkippedCount, FerCsvReader.KeptSkippedRows), result.SkippedByProblem.ToDictionary());
        ctx.Log.Information("Read {Rows} rows of {File} ({Format}, {Megabytes:0.0} MB)", result.Faces.Count, path, result.Format, result.Bytes / 1e6);
        ctx.Rows[$"skipped_{Path.GetFileNameWithoutExtension(path)}"] = result.SkippedCount;
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
