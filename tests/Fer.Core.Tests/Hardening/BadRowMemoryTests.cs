using Fer.Core.Data;
using Fer.Core.Tests.Training;

namespace Fer.Core.Tests.Hardening;

/// <summary>Rule 2: memory follows the good rows; a skipping read keeps the first rows and counts the rest per problem.</summary>
public class BadRowMemoryTests
{
    private static readonly string GoodRow = "0," + string.Join(' ', Enumerable.Range(0, 48 * 48).Select(i => i % 256));

    /// <summary>One 48x48 row and three million one-byte bad rows: reserving an image per line (6.9 GB, over what one
    /// array holds) failed with "Arithmetic operation resulted in an overflow" and no line.</summary>
    [Fact]
    public void MillionsOfShortBadRowsFailOnTheFirstBadLineOrAreSkippedAndCounted()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "train.csv");
        const int bad = 3_000_000;
        using (var w = new StreamWriter(path))
        {
            w.Write("label,feature\n");
            w.Write(GoodRow + "\n");
            for (int i = 0; i < bad; i++) w.Write("1\n");
        }
        var e = Assert.Throws<FerDataException>(() => FerCsvReader.Read(path));
        Assert.Equal(3, e.Line);
        Assert.Equal("row has 1 fields, expected 2 (missing column)", e.Problem);

        var read = FerCsvReader.Read(path, new FerCsvReadOptions(OnBadRow.Skip));
        Assert.Equal(1, read.Faces.Count);
        Assert.Equal(48, read.Faces.Side);
        Assert.Equal(48 * 48, read.Faces.Pixels.Length);
        Assert.Equal(bad, read.SkippedCount);
        Assert.Equal(FerCsvReader.KeptSkippedRows, read.Skipped.Count);
        Assert.Equal(Enumerable.Range(3, 20).Select(l => (long)l), read.Skipped.Select(s => s.Line));
        Assert.Equal((long)bad, Assert.Single(read.SkippedByProblem, kv => kv.Key == "row has N fields, expected N (missing column)").Value);
    }

    [Fact]
    public void TheSummaryCountsEachKindOfProblemAndKeepsTheFirstRowsInLineOrder()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "test.csv");
        var lines = new List<string> { "id,feature" };
        for (int i = 0; i < 3000; i++)
            lines.Add((i % 10) switch
            {
                3 => $"{i},1 2 300 4",      // pixel out of range
                5 => $"x{i},1 2 3 4",       // bad id
                7 => "0,1 2 3 4",           // a duplicate of id 0 (line 2)
                _ => $"{i},1 2 3 4",
            });
        File.WriteAllText(path, string.Join('\n', lines) + "\n");
        var read = FerCsvReader.Read(path, new FerCsvReadOptions(OnBadRow.Skip));
        Assert.Equal(900, read.SkippedCount);
        Assert.Equal(2100, read.Faces.Count);
        Assert.Equal(300, read.SkippedByProblem["pixel N is N, expected N..N"]);
        Assert.Equal(300, read.SkippedByProblem["id '...' is not a non-negative integer"]);
        Assert.Equal(300, read.SkippedByProblem["duplicate id N (first on line N)"]);
        Assert.Equal(20, read.Skipped.Count);
        Assert.Equal(read.Skipped.OrderBy(s => s.Line).Select(s => s.Line), read.Skipped.Select(s => s.Line));
        Assert.Equal([5L, 7L, 9L, 15L], read.Skipped.Take(4).Select(s => s.Line)); // data rows 3, 5, 7, 13 (lines +2)
    }

    [Fact]
    public void AProblemsKindHidesItsNumbersAndValues()
    {
        Assert.Equal("label N is out of range N..N (N classes)", FerCsvReader.ProblemKind("label 9 is out of range 0..6 (7 classes)"));
        Assert.Equal("pixel N is not an integer: '...'", FerCsvReader.ProblemKind("pixel 12 is not an integer: '2x'"));
        Assert.Equal("label N is out of range N..N (N classes)", FerCsvReader.ProblemKind("label -1 is out of range 0..6 (7 classes)"));
    }
}
