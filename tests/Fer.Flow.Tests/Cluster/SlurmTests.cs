using System.Text.Json;
using Fer.Flow.Audit;
using Fer.Flow.Cache;
using Fer.Flow.Cli;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.Cluster;

/// <summary>Flows on a real one-machine Slurm (see <see cref="LocalSlurm"/>): jobs, dependencies, arrays, failures.</summary>
[Collection(SlurmCollection.Name)]
public sealed class SlurmTests(LocalSlurm slurm)
{
    /// <summary>A small flow: data stages and two fully connected members (one epoch on 200 faces); or, instead of the members, an
    /// optional stage of the script's own that waits (so a test can cancel its job while it runs).</summary>
    private string Script(bool withPause = false)
    {
        // In the cluster's folder, the same text for every test: compiled once, then served from the script cache.
        var path = Path.Combine(slurm.Folder, withPause ? "pause.fsx" : "cluster.fsx");
        if (File.Exists(path)) return path;
        File.WriteAllText(path, $$"""
            #load @"{{Repo.Flow("Fer.fsx")}}"
            open Fer
            open Fer.Flow.Stages
            type PauseSettings = { Seconds: float }
            type Paused = { Waited: float }
            let pause = defineStage "pause" { Seconds = 0.0 } (fun ctx s (split: SplitFaces) ->
                ctx.CancellationToken.WaitHandle.WaitOne(System.TimeSpan.FromSeconds s.Seconds) |> ignore
                { Waited = s.Seconds })
            flow "cluster" [
                ingest  [ "count" => 140; "seed" => 1 ]
                augment [ "flip" => true ]
                split   [ "valid_fraction" => 0.2; "seed" => 1 ]
                {{(withPause ? "pause []" : Members)}}
            ]
            """);
        return path;
    }

    private const string Members = "train [ model \"a\" \"seed-dnn\" [ \"lr\" => 1e-3 ]; model \"b\" \"seed-dnn\" [ \"lr\" => 5e-4 ] ] [ \"epochs\" => 1; \"seed\" => 1; \"batch_size\" => 32 ]";

    private static FlowRequest Request(string script, string artifacts, string executor = "slurm") =>
        new(script, artifacts, Device: "cpu", Console: false) { Executor = executor };

    private static Dictionary<string, JsonElement> Metrics(string artifacts) =>
        JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(File.ReadAllText(Path.Combine(RunCatalog.List(artifacts)[^1].Dir, RunRecord.MetricsFileName)))!;

    [SkippableFact]
    public async Task AFlowOnSlurmGivesTheLocalMetricsWithEveryStageAndMemberAJobOfItsOwn()
    {
        slurm.SkipUnlessRunning();
        using var dir = new TempDir();
        var script = Script();
        var errors = new StringWriter();
        Assert.True(await FlowCommand.RunAsync(Request(script, dir["local"], "local"), errors) == 0, errors.ToString());
        Assert.True(await FlowCommand.RunAsync(Request(script, dir["slurm"]), errors) == 0, errors.ToString());

        var (local, onSlurm) = (Metrics(dir["local"]), Metrics(dir["slurm"]));
        foreach (var (node, key) in new[] { ("train.a", "best_valid_loss"), ("train.a", "best_valid_accuracy"), ("train.b", "best_valid_loss") })
            Assert.Equal(local[node].GetProperty(key).GetDouble(), onSlurm[node].GetProperty(key).GetDouble(), 1e-9);

        var run = RunCatalog.List(dir["slurm"]).Single();
        Assert.Equal("slurm", run.Record!.Executor);
        var log = ClefLog.Read(Path.Combine(run.Dir, Fer.Flow.Logging.RunLog.FileName));
        var jobs = log.Events.Where(e => e.Property("JobState") == "COMPLETED").ToDictionary(e => e.Property("Stage")!, e => e.Property("SlurmJobId")!);
        Assert.Equal(["augment", "ingest", "split", "train.a", "train.b"], jobs.Keys.Order());
        Assert.Equal(5, jobs.Values.Distinct().Count());
        // The one log holds every job's own events, each with its node, host and job id.
        var trained = log.Events.Single(e => e.Property("Node") == "train.a" && e.Property("Stage") == "train.a" && e.Template.StartsWith("Stage {Stage} finished", StringComparison.Ordinal));
        Assert.Equal(jobs["train.a"], trained.Property("SlurmJobId"));
        Assert.False(string.IsNullOrEmpty(trained.Property("Host")));
        // Both members ran at once (the machine has two CPUs and they depend only on split).
        var spans = new[] { "train.a", "train.b" }.Select(n => log.Events.Where(e => e.Property("Node") == n).Select(e => e.Timestamp).ToList())
            .Select(t => (Start: t.Min(), End: t.Max())).ToList();
        Assert.True(spans[0].Start < spans[1].End && spans[1].Start < spans[0].End, "the members' jobs did not overlap");
        var summary = new StringWriter();
        Assert.Equal(0, AuditCommands.ShowLogs(new AuditCommands.LogQuery(dir["slurm"], null, null, null, null, false, true), summary, TextWriter.Null));
        Assert.Contains("slurm job", summary.ToString());
    }

