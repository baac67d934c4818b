using System.Text;
using Fer.Core.Data;

namespace Fer.Core.Tests.Data;

/// <summary>What the reader tolerates (CRLF, BOM, quotes, blank lines, missing final newline), format detection,
/// Kaggle's Usage column, ids, and that parallel parsing changes nothing.</summary>
public sealed class FerCsvParsingTests : IDisposable
{
    private readonly string _dir = FerCsvTestData.NewTempFolder();

    public void Dispose() => Directory.Delete(_dir, true);

    private string WriteText(string name, string text, bool bom = false)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text, new UTF8Encoding(bom));
        return path;
    }

    private const string PlainKaggle =
        "emotion,pixels,Usage\n0,0 1 2 3,Training\n3,255 254 253 252,PublicTest\n6,10 20 30 40,PrivateTest\n";

    [Theory]
    [InlineData("crlf")]
    [InlineData("bom")]
    [InlineData("no-final-newline")]
    [InlineData("quoted")]
    [InlineData("trailing-blank-lines")]
    [InlineData("spaces")]
    [InlineData("all-at-once")]
    public void ToleratedVariantsReadTheSameAsThePlainFile(string variant)
    {
        var plain = FerCsvReader.Read(WriteText("plain.csv", PlainKaggle)).Faces;
        string Quote(string line) => string.Join(',', line.Split(',').Select(f => $"\"{f}\""));
        var text = variant switch
        {
            "crlf" => PlainKaggle.Replace("\n", "\r\n"),
            "bom" => PlainKaggle,
            "no-final-newline" => PlainKaggle.TrimEnd('\n'),
            "quoted" => string.Join('\n', PlainKaggle.TrimEnd('\n').Split('\n').Select(Quote)) + "\n",
            "trailing-blank-lines" => PlainKaggle + "\n\n  \n\r\n",
            "spaces" => PlainKaggle.Replace(",0 1 2 3,", ", 0  1 2\t3 ,").Replace(",Training", ", Training "),
            "all-at-once" => string.Join("\r\n", PlainKaggle.TrimEnd('\n').Split('\n').Select(Quote)) + "\r\n\r\n\r\n",
            _ => throw new ArgumentException(variant),
        };

        var read = FerCsvReader.Read(WriteText("variant.csv", text, bom: variant is "bom" or "all-at-once"));

        Assert.Empty(read.Skipped);
        Assert.Equal(FerCsvFormat.Kaggle, read.Format);
        FerCsvTestData.AssertSameFaces(plain, read.Faces);
        Assert.Equal([0, 1, 2, 3, 255, 254, 253, 252, 10, 20, 30, 40], read.Faces.Pixels.Select(b => (int)b));
    }

    [Fact]
    public void KaggleUsageMapsToFaceUsageAndLabelsAreKept()
    {
        var read = FerCsvReader.Read(WriteText("fer2013.csv", PlainKaggle)).Faces;
        Assert.Equal([FaceUsage.Training, FaceUsage.PublicTest, FaceUsage.PrivateTest], read.Usage);
        Assert.Equal([0, 3, 6], read.Labels);
        Assert.Equal([0L, 1L, 2L], read.Ids);
    }

    [Theory]
    [InlineData("emotion,pixels,Usage", FerCsvFormat.Kaggle)]
    [InlineData("\"emotion\",\"pixels\",\"Usage\"", FerCsvFormat.Kaggle)]
    [InlineData("Label, Feature ", FerCsvFormat.CourseTrain)]
    [InlineData("id,feature\r", FerCsvFormat.CourseTest)]
    public void HeaderDecidesTheFormat(string header, FerCsvFormat format) =>
        Assert.Equal(format, FerCsvReader.DetectFormat(header));

    [Fact]
    public void UnknownHeaderIsAFormatErrorNamingTheExpectedHeaders()
    {
        var error = Assert.Throws<FormatException>(() => FerCsvReader.DetectFormat("a,b,c"));
        Assert.Contains("emotion,pixels,Usage", error.Message);
        Assert.Contains("label,feature", error.Message);
        Assert.Contains("id,feature", error.Message);
    }

    [Fact]
    public void IdsCountNonBlankDataRowsAndSkippedRowsKeepTheirPlace()
    {
        // Blank lines do not take an id; a skipped bad row does (the others keep their clean-file ids).
        var path = WriteText("train.csv", "label,feature\n\n1,1 2 3 4\n\n2,5 6 7 8\n9,0 0 0 0\n3,9 9 9 9\n");
        var read = FerCsvReader.Read(path, new FerCsvReadOptions(OnBadRow.Skip));
        Assert.Equal([0L, 1L, 3L], read.Faces.Ids);
        Assert.Equal([1, 2, 3], read.Faces.Labels);
        Assert.Equal(6, Assert.Single(read.Skipped).Line);
    }

    [Fact]
    public void CourseTestIdsComeFromTheIdColumn()
    {
        var path = WriteText("test.csv", "id,feature\n42,1 2 3 4\n7,5 6 7 8\n\"100\",\"9 9 9 9\"\n");
        var read = FerCsvReader.Read(path).Faces;
        Assert.Equal([42L, 7L, 100L], read.Ids);
        Assert.Equal([FaceSet.Unlabeled, FaceSet.Unlabeled, FaceSet.Unlabeled], read.Labels);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(48)]
    public void AnySquareSizeIsReadFromTheFirstRow(int side)
    {
        var faces = FerCsvTestData.RandomFaces(side, 9, seed: side, withLabels: true, kaggleUsage: false);
        var path = Path.Combine(_dir, "train.csv");
        FerCsvWriter.WriteCourseTrain(path, faces);
        var read = FerCsvReader.Read(path).Faces;
        Assert.Equal(side, read.Side);
        Assert.Equal(side * side, read.PixelsPerImage);
        Assert.Equal(faces.Pixels, read.Pixels);
    }

    [Fact]
    public void ParallelAndSingleThreadReadsGiveIdenticalFaceSets()
    {
        // ~7 MB, 8,000 rows: eight 1024-line chunks, with bad rows in several chunks for the Skip comparison.
        var faces = FerCsvTestData.RandomFaces(16, 8000, seed: 2013, withLabels: true, kaggleUsage: true);
        var path = Path.Combine(_dir, "fer2013.csv");
        FerCsvWriter.WriteKaggle(path, faces);
        Assert.True(new FileInfo(path).Length > 5_000_000);

        var parallel = FerCsvReader.Read(path, new FerCsvReadOptions(MaxDegreeOfParallelism: 0));
        var single = FerCsvReader.Read(path, new FerCsvReadOptions(MaxDegreeOfParallelism: 1));
        var three = FerCsvReader.Read(path, new FerCsvReadOptions(MaxDegreeOfParallelism: 3));

        FerCsvTestData.AssertSameFaces(faces, single.Faces);
        FerCsvTestData.AssertSameFaces(single.Faces, parallel.Faces);
        FerCsvTestData.AssertSameFaces(single.Faces, three.Faces);

        var lines = File.ReadAllLines(path);
        foreach (var bad in new[] { 5, 1030, 4000, 7999 }) lines[bad] = lines[bad].Replace(",Training", ",Validation").Replace(",PublicTest", ",Validation").Replace(",PrivateTest", ",Validation");
        File.WriteAllLines(path, lines);
        var skipParallel = FerCsvReader.Read(path, new FerCsvReadOptions(OnBadRow.Skip, MaxDegreeOfParallelism: 0));
        var skipSingle = FerCsvReader.Read(path, new FerCsvReadOptions(OnBadRow.Skip, MaxDegreeOfParallelism: 1));
        Assert.Equal([6L, 1031L, 4001L, 8000L], skipSingle.Skipped.Select(s => s.Line));
        Assert.Equal(skipSingle.Skipped, skipParallel.Skipped);
        FerCsvTestData.AssertSameFaces(skipSingle.Faces, skipParallel.Faces);
        FerCsvTestData.AssertSameFaces(faces.Where(i => i is not (4 or 1029 or 3999 or 7998)), skipSingle.Faces);
    }

    [Fact]
    public void CancellingAReadMidwayEitherFinishesOrThrowsCancellationAndNeverCorrupts()
    {
        // The reader maps the file and must not unmap it under running parse jobs (this race is hard to hit: the
        // test checks the outcome of cancelled reads, not the race itself).
        var faces = FerCsvTestData.RandomFaces(16, 12000, seed: 5, withLabels: true, kaggleUsage: true);
        var path = Path.Combine(_dir, "fer2013.csv");
        FerCsvWriter.WriteKaggle(path, faces);
        int cancelled = 0;
        foreach (var delayMs in new[] { 1, 5, 10, 20, 40 })
        {
            using var source = new CancellationTokenSource(TimeSpan.FromMilliseconds(delayMs));
            try
            {
                FerCsvTestData.AssertSameFaces(faces, FerCsvReader.Read(path, ct: source.Token).Faces);
            }
            catch (OperationCanceledException) { cancelled++; }
        }
        Assert.True(cancelled > 0, "no read was cancelled: the delays are too long for this machine");
        FerCsvTestData.AssertSameFaces(faces, FerCsvReader.Read(path).Faces);
    }

    [Fact]
    public void ACancelledReadStops()
    {
        var path = WriteText("fer2013.csv", PlainKaggle);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => FerCsvReader.Read(path, ct: cancelled.Token));
    }
}
