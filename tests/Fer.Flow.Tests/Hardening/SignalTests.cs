using System.Text.Json;
using Fer.Flow.Tests.EndToEnd;

namespace Fer.Flow.Tests.Hardening;

/// <summary>Rule 8: Ctrl-C and SIGTERM stop at the next batch, cache nothing partial, keep the last checkpoint, record
/// the run as cancelled and exit 130 (SIGINT) or 143 (SIGTERM).</summary>
[Collection(EndToEndCollection.Name)]
public class SignalTests
{
    [SkippableTheory]
    [InlineData("INT", 130)]
    [InlineData("TERM", 143)]
    public void ASignalDuringTrainingCancelsTheRunCleanly(string signal, int exit)
    {
        Skip.If(FerProcess.SignalProblem is not null, FerProcess.SignalProblem);
        using var flow = new TinyFlow();
        using var fer = new FerProcess("run", flow.Script, "--artifacts", flow.Artifacts, "--device", "cpu", "--set", "train.epochs=200",
            "--set", "count=140"); // half the tiny flow's faces: the first epoch, which the signal waits for, comes sooner
        string? Log() => Directory.Exists(Path.Combine(flow.Artifacts, "runs")) ? Path.Combine(flow.LatestRunDir(), "log.clef") : null;
        Assert.True(fer.WaitForLog(Log, TimeSpan.FromMinutes(4), "\"Epoch\":1,", "\"ValidAccuracy\""), "training never reached epoch 1: " + string.Join('\n', fer.Output.TakeLast(10)));
        fer.Signal(signal);
        Assert.Equal(exit, fer.WaitForExit(TimeSpan.FromMinutes(2)));

        var run = JsonDocument.Parse(File.ReadAllText(Path.Combine(flow.LatestRunDir(), "run.json"))).RootElement;
        Assert.Equal("cancelled", run.GetProperty("status").GetString());
        Assert.Equal("train.cnn", run.GetProperty("failed_stage").GetString()); // the stage that was running when the signal came
        Assert.DoesNotContain("   at ", string.Join('\n', fer.Output));
        // Nothing partial: no committed entry for a member, no temporary folder left; the checkpoint of epoch 1 is kept.
        var member = Path.Combine(flow.Artifacts, "cache", "train.cnn");
        Assert.DoesNotContain(Directory.EnumerateDirectories(member), d => !Path.GetFileName(d).StartsWith('.'));
        Assert.DoesNotContain(Directory.EnumerateDirectories(member), d => Path.GetFileName(d).StartsWith(".tmp-"));
        var checkpoint = Assert.Single(Directory.EnumerateDirectories(member, ".checkpoint-*"));
        Assert.NotEmpty(Directory.EnumerateDirectories(checkpoint, "epoch-*"));
        var listing = new StringWriter();
        Fer.Flow.Cli.AuditCommands.ListRuns(flow.Artifacts, null, listing, TextWriter.Null);
        Assert.Contains("cancelled", listing.ToString());
    }
}
