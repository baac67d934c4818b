using Fer.Flow.Audit;
using Fer.Flow.Cli;
using Fer.Flow.Logging;
using Fer.Flow.Pipeline;
using Serilog;

namespace Fer.Flow.Tests.Audit;

public class AuditCommandTests
{
    /// <summary>Writes a real run log through the Serilog pipeline Fer uses, and its run.json.</summary>
    private static string MakeRun(string artifacts, string id, string status, Action<ILogger> events, double? accuracy = null)
    {
        var dir = Path.Combine(artifacts, "runs", id);
        Directory.CreateDirectory(dir);
        var log = RunLog.Create(dir, id, "tiny", console: false);
        events(log);
        log.Dispose();
        new RunRecord
        {
            RunId = id, Flow = "tiny", Command = "fer run tiny.fsx", Status = Enum.Parse<RunStatus>(status, ignoreCase: true),
            StartedUtc = new DateTime(2026, 11, 28, 10, 0, 0, DateTimeKind.Utc),
            FinishedUtc = status == "running" ? null : new DateTime(2026, 11, 28, 10, 1, 30, DateTimeKind.Utc),
            Parameters = new() { ["seed"] = "3" },
            Error = status == "failed" ? "stage predict: boom" : null, FailedStage = status == "failed" ? "predict" : null,
            Stages =
            [
                new StageReport("ingest", "ingest", "abc", StageOutcome.Miss, 1.25, new Dictionary<string, long> { ["rows"] = 420 }),
                Report("train.cnn", "train-member", new Fer.Flow.Stages.MemberMetrics("seed-cnn", Fer.Core.Models.ModelFamily.Convolutional, 10, 3, 2, 0.5, 1.2, 9, 100, false, 0, new Dictionary<string, double>())),
                .. accuracy is null ? Array.Empty<StageReport>() : [Report("predict", "predict", new { valid_accuracy = accuracy.Value }, nameof(Fer.Flow.Stages.EnsembleMetrics))],
            ],
        }.Write(dir);
        return dir;
    }

    private static StageReport Report(string node, string kind, object metrics, string? type = null) =>
        new(node, kind, "f" + node, StageOutcome.Miss, 2, new Dictionary<string, long>())
        {
            MetricsType = type ?? metrics.GetType().Name,
            Metrics = System.Text.Json.JsonSerializer.SerializeToElement(metrics, metrics.GetType(), RunRecord.Json),
        };

    private static void TypicalEvents(ILogger log)
    {
        log.ForContext("Stage", "ingest").Information("Stage {Stage} finished in {Seconds:0.00} s: cache {CacheStatus}, fingerprint {Fingerprint}, rows {Rows}",
            "ingest", 1.25, "miss", "abc", "rows=420");
        var train = log.ForContext("Stage", "train");
        for (int e = 1; e <= 3; e++)
            train.Information("Epoch {Epoch} of {Model}: valid accuracy {ValidAccuracy:0.0000}", e, "cnn", 0.3 + 0.1 * (e % 3));
        train.Information("Member {Model} trained: {EpochsRun} epochs, best epoch {BestEpoch}, best valid accuracy {BestValidAccuracy:0.0000}", "cnn", 3, 2, 0.5);
        train.Warning("Cached member {Model} is damaged ({Problem}); retraining", "dnn", "model.pt does not match");
        log.ForContext("Stage", "predict").Error(new InvalidOperationException("boom"), "Stage {Stage} failed: {Error}", "predict", "boom");
    }

