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

/// <summary>The progress a read reports while it parses: in file order, rows and bytes up to the whole file.</summary>
public sealed class FerCsvReadProgressTests : IDisposable
{
    private readonly string _dir = FerCsvTestData.NewTempFolder();

    public void Dispose() => Directory.Delete(_dir, true);

    private sealed class Recorder : IProgress<CsvReadProgress>
    {
        public List<CsvReadProgress> Reports { get; } = [];
        public void Report(CsvReadProgress value) { lock (Reports) Reports.Add(value); }
    }

    [Theory]
    [InlineData(OnBadRow.Fail)]
    [InlineData(OnBadRow.Skip)]
    public void ProgressCountsUpInFileOrderToEveryRowAndByte(OnBadRow onBadRow)
    {
        var written = FerCsvTestData.RandomFaces(4, 2600, seed: 5, withLabels: true, kaggleUsage: true);
        var path = Path.Combine(_dir, "fer2013.csv");
        FerCsvWriter.WriteKaggle(path, written);
        if (onBadRow == OnBadRow.Skip) File.AppendAllText(path, "9,1 2 3,Training\n"); // one bad row, skipped
        long length = new FileInfo(path).Length;
        var recorder = new Recorder();

        var read = FerCsvReader.Read(path, new FerCsvReadOptions(onBadRow, MaxDegreeOfParallelism: 2, Progress: recorder));

        int rows = 2600 + (onBadRow == OnBadRow.Skip ? 1 : 0);
        Assert.Equal(2600, read.Faces.Count);
        // 2,600 or 2,601 rows in blocks of 1,024: three reports, each further on than the last, the last at the end.
        Assert.Equal(3, recorder.Reports.Count);
        Assert.All(recorder.Reports, r => Assert.Equal((path, (long)rows, length), (r.Path, r.Rows, r.Bytes)));
        Assert.Equal([1024L, 2048L, rows], recorder.Reports.Select(r => r.RowsParsed));
        Assert.Equal(length, recorder.Reports[^1].BytesParsed);
        Assert.True(recorder.Reports[0].BytesParsed > 0 && recorder.Reports[0].BytesParsed < recorder.Reports[1].BytesParsed
            && recorder.Reports[1].BytesParsed < length, string.Join(", ", recorder.Reports.Select(r => r.BytesParsed)));
        // Rows 0..1023 (the header and 1,024 data lines) lie before the second block: the first report's bytes are where line 1,026 starts.
        var lines = File.ReadAllLines(path);
        long lineStart = lines.Take(1025).Sum(l => (long)l.Length + 1);
        Assert.Equal(lineStart, recorder.Reports[0].BytesParsed);
        Assert.True(recorder.Reports.Zip(recorder.Reports.Skip(1)).All(p => p.First.Elapsed <= p.Second.Elapsed));
    }
}
