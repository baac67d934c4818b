using Fer.Core.Data;

namespace Fer.Core.Tests.Data;

/// <summary>Writer -> reader round trips in the three FER2013 CSV formats.</summary>
public sealed class FerCsvRoundTripTests : IDisposable
{
    private readonly string _dir = FerCsvTestData.NewTempFolder();

    public void Dispose() => Directory.Delete(_dir, true);

    [Theory]
    [InlineData(2, 40)]
    [InlineData(4, 300)]
    [InlineData(48, 60)]
    public void KaggleRoundTripKeepsPixelsLabelsUsageAndNumbersRows(int side, int rows)
    {
        var written = FerCsvTestData.RandomFaces(side, rows, seed: side * 7 + rows, withLabels: true, kaggleUsage: true);
        var path = Path.Combine(_dir, "fer2013.csv");
        FerCsvWriter.WriteKaggle(path, written);

        var read = FerCsvReader.Read(path);

        Assert.Equal(FerCsvFormat.Kaggle, read.Format);
        Assert.Equal(path, read.Path);
        Assert.Equal(new FileInfo(path).Length, read.Bytes);
        Assert.Empty(read.Skipped);
        Assert.Equal(side, read.Faces.Side);
        Assert.Equal(written.Pixels, read.Faces.Pixels);
        Assert.Equal(written.Labels, read.Faces.Labels);
        Assert.Equal(written.Usage, read.Faces.Usage);
        Assert.Equal(Enumerable.Range(0, rows).Select(i => (long)i), read.Faces.Ids);
        Assert.Equal(read.Faces.Ids, read.Faces.SourceIds);
        Assert.All(read.Faces.Flipped, Assert.False);
        Assert.Equal(FaceSet.Fer2013Classes, read.Faces.ClassNames);
    }

    [Theory]
    [InlineData(2, 25)]
    [InlineData(48, 30)]
    public void CourseTrainRoundTripKeepsPixelsAndLabelsAndNumbersRows(int side, int rows)
    {
        var written = FerCsvTestData.RandomFaces(side, rows, seed: 11 + side, withLabels: true, kaggleUsage: false);
        var path = Path.Combine(_dir, "train.csv");
        FerCsvWriter.WriteCourseTrain(path, written);

        var read = FerCsvReader.Read(path);

        Assert.Equal(FerCsvFormat.CourseTrain, read.Format);
        Assert.Equal(written.Pixels, read.Faces.Pixels);
        Assert.Equal(written.Labels, read.Faces.Labels);
        Assert.All(read.Faces.Usage, u => Assert.Equal(FaceUsage.Training, u));
        Assert.Equal(Enumerable.Range(0, rows).Select(i => (long)i), read.Faces.Ids);
        Assert.Equal(read.Faces.Ids, read.Faces.SourceIds);
    }

    [Theory]
    [InlineData(2, 25)]
    [InlineData(48, 30)]
    public void CourseTestRoundTripKeepsPixelsAndTheIdColumn(int side, int rows)
    {
        var written = FerCsvTestData.RandomFaces(side, rows, seed: 23 + side, withLabels: false, kaggleUsage: false);
        var path = Path.Combine(_dir, "test.csv");
        FerCsvWriter.WriteCourseTest(path, written);

        var read = FerCsvReader.Read(path);

        Assert.Equal(FerCsvFormat.CourseTest, read.Format);
        Assert.Equal(written.Pixels, read.Faces.Pixels);
        Assert.Equal(written.Ids, read.Faces.Ids); // sparse, shuffled ids: proves they come from the column
        Assert.Equal(read.Faces.Ids, read.Faces.SourceIds);
        Assert.All(read.Faces.Labels, l => Assert.Equal(FaceSet.Unlabeled, l));
        Assert.All(read.Faces.Usage, u => Assert.Equal(FaceUsage.Test, u));
        Assert.False(read.Faces.HasLabels);
    }

    [Fact]
    public void WriterReplacesAnExistingFileAndLeavesNoTemporaryFile()
    {
        var path = Path.Combine(_dir, "train.csv");
        File.WriteAllText(path, "old content that is not a CSV");
        var faces = FerCsvTestData.RandomFaces(4, 5, seed: 1, withLabels: true, kaggleUsage: false);

        FerCsvWriter.WriteCourseTrain(path, faces);

        Assert.StartsWith("label,feature\n", File.ReadAllText(path));
        Assert.Equal(["train.csv"], Directory.GetFiles(_dir).Select(f => Path.GetFileName(f)));
        Assert.Equal(faces.Pixels, FerCsvReader.Read(path).Faces.Pixels);
    }

    [Fact]
    public void WriterRefusesUnlabeledRowsInLabelledFormatsAndKeepsTheOldFile()
    {
        var path = Path.Combine(_dir, "fer2013.csv");
        File.WriteAllText(path, "previous");
        var unlabeled = FerCsvTestData.RandomFaces(2, 3, seed: 2, withLabels: false, kaggleUsage: false);

        var error = Assert.Throws<InvalidOperationException>(() => FerCsvWriter.WriteKaggle(path, unlabeled));

        Assert.Contains("has no label", error.Message);
        Assert.Equal("previous", File.ReadAllText(path));
        Assert.Equal(["fer2013.csv"], Directory.GetFiles(_dir).Select(f => Path.GetFileName(f)));
    }
}

/// <summary>Shared helpers of the CSV tests: generated face sets, the repository's test data, temp folders.</summary>
internal static class FerCsvTestData
{
    public static string NewTempFolder()
    {
        var dir = Path.Combine(Path.GetTempPath(), "fer-csv-tests-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>The repository root: the first folder above the test binaries holding Fer.sln.</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Fer.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no folder above {AppContext.BaseDirectory} holds Fer.sln");
    }

    /// <summary>Random faces (full 0..255 pixel range, all 7 labels); without labels the ids are sparse and shuffled
    /// like a course test.csv's.</summary>
    public static FaceSet RandomFaces(int side, int rows, int seed, bool withLabels, bool kaggleUsage)
    {
        var random = new Random(seed);
        var pixels = new byte[rows * side * side];
        random.NextBytes(pixels);
        if (pixels.Length > 2) { pixels[0] = 0; pixels[1] = 255; } // the range ends, always
        var ids = withLabels
            ? Enumerable.Range(0, rows).Select(i => (long)i).ToArray()
            : Enumerable.Range(0, rows).Select(i => 3L * i + 1000).OrderBy(_ => random.Next()).ToArray();
        var labels = Enumerable.Range(0, rows).Select(i => withLabels ? i < 7 ? i : random.Next(7) : FaceSet.Unlabeled).ToArray();
        var usage = Enumerable.Range(0, rows).Select(i => !withLabels ? FaceUsage.Test
            : kaggleUsage ? (FaceUsage)(i % 3) : FaceUsage.Training).ToArray();
        return new FaceSet(side, FaceSet.Fer2013Classes, ids, labels, (long[])ids.Clone(), new bool[rows], usage, pixels);
    }

    public static void AssertSameFaces(FaceSet expected, FaceSet actual)
    {
        Assert.Equal(expected.Side, actual.Side);
        Assert.Equal(expected.Count, actual.Count);
        Assert.Equal(expected.Ids, actual.Ids);
        Assert.Equal(expected.Labels, actual.Labels);
        Assert.Equal(expected.Usage, actual.Usage);
        Assert.Equal(expected.SourceIds, actual.SourceIds);
        Assert.Equal(expected.Flipped, actual.Flipped);
        Assert.True(expected.Pixels.AsSpan().SequenceEqual(actual.Pixels), "pixels differ");
    }
}