    [Fact]
    public void LogsFilterByStageLevelAndTextAndRenderTheMessages()
    {
        using var dir = new TempDir();
        MakeRun(dir.Path, "20261128-100000-aaaaaa", "failed", TypicalEvents);
        var output = new StringWriter();
        Assert.Equal(0, AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir.Path, "latest", "train", null, null, false, false), output, TextWriter.Null));
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, lines.Length);
        Assert.Contains("[train] Epoch 2 of cnn: valid accuracy 0.5000", output.ToString());

        output = new StringWriter();
        AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir.Path, "2026", null, "warning", null, false, false), output, TextWriter.Null);
        Assert.Equal(2, output.ToString().Split('\n').Count(l => l.Contains(" WRN ") || l.Contains(" ERR ")));
        Assert.Contains("System.InvalidOperationException: boom", output.ToString());

        output = new StringWriter();
        AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir.Path, null, null, null, "damaged", true, false), output, TextWriter.Null);
        var json = output.ToString().Trim();
        Assert.StartsWith("{\"@t\"", json);
        Assert.Contains("\"Model\":\"dnn\"", json);
    }

    [Fact]
    public void SummaryGivesStageTimesAndPerModelBestEpochs()
    {
        using var dir = new TempDir();
        MakeRun(dir.Path, "20261128-100000-aaaaaa", "failed", TypicalEvents);
        var output = new StringWriter();
        AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir.Path, null, null, null, null, false, true), output, TextWriter.Null);
        var text = output.ToString();
        Assert.Matches(@"ingest\s+1\.25\s+miss", text);
        Assert.Matches(@"train\.cnn\s+3\s+2\s+0\.5000", text);
        Assert.Contains("error in predict", text);
    }

    [Fact]
    public void ALogCutOffByACrashIsReadAndTheRunMarkedInterrupted()
    {
        using var dir = new TempDir();
        var run = MakeRun(dir.Path, "20261128-100000-bbbbbb", "running", TypicalEvents);
        File.AppendAllText(Path.Combine(run, RunLog.FileName), "{\"@t\":\"2026-11-28T10:00:05Z\",\"@mt\":\"Epoch {Ep");
        var log = ClefLog.Read(Path.Combine(run, RunLog.FileName));
        Assert.True(log.Truncated);
        Assert.Equal(7, log.Events.Count);
        var errors = new StringWriter();
        Assert.Equal(0, AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir.Path, null, null, null, null, false, false), TextWriter.Null, errors));
        Assert.Contains("interrupted", errors.ToString());
        Assert.Equal(RunStatus.Interrupted, RunCatalog.List(dir.Path).Single().Status);
    }

    [Fact]
    public void RunsListsStatusDurationAndAccuracyAndFindsTheRunOfASubmission()
    {
        using var dir = new TempDir();
        MakeRun(dir.Path, "20261128-100000-aaaaaa", "finished", TypicalEvents, accuracy: 0.6125);
        var second = MakeRun(dir.Path, "20261128-110000-cccccc", "failed", TypicalEvents);
        var output = new StringWriter();
        Assert.Equal(0, AuditCommands.ListRuns(dir.Path, null, output, TextWriter.Null));
        var rows = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, rows.Length);
        Assert.Matches(@"20261128-100000-aaaaaa\s+tiny\s+2026-11-28 10:00:00\s+90\.0s\s+finished\s+0\.6125", rows[1]);
        Assert.Matches(@"cccccc.*failed\s+-", rows[2]);

        File.WriteAllText(Path.Combine(second, "predictions.csv"), "id,label\n0,3\n");
        var submission = Path.Combine(dir.Path, "my-submission.csv");
        File.WriteAllText(submission, "id,label\n0,3\n");
        output = new StringWriter();
        Assert.Equal(0, AuditCommands.ListRuns(dir.Path, submission, output, TextWriter.Null));
        Assert.Contains("20261128-110000-cccccc", output.ToString());
        Assert.Contains("seed=3", output.ToString());
    }

    [Fact]
    public void AnUnknownRunOrLevelIsAClearError()
    {
        using var dir = new TempDir();
        MakeRun(dir.Path, "20261128-100000-aaaaaa", "finished", TypicalEvents);
        var errors = new StringWriter();
        Assert.Equal(2, AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir.Path, "nope", null, null, null, false, false), TextWriter.Null, errors));
        Assert.Contains("no run 'nope'", errors.ToString());
        errors = new StringWriter();
        Assert.Equal(2, AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir.Path, null, null, "loud", null, false, false), TextWriter.Null, errors));
        Assert.Contains("unknown level 'loud'", errors.ToString());
    }
}
