using Fer.Core.Data;

namespace Fer.Core.Tests.Data;

/// <summary>Every malformed file of tests/data/bad gives its exact error (file, line, problem), or is skipped row by row.</summary>
public class BadInputCorpusTests
{
    public sealed record Case(string File, int Line, string Problem, bool RowLevel)
    {
        public override string ToString() => File;
    }

    public static string CorpusDir
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !System.IO.File.Exists(Path.Combine(dir.FullName, "Fer.sln"))) dir = dir.Parent;
            return Path.Combine(dir!.FullName, "tests", "data", "bad");
        }
    }

    public static IEnumerable<Case> Cases() => System.IO.File.ReadAllLines(Path.Combine(CorpusDir, "expected.tsv"))
        .Where(l => l.Length > 0 && !l.StartsWith('#'))
        .Select(l => l.Split('\t'))
        .Select(c => new Case(c[0], int.Parse(c[1]), c[2], c[3] == "yes"));

    public static TheoryData<Case> All => [.. Cases()];
    public static TheoryData<Case> RowLevel => [.. Cases().Where(c => c.RowLevel)];

    [Fact]
    public void TheCorpusCoversEveryCaseTheIssueLists()
    {
        Assert.True(Cases().Count() >= 31);
        Assert.All(Cases(), c => Assert.True(System.IO.File.Exists(Path.Combine(CorpusDir, c.File)), c.File));
    }

    [Theory]
    [MemberData(nameof(All))]
    public void StrictReadingStopsWithFileLineAndProblem(Case c)
    {
        var path = Path.Combine(CorpusDir, c.File);
        var e = Assert.Throws<FerDataException>(() => FerCsvReader.Read(path));
        Assert.Equal(path, e.File);
        Assert.Equal(c.Line, e.Line);
        Assert.Contains(c.Problem, e.Problem);
        Assert.StartsWith(c.Line > 0 ? $"{path}:{c.Line}: " : $"{path}: ", e.Message);
    }

    [Theory]
    [MemberData(nameof(RowLevel))]
    public void SkipModeSkipsExactlyTheBadRow(Case c)
    {
        var path = Path.Combine(CorpusDir, c.File);
        var dataRows = System.IO.File.ReadAllLines(path).Skip(1).Count(l => l.Trim().Length > 0);
        var result = FerCsvReader.Read(path, new FerCsvReadOptions(OnBadRow.Skip));
        var skipped = Assert.Single(result.Skipped);
        Assert.Equal(c.Line, skipped.Line);
        Assert.Contains(c.Problem, skipped.Problem);
        Assert.Equal(dataRows - 1, result.Faces.Count);
        Assert.Equal(2, result.Faces.Side);
    }

    [Fact]
    public void ADirectoryIsNotACsvFile()
    {
        var dir = Directory.CreateTempSubdirectory("fer-bad-dir-").FullName;
        try
        {
            var e = Assert.Throws<FerDataException>(() => FerCsvReader.Read(dir));
            Assert.Equal(0, e.Line);
            Assert.Contains("is a directory", e.Problem);
        }
        finally { Directory.Delete(dir); }
    }

    [Fact]
    public void AMissingFileIsReportedOnLine0()
    {
        var path = Path.Combine(Path.GetTempPath(), "fer-no-such-file-" + Guid.NewGuid().ToString("N") + ".csv");
        var e = Assert.Throws<FerDataException>(() => FerCsvReader.Read(path));
        Assert.Equal(0, e.Line);
        Assert.Contains("not found", e.Problem);
    }

    /// <summary>
    /// Bad rows far apart (in different chunks, parsed in parallel) and a duplicate id ahead of a bad pixel: a strict
    /// read always names the lowest bad line, whatever the parallelism; a skipping read skips each of them.
    /// </summary>
    [Fact]
    public void StrictReadingNamesTheFirstBadLineOfAFileWithManyChunks()
    {
        var lines = new List<string> { "id,feature" };
        for (int i = 0; i < 4000; i++) lines.Add($"{i},{i % 256} 1 2 3");
        lines[3500] = "3499x,1 2 3 4";     // line 3501
        lines[1500] = "7,1 2 3 4";          // line 1501: duplicate of id 7 (line 9)
        lines[1600] = "1599,1 2 300 4";     // line 1601
        var dir = FerCsvTestData.NewTempFolder();
        try
        {
            var path = Path.Combine(dir, "test.csv");
            System.IO.File.WriteAllText(path, string.Join('\n', lines) + "\n");
            foreach (var threads in new[] { 0, 1, 3 })
            {
                var e = Assert.Throws<FerDataException>(() => FerCsvReader.Read(path, new FerCsvReadOptions(MaxDegreeOfParallelism: threads)));
                Assert.Equal(1501, e.Line);
                Assert.Equal("duplicate id 7 (first on line 9)", e.Problem);
            }
            var skip = FerCsvReader.Read(path, new FerCsvReadOptions(OnBadRow.Skip));
            Assert.Equal([1501L, 1601L, 3501L], skip.Skipped.Select(s => s.Line));
            Assert.Contains("pixel 3 is 300", skip.Skipped[1].Problem);
            Assert.Contains("id '3499x' is not a non-negative integer", skip.Skipped[2].Problem);
            Assert.Equal(3997, skip.Faces.Count);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TheClassCountComesFromTheClassNames()
    {
        var dir = FerCsvTestData.NewTempFolder();
        try
        {
            var path = Path.Combine(dir, "train.csv");
            System.IO.File.WriteAllText(path, "label,feature\n2,1 2 3 4\n3,1 2 3 4\n");
            var options = new FerCsvReadOptions(ClassNames: ["Happy", "Sad", "Neutral"]);
            var e = Assert.Throws<FerDataException>(() => FerCsvReader.Read(path, options));
            Assert.Equal(3, e.Line);
            Assert.Equal("label 3 is out of range 0..2 (3 classes)", e.Problem);
            var read = FerCsvReader.Read(path, options with { OnBadRow = OnBadRow.Skip });
            Assert.Equal(["Happy", "Sad", "Neutral"], read.Faces.ClassNames);
            Assert.Equal([2], read.Faces.Labels);
        }
        finally { Directory.Delete(dir, true); }
    }
}
