using System.Text.Json;
using Fer.Flow.Audit;
using Fer.Flow.Cli;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.Sweeps;

/// <summary>Sweeps run locally: the cross product of the swept values, one run per trial, what they share computed once.</summary>
public class SweepTests
{
    /// <summary>A flow of data stages only (seconds, no training) with a parameter and a stage setting to sweep.</summary>
    private static string Script(TempDir dir, string extra = "")
    {
        var path = dir["sweep.fsx"];
        File.WriteAllText(path, $$"""
            #load @"{{Repo.Flow("Fer.fsx")}}"
            open Fer
            let count = param "count" 140
            {{extra}}
            flow "sweep" [
                ingest  [ "count" => count; "seed" => 1 ]
                augment [ "flip" => true ]
                split   [ "valid_fraction" => 0.2; "seed" => 1 ]
            ]
            """);
        return path;
    }

    [Fact]
    public async Task ASweepOfTwoByTwoRunsFourTrialsSharingTheirCommonStages()
    {
        using var dir = new TempDir();
        var errors = new StringWriter();
        var request = new FlowRequest(Script(dir), dir["artifacts"], Device: "cpu", Console: false)
        { Sweeps = ["augment.flip=true,false", "split.valid_fraction=0.2,0.3"] };
        Assert.True(await FlowCommand.RunAsync(request, errors) == 0, errors.ToString());

        var runs = RunCatalog.List(dir["artifacts"]);
        Assert.Equal(4, runs.Count);
        Assert.All(runs, r => Assert.Equal(RunStatus.Finished, r.Status));
        var trials = runs.Select(r => r.Record!.Sweep!).OrderBy(t => t.Trial).ToList();
        Assert.Single(trials.Select(t => t.Id).Distinct());
        Assert.Equal([1, 2, 3, 4], trials.Select(t => t.Trial));
        Assert.All(trials, t => Assert.Equal(4, t.Trials));
        Assert.Equal(["true 0.2", "true 0.3", "false 0.2", "false 0.3"], trials.Select(t => $"{t.Values["augment.flip"]} {t.Values["split.valid_fraction"]}"));
        // ingest is computed once for all four; augment once per flip value; split once per trial.
        var outcomes = runs.OrderBy(r => r.Record!.Sweep!.Trial).Select(r => r.Record!.Stages.ToDictionary(s => s.Stage, s => s.Status.Text())).ToList();
        Assert.Equal(["miss", "hit", "hit", "hit"], outcomes.Select(o => o["ingest"]));
        Assert.Equal(["miss", "hit", "miss", "hit"], outcomes.Select(o => o["augment"]));
        Assert.All(outcomes, o => Assert.Equal("miss", o["split"]));
        Assert.Equal(0.3, runs.Single(r => r.Record!.Sweep!.Trial == 4).Record!.MetricsOf<Fer.Flow.Stages.SplitMetrics>().Single().Metrics.ValidFraction);

        var listing = new StringWriter();
        Assert.Equal(0, AuditCommands.ListRuns(dir["artifacts"], null, listing, TextWriter.Null, json: true));
        using (var doc = JsonDocument.Parse(listing.ToString()))
            Assert.All(doc.RootElement.EnumerateArray(), r => Assert.Equal(trials[0].Id, r.GetProperty("sweep").GetProperty("id").GetString()));
        var compared = new StringWriter();
        Assert.True(CompareCommand.Run(dir["artifacts"], [trials[0].Id], dir["compare.html"], compared, errors) == 0, errors.ToString());
        Assert.Contains("4 runs", compared.ToString());
    }

    [Theory]
    [InlineData("split.valid_fractio=0.2,0.3", "error: sweep trial 1 of 2 (split.valid_fractio=0.2): stage split: unknown setting 'valid_fractio'; its settings: ")]
    [InlineData("counts=1,2", "error: sweep trial 1 of 2 (counts=1): --sweep counts: sweep.fsx has no parameter 'counts'; its parameters: count")]
    [InlineData("count=100,many", "error: sweep trial 2 of 2 (count=many): --sweep count=many: parameter 'count' expects an integer")]
    [InlineData("count=", "error: --sweep count=: a value is empty")]
    public async Task ABadSweepIsOneLineBeforeAnythingRuns(string sweep, string message)
    {
        using var dir = new TempDir();
        var errors = new StringWriter();
        var request = new FlowRequest(Script(dir), dir["artifacts"], Device: "cpu", Console: false) { Sweeps = [sweep] };
        Assert.Equal(ExitCodes.BadInput, await FlowCommand.RunAsync(request, errors));
        Assert.StartsWith(message, errors.ToString());
        Assert.Single(errors.ToString().Trim().Split('\n'));
        Assert.False(Directory.Exists(dir["artifacts/runs"]), "a trial ran");
    }

    [Fact]
    public async Task AScriptSweepsWithSweepAndTheCommandLineReplacesAnAxis()
    {
        using var dir = new TempDir();
        var script = Script(dir, """sweep "split.seed" [1; 2]""");
        var errors = new StringWriter();
        var request = new FlowRequest(script, dir["artifacts"], Device: "cpu", Console: false) { Sweeps = ["split.seed=3,4,5"] };
        Assert.True(await FlowCommand.RunAsync(request, errors) == 0, errors.ToString());
        Assert.Equal(["3", "4", "5"], RunCatalog.List(dir["artifacts"]).Select(r => r.Record!.Sweep!.Values["split.seed"]).Order());
    }
}
