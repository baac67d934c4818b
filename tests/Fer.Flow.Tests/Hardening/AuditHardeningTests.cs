using Fer.Flow.Cli;
using Fer.Flow.Logging;
using Fer.Flow.Pipeline;
using Serilog;

namespace Fer.Flow.Tests.Hardening;

/// <summary>Rule 9: the audit reads any log (skipping and counting what is no CLEF event); --where; damaged run records.</summary>
public class AuditHardeningTests
{
    private static string MakeRun(string artifacts, string id = "20261203-100000-abcdef")
    {
        var dir = Path.Combine(artifacts, "runs", id);
        Directory.CreateDirectory(dir);
        var log = RunLog.Create(dir, id, "tiny", console: false);
        log.ForContext("Stage", "ingest").Warning("Skipped {File} line {Line}: {Problem}", "a.csv", 3, "pixel 3 is 256");
        log.ForContext("Stage", "ingest").Information("Read {Rows} rows of {File}", 420, "a.csv");
        log.ForContext("Stage", "train.cnn").Information("Epoch {Epoch} of {Model}", 1, "cnn");
        log.Dispose();
        new RunRecord { RunId = id, Flow = "tiny", Command = "fer run tiny.fsx", Status = RunStatus.Finished, StartedUtc = DateTime.UtcNow }.Write(dir);
        return dir;
    }

    [Fact]
    public void LinesThatAreNoClefEventAreSkippedAndCounted()
    {
        using var dir = new TempDir();
        var run = MakeRun(dir.Path);
        var log = Path.Combine(run, RunLog.FileName);
        var good = File.ReadAllLines(log);
        var lines = new List<string>
        {
            good[0],
            "0",                                                             // valid JSON, not an object
            "{\"@t\":\"yesterday\",\"@mt\":\"x\"}",                           // bad @t
            "{\"@t\":\"2026-12-03T10:00:00Z\",\"@l\":\"Loud\",\"@mt\":\"x\"}", // bad @l
            "{\"@t\":\"2026-12-03T10:00:00Z\",\"@l\":7,\"@mt\":\"x\"}",        // @l not a string
            "{\"@t\":\"2026-12-03T10:00:00Z\",\"@mt\":[1]}",                  // @mt not a string
            "[]",
            good[1],
        };
        File.WriteAllLines(log, lines);
        File.AppendAllText(log, "\u0000\u00ff\u00fe binary junk\n");
        using (var s = new FileStream(log, FileMode.Append)) s.Write([0x00, 0xC3, 0x28, 0xFF, (byte)'\n']);
        File.AppendAllLines(log, [good[2]]);

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(0, AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir.Path, "latest", null, null, null, false, false), stdout, stderr));
        Assert.Equal(3, stdout.ToString().Trim().Split('\n').Length);
        Assert.Contains("note: skipped 8 lines", stderr.ToString());
        Assert.Contains("first: line 2", stderr.ToString());
        Assert.Equal(0, AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir.Path, "latest", null, null, null, false, true), new StringWriter(), new StringWriter()));
    }

    [Fact]
    public void WhereFiltersWithSerilogExpressionsAndABadExpressionIsExitTwo()
    {
        using var dir = new TempDir();
        MakeRun(dir.Path);
        var stdout = new StringWriter();
        var q = new AuditCommands.LogQuery(dir.Path, "latest", null, null, null, false, false) { Where = "Stage = 'ingest' and Rows > 100" };
        Assert.Equal(0, AuditCommands.ShowLogs(q, stdout, new StringWriter()));
        Assert.Equal("[ingest] Read 420 rows of a.csv", Assert.Single(stdout.ToString().Trim().Split('\n'))[17..]);

        stdout = new StringWriter();
        Assert.Equal(0, AuditCommands.ShowLogs(q with { Where = "@l = 'Warning' or StartsWith(Stage, 'train')" }, stdout, new StringWriter()));
        Assert.Equal(2, stdout.ToString().Trim().Split('\n').Length);

        var stderr = new StringWriter();
        Assert.Equal(ExitCodes.BadInput, AuditCommands.ShowLogs(q with { Where = "Stage = " }, new StringWriter(), stderr));
        Assert.StartsWith("error: --where Stage = : ", stderr.ToString());
        Assert.Single(stderr.ToString().Trim().Split('\n'));
    }

    [Theory]
    [InlineData("{\"run_id\":\"x\",\"flow\":\"tiny\",\"command\":\"c\",\"stages\":null}")]
    [InlineData("{\"run_id\":\"x\",\"flow\":\"tiny\",\"command\":\"c\",\"stages\":[null]}")]
    [InlineData("{\"run_id\":\"x\",\"flow\":\"tiny\",\"command\":\"c\",\"stages\":[{\"stage\":\"predict\",\"kind\":\"predict\",\"fingerprint\":\"f\",\"status\":\"miss\",\"seconds\":1,\"rows\":{},\"metrics_type\":\"EnsembleMetrics\",\"metrics\":{\"valid_accuracy\":\"high\"}}]}")]
    [InlineData("{\"run_id\":null}")]
    [InlineData("[0]")]
    public void RunsListsBesideADamagedRunRecord(string runJson)
    {
        using var dir = new TempDir();
        var good = MakeRun(dir.Path, "20261203-100000-aaaaaa");
        File.WriteAllText(Path.Combine(good, "predictions.csv"), "id,label\n0,1\n");
        var damaged = Path.Combine(dir.Path, "runs", "20261203-110000-bbbbbb");
        Directory.CreateDirectory(damaged);
        File.WriteAllText(Path.Combine(damaged, RunRecord.FileName), runJson);
        File.WriteAllText(Path.Combine(damaged, RunRecord.MetricsFileName), "{ not json");
        File.WriteAllText(Path.Combine(damaged, "predictions.csv"), "other");
        var stdout = new StringWriter();
        Assert.Equal(0, AuditCommands.ListRuns(dir.Path, null, stdout, new StringWriter()));
        Assert.Contains("20261203-110000-bbbbbb", stdout.ToString());
        stdout = new StringWriter();
        Assert.Equal(0, AuditCommands.ListRuns(dir.Path, Path.Combine(good, "predictions.csv"), stdout, new StringWriter()));
        Assert.Contains("20261203-100000-aaaaaa", stdout.ToString());
    }
}
