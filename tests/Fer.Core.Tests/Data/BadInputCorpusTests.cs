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
        Assert.True(Cases().Count() >= 16);
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
}