    [SkippableFact]
    public async Task ACancelledJobFailsTheRunWithOneLineAndARerunFinishesIt()
    {
        slurm.SkipUnlessRunning();
        using var dir = new TempDir();
        var script = Script(withPause: true);
        var errors = new StringWriter();
        var request = Request(script, dir["artifacts"]) with { Sets = ["pause.seconds=120"] };
        // The data stages cached first (on this machine), so the jobs below are the pause alone.
        Assert.True(await FlowCommand.RunAsync(Request(script, dir["artifacts"], "local") with { Sets = ["pause.seconds=0"] }, errors) == 0, errors.ToString());
        async Task<string> RunningPauseJob(Task coordinator)
        {
            string? job = null;
            for (var deadline = DateTime.UtcNow.AddSeconds(90); job is null && DateTime.UtcNow < deadline && !coordinator.IsCompleted; await Task.Delay(250))
                job = slurm.Command("squeue", "-h", "-t", "RUNNING", "-n", "fer-pause", "-o", "%i").Trim() is { Length: > 0 } id ? id.Split('\n')[0] : null;
            Assert.NotNull(job);
            return job;
        }

        // Ctrl-C on the coordinator cancels the run's jobs.
        using (var ctrlC = new CancellationTokenSource())
        {
            var interrupted = Task.Run(() => FlowCommand.RunAsync(request, errors, ctrlC.Token));
            var running = await RunningPauseJob(interrupted);
            ctrlC.Cancel();
            Assert.Equal(ExitCodes.Cancelled, await interrupted.WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains($"error: cancelled; the run's unfinished Slurm jobs ({running}) were cancelled", errors.ToString());
            string state = "";
            for (var deadline = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < deadline; await Task.Delay(250))
                if ((state = slurm.Command("squeue", "--states=all", "-h", "-j", running, "-o", "%T").Trim()) is not ("RUNNING" or "COMPLETING")) break;
            Assert.Equal("CANCELLED", state);
            Assert.Equal(RunStatus.Cancelled, RunCatalog.List(dir["artifacts"]).Single(r => r.Record!.Executor == "slurm").Status);
        }

        // A job cancelled on the cluster fails the run with one line naming it.
        errors = new StringWriter();
        var coordinator = Task.Run(() => FlowCommand.RunAsync(request, errors));
        var job = await RunningPauseJob(coordinator);
        slurm.Command("scancel", job);
        Assert.Equal(ExitCodes.Failed, await coordinator.WaitAsync(TimeSpan.FromSeconds(60)));
        var line = Assert.Single(errors.ToString().Trim().Split('\n'));
        // Runs started within a second are listed by their random suffix: find them by what they are.
        var runDir = RunCatalog.List(dir["artifacts"]).Single(r => r.Status == RunStatus.Failed).Dir;
        Assert.Equal($"error: stage pause failed on Slurm (job {job}, CANCELLED); its output: {Path.Combine(runDir, "jobs", "pause.out")}", line);

        // The rerun submits only what is not cached.
        errors = new StringWriter();
        Assert.True(await FlowCommand.RunAsync(request with { Sets = ["pause.seconds=0.1"] }, errors) == 0, errors.ToString());
        var rerun = RunCatalog.List(dir["artifacts"]).Single(r => r.Record!.Executor == "slurm" && r.Status == RunStatus.Finished);
        Assert.Equal(["hit", "hit", "hit", "miss"], rerun.Record!.Stages.Select(s => s.Status.Text()));
        Assert.Equal(["pause"], Directory.GetFiles(Path.Combine(rerun.Dir, "jobs"), "*.sh").Select(Path.GetFileNameWithoutExtension));
    }

    [SkippableFact]
    public async Task ASweepIsOneJobArrayAndTwoSweepsAtOnceShareTheCacheAndLoseNothing()
    {
        slurm.SkipUnlessRunning();
        using var dir = new TempDir();
        var script = Path.Combine(slurm.Folder, "data.fsx");
        File.WriteAllText(script, $$"""
            #load @"{{Repo.Flow("Fer.fsx")}}"
            open Fer
            flow "data" [ ingest [ "count" => 140; "seed" => 1 ]; augment [ "flip" => true ]; split [ "valid_fraction" => 0.2; "seed" => 1 ] ]
            """);
        var (errorsA, errorsB) = (new StringWriter(), new StringWriter());
        var a = Task.Run(() => FlowCommand.RunAsync(Request(script, dir["artifacts"]) with { Sweeps = ["augment.flip=true,false", "split.seed=1,2"] }, errorsA));
        var b = Task.Run(() => FlowCommand.RunAsync(Request(script, dir["artifacts"]) with { Sweeps = ["split.seed=2,3"] }, errorsB));
        Assert.True(await a == 0, errorsA.ToString());
        Assert.True(await b == 0, errorsB.ToString());

        var runs = RunCatalog.List(dir["artifacts"]);
        Assert.Equal(6, runs.Count);
        Assert.All(runs, r => Assert.Equal(RunStatus.Finished, r.Status));
        // Each sweep was one array: its trials ran as tasks 0..N-1 of one job.
        foreach (var sweep in runs.GroupBy(r => r.Record!.Sweep!.Id))
        {
            var tasks = sweep.Select(r => r.Record!.SlurmJob!).ToList();
            Assert.Single(tasks.Select(t => t.Split('_')[0]).Distinct());
            Assert.Equal(Enumerable.Range(0, sweep.Count()).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), tasks.Select(t => t.Split('_')[1]).Order());
        }
        // Six trials, one ingest: computed once by whichever came first, waited for by the others.
        Assert.Equal(1, runs.Count(r => r.Record!.Stages.Single(s => s.Stage == "ingest").Status == StageOutcome.Miss));
        // Nothing lost: every entry the runs name is in the cache and verifies.
        var cache = new StageCache(Path.Combine(dir["artifacts"], "cache"));
        foreach (var s in runs.SelectMany(r => r.Record!.Stages))
            Assert.Equal(CacheStatus.Hit, cache.Lookup(s.Stage, s.Fingerprint).Status);
    }

    [SkippableFact]
    public async Task AnUnknownPartitionIsOneLineNamingTheClustersPartitions()
    {
        slurm.SkipUnlessRunning();
        using var dir = new TempDir();
        var errors = new StringWriter();
        var request = Request(Script(), dir["artifacts"]) with { Slurm = new Fer.Flow.Cluster.SlurmResources { Partition = "gpu-nowhere" } };
        Assert.Equal(ExitCodes.BadInput, await FlowCommand.RunAsync(request, errors));
        Assert.Equal($"error: --slurm-partition gpu-nowhere: the cluster has no such partition; its partitions: {slurm.Partition}", errors.ToString().Trim());
        Assert.False(Directory.Exists(dir["artifacts/runs"]));
    }
}

public class SlurmClientTests
{
    [Fact]
    public void WithoutSbatchOnPathTheExecutorSaysWhatToInstallOrUse()
    {
        var why = Fer.Flow.Cluster.SlurmClient.Missing("/nonexistent:/also-not-here");
        Assert.Equal("sbatch is not on PATH: run on a machine with Slurm's client commands (Debian: apt-get install slurm-client), or use --executor local", why);
    }
}
