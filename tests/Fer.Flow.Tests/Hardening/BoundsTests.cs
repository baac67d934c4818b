using Fer.Flow.Audit;
using Fer.Flow.Cache;
using Fer.Flow.Cli;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.Hardening;

/// <summary>Small inputs that asked for unbounded work (issue 29, rule 3) meet a named limit in one line.</summary>
public class BoundsTests
{
    /// <summary>A sparse file claiming gigabytes: almost nothing on disk, refused by its size before it is read.</summary>
    private static void Sparse(string path, long bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var f = new FileStream(path, FileMode.Create);
        f.SetLength(bytes);
    }

    [Fact]
    public void HugeSparseManifestRunRecordAndLogAreRefusedByTheirSize()
    {
        using var dir = new TempDir();
        Sparse(dir["entry/manifest.json"], 3L << 30);
        Assert.Null(StageManifest.TryRead(dir["entry"])); // a damaged entry: recomputed
        var runDir = dir["artifacts/runs/20261207-000000-aaaaaa"];
        Sparse(Path.Combine(runDir, RunRecord.FileName), 3L << 30);
        Assert.Null(RunRecord.TryRead(runDir));
        Sparse(Path.Combine(runDir, Fer.Flow.Logging.RunLog.FileName), 3L << 30);
        Assert.Equal(RunStatus.Unknown, RunCatalog.List(dir["artifacts"]).Single().Status);
        var errors = new StringWriter();
        Assert.Equal(ExitCodes.BadInput, AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir["artifacts"], null, null, null, null, false, false), TextWriter.Null, errors));
        Assert.Contains("bytes, more than fer logs reads", errors.ToString());
        Assert.Single(errors.ToString().Trim().Split('\n'));
    }

    [Fact]
    public void AnEventTooLongIsSkippedAndCountedNotKept()
    {
        using var dir = new TempDir();
        var log = dir["log.clef"];
        File.WriteAllText(log, "{\"@t\":\"2026-12-07T00:00:00Z\",\"@mt\":\"first\"}\n{\"@t\":\"2026-12-07T00:00:01Z\",\"@mt\":\"" + new string('x', ClefLog.MaxEventChars + 10)
            + "\"}\n{\"@t\":\"2026-12-07T00:00:02Z\",\"@mt\":\"third\"}\n");
        var read = ClefLog.Read(log);
        Assert.Equal(["first", "third"], read.Events.Select(e => e.Template));
        Assert.Equal(1, read.MalformedLines);
        Assert.Contains("more than", read.FirstMalformed!.Value.Problem);
    }

    [Theory]
    [InlineData(2000, 1, "--where: 2000 characters, at most 1000")]
    [InlineData(0, 40, "--where: brackets nested 40 deep, at most 32")]
    public void AWhereExpressionTooLongOrTooDeepIsOneLine(int length, int depth, string message)
    {
        using var dir = new TempDir();
        var where = length > 0 ? "Stage = '" + new string('a', length - 10) + "'" : new string('(', depth) + "1 = 1" + new string(')', depth);
        var errors = new StringWriter();
        Assert.Equal(ExitCodes.BadInput, AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir.Path, null, null, null, null, false, false) { Where = where }, TextWriter.Null, errors));
        Assert.Equal($"error: {message}", errors.ToString().Trim());
    }

    [Fact]
    public void ComparingOneRunWithItselfIsOneLine()
    {
        using var dir = new TempDir();
        var runDir = dir["runs/20261207-000000-aaaaaa"];
        Directory.CreateDirectory(runDir);
        new RunRecord { RunId = "20261207-000000-aaaaaa", Flow = "f", Command = "c", Status = RunStatus.Finished }.Write(runDir);
        var errors = new StringWriter();
        var ids = Enumerable.Repeat("latest", 500).ToList();
        Assert.Equal(ExitCodes.BadInput, CompareCommand.Run(dir.Path, ids, dir["c.html"], TextWriter.Null, errors));
        Assert.StartsWith("error: compare needs two different runs", errors.ToString());
    }
}

/// <summary>Outputs and names that cannot be: one line and exit 2, like every other user error (issue 29, rule 1).</summary>
public class OutputNameTests
{
    [Fact]
    public void AnOutputFolderThatCannotBeWrittenIsExitTwo()
    {
        var errors = new StringWriter();
        Assert.Equal(ExitCodes.BadInput, SynthCommand.Run("/proc/fer-cannot-be/here", 10, "kaggle", 1, 48, TextWriter.Null, errors));
        Assert.StartsWith("error: cannot write in /proc/fer-cannot-be/here", errors.ToString());
    }

    [Fact]
    public void AMemberNameTooLongForAFileNameIsRefusedWhenPlanned()
    {
        var stage = new FakeStage("a", typeof(OutA));
        var flow = new FlowDefinition("long", [new NodeSpec("train." + new string('m', 80), stage)]) { Catalog = new StageCatalog([stage]) };
        var e = Assert.Throws<FlowDefinitionException>(() => FlowPlanner.Plan(flow, new Dictionary<string, string>(), new InputFileHasher(Path.GetTempPath())));
        Assert.Contains("is 86 characters long; a stage or member name has at most 64", e.Message);
    }

    [Fact]
    public void AMarkdownCellShowsWhatARunHoldsWithoutRenderingIt() =>
        Assert.Equal("a\\|b\\\\n\\<img src=x\\>\\*x\\* \\`c\\`", RunsDiffCommand.Cell("a|b\n<img src=x>*x* `c`"));
}
