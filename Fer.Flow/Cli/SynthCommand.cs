using System.CommandLine;
using Fer.Core.Data;

namespace Fer.Flow.Cli;

/// <summary>`fer synth`: writes the built-in synthetic faces as FER2013 CSV files, in either format.</summary>
public static class SynthCommand
{
    public static Command Create()
    {
        var outOption = new Option<string>("--out") { Description = "Output folder", Required = true };
        var countOption = new Option<int>("--count") { Description = "Number of faces", DefaultValueFactory = _ => 3000 };
        var formatOption = new Option<string>("--format") { Description = "kaggle (fer2013.csv) or course (train.csv + test.csv)", DefaultValueFactory = _ => "kaggle" };
        formatOption.AcceptOnlyFromAmong("kaggle", "course");
        var seedOption = new Option<int>("--seed") { Description = "Seed", DefaultValueFactory = _ => 0 };
        var sideOption = new Option<int>("--side") { Description = "Image side in pixels", DefaultValueFactory = _ => 48 };
        var command = new Command("synth", "Write synthetic FER-like faces as CSV (Kaggle or course format)");
        foreach (var o in new Option[] { outOption, countOption, formatOption, seedOption, sideOption }) command.Options.Add(o);
        command.SetAction(parse => Run(parse.GetValue(outOption)!, parse.GetValue(countOption), parse.GetValue(formatOption)!,
            parse.GetValue(seedOption), parse.GetValue(sideOption), Console.Out, Console.Error));
        return command;
    }

    /// <summary>The command: bad arguments are one line and exit 2, a folder that cannot be written exit 1.</summary>
    public static int Run(string outDir, int count, string format, int seed, int side, TextWriter stdout, TextWriter stderr)
    {
        string? bad = string.IsNullOrWhiteSpace(outDir) ? "--out: give a folder"
            : count < 10 ? $"--count {count}: write at least 10 faces"
            : count > MaxCount ? $"--count {count}: at most {MaxCount} faces"
            : side < 8 || side > 512 ? $"--side {side}: give 8 to 512 pixels"
            : (long)count * side * side > int.MaxValue ? $"--count {count} --side {side}: {(long)count * side * side} pixels, more than one array holds"
            : format is not ("kaggle" or "course") ? $"--format {format}: give kaggle or course"
            : File.Exists(outDir) ? $"--out {outDir}: is a file, not a folder" : null;
        if (bad is not null) { stderr.WriteLine($"error: {bad}"); return ExitCodes.BadInput; }
        try
        {
            foreach (var (path, rows) in Write(outDir, count, format, seed, side)) stdout.WriteLine($"wrote {path} ({rows} rows)");
            return ExitCodes.Ok;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: cannot write in {outDir}: {e.Message}");
            return ExitCodes.BadInput;
        }
    }

    public const int MaxCount = 1_000_000;

    /// <summary>Kaggle: 80% Training, 10% PublicTest, 10% PrivateTest. Course: 90% train.csv, 10% test.csv (ids, no labels).</summary>
    public static IReadOnlyList<(string Path, int Rows)> Write(string outDir, int count, string format, int seed, int side = 48)
    {
        if (count < 10) throw new ArgumentOutOfRangeException(nameof(count), "write at least 10 faces");
        Directory.CreateDirectory(outDir);
        var faces = SyntheticFaces.Generate(new SyntheticFaceOptions(count, seed, side));
        int publicStart = (int)(count * 0.8), privateStart = (int)(count * 0.9);
        if (format == "kaggle")
        {
            for (int i = publicStart; i < count; i++) faces.Usage[i] = i < privateStart ? FaceUsage.PublicTest : FaceUsage.PrivateTest;
            var path = Path.Combine(outDir, "fer2013.csv");
            FerCsvWriter.WriteKaggle(path, faces);
            return [(path, count)];
        }
        var train = faces.Select(Enumerable.Range(0, privateStart).ToArray());
        var testRows = faces.Select(Enumerable.Range(privateStart, count - privateStart).ToArray());
        var test = new FaceSet(side, faces.ClassNames, Enumerable.Range(0, testRows.Count).Select(i => (long)i).ToArray(),
            Enumerable.Repeat(FaceSet.Unlabeled, testRows.Count).ToArray(), Enumerable.Range(0, testRows.Count).Select(i => (long)i).ToArray(),
            new bool[testRows.Count], Enumerable.Repeat(FaceUsage.Test, testRows.Count).ToArray(), testRows.Pixels);
        var trainPath = Path.Combine(outDir, "train.csv");
        var testPath = Path.Combine(outDir, "test.csv");
        FerCsvWriter.WriteCourseTrain(trainPath, train);
        FerCsvWriter.WriteCourseTest(testPath, test);
        return [(trainPath, train.Count), (testPath, test.Count)];
    }
}
