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
        command.SetAction(parse =>
        {
            var written = Write(parse.GetValue(outOption)!, parse.GetValue(countOption), parse.GetValue(formatOption)!,
                parse.GetValue(seedOption), parse.GetValue(sideOption));
            foreach (var (path, rows) in written) Console.WriteLine($"wrote {path} ({rows} rows)");
            return ExitCodes.Ok;
        });
        return command;
    }

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
