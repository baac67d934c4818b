using System.Text.Json;
using Fer.Flow.Cli;
using Fer.Flow.Logging;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.Audit;

/// <summary>The table commands off a terminal (plain columns, no borders or escape codes) and as JSON.</summary>
public class TableCommandTests
{
    private static void MakeRun(string artifacts, string id, double accuracy)
    {
        var dir = Path.Combine(artifacts, "runs", id);
        Directory.CreateDirectory(dir);
        RunLog.Create(dir, id, "tiny", console: false).Dispose();
        var member = new Fer.Flow.Stages.MemberMetrics("seed-cnn", Fer.Core.Models.ModelFamily.Convolutional, 10, 3, 2, 0.5, 1.2, 9, 100, false, 0, new Dictionary<string, double>());
        new RunRecord
        {
            RunId = id, Flow = "tiny", Command = "fer run tiny.fsx", Status = RunStatus.Finished,
            StartedUtc = new DateTime(2026, 11, 28, 10, 0, 0, DateTimeKind.Utc), FinishedUtc = new DateTime(2026, 11, 28, 10, 1, 30, DateTimeKind.Utc),
            Stages =
            [
                new StageReport("ingest", "ingest", "abc", StageOutcome.Hit, 1.25, new Dictionary<string, long> { ["rows"] = 420 }),
                new StageReport("train.cnn", "train-member", "def", StageOutcome.Miss, 9, new Dictionary<string, long>())
                    { MetricsType = nameof(Fer.Flow.Stages.MemberMetrics), Metrics = JsonSerializer.SerializeToElement(member, RunRecord.Json) },
                new StageReport("predict", "predict", "ghi", StageOutcome.Miss, 2, new Dictionary<string, long>())
                    { MetricsType = nameof(Fer.Flow.Stages.EnsembleMetrics), Metrics = JsonSerializer.SerializeToElement(new { valid_accuracy = accuracy }, RunRecord.Json) },
            ],
        }.Write(dir);
    }

    [Fact]
    public void RunsAndSummaryPrintPlainColumnsOrJson()
    {
        using var dir = new TempDir();
        MakeRun(dir.Path, "20261128-100000-aaaaaa", 0.6125);
        var output = new StringWriter();
        Assert.Equal(0, AuditCommands.ListRuns(dir.Path, null, output, TextWriter.Null));
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Matches(@"^run\s+flow\s+started \(UTC\)\s+duration\s+status\s+valid acc$", lines[0]);
        Assert.DoesNotContain('\u001b', output.ToString());
        Assert.DoesNotContain('│', output.ToString());

        output = new StringWriter();
        Assert.Equal(0, AuditCommands.ListRuns(dir.Path, null, output, TextWriter.Null, json: true));
        var run = JsonDocument.Parse(output.ToString()).RootElement.EnumerateArray().Single();
        Assert.Equal(("20261128-100000-aaaaaa", "finished", 90.0, 0.6125), (run.GetProperty("run").GetString(), run.GetProperty("status").GetString(),
            run.GetProperty("duration_seconds").GetDouble(), run.GetProperty("ensemble_valid_accuracy").GetDouble()));

        output = new StringWriter();
        Assert.Equal(0, AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir.Path, null, null, null, null, true, true), output, TextWriter.Null));
        var summary = JsonDocument.Parse(output.ToString()).RootElement;
        var stages = summary.GetProperty("stages").EnumerateArray().Select(s => (s.GetProperty("stage").GetString(), s.GetProperty("cache").GetString())).ToList();
        Assert.Equal([("ingest", "hit"), ("train.cnn", "miss"), ("predict", "miss")], stages);
        Assert.Equal(420, summary.GetProperty("stages")[0].GetProperty("rows").GetProperty("rows").GetInt64());
        var model = summary.GetProperty("models").EnumerateArray().Single();
        Assert.Equal(("train.cnn", 3, 2, 0.5), (model.GetProperty("model").GetString(), model.GetProperty("epochs").GetInt32(),
            model.GetProperty("best_epoch").GetInt32(), model.GetProperty("best_valid_accuracy").GetDouble()));
    }

    [Fact]
    public void StagesListAsJson()
    {
        using var dir = new TempDir();
        var script = dir["flow.fsx"];
        File.WriteAllText(script, $$"""
            #load @"{{Repo.Flow("Fer.fsx")}}"
            open Fer
            flow "listing" [ ingest [ "count" => 50 ]; augment []; split [] ]
            """);
        var output = new StringWriter();
        var errors = new StringWriter();
        Assert.True(FlowCommand.ListStages(new FlowRequest(script, dir["artifacts"]), output, errors, json: true) == 0, errors.ToString());
        var rows = JsonDocument.Parse(output.ToString()).RootElement.EnumerateArray()
            .Select(r => (r.GetProperty("stage").GetString(), r.GetProperty("status").GetString(), string.Join(",", r.GetProperty("inputs").EnumerateArray().Select(i => i.GetString())))).ToList();
        Assert.Equal([("ingest", "missing", ""), ("augment", "missing", "ingest"), ("split", "missing", "augment")], rows);
    }
}
