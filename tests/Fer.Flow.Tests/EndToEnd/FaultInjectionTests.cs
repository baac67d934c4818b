using Fer.Flow.Pipeline;
using Fer.Flow.Audit;
using Fer.Flow.Cache;

namespace Fer.Flow.Tests.EndToEnd;

/// <summary>kill -9 in the middle of stages, concurrent runs and damaged caches: a rerun completes and nothing wrong is read.</summary>
[Collection(EndToEndCollection.Name)]
public class FaultInjectionTests
{
    private static string? LatestLog(TinyFlow flow)
    {
        var runs = Path.Combine(flow.Artifacts, "runs");
        return Directory.Exists(runs) && Directory.EnumerateDirectories(runs).Any() ? Path.Combine(flow.LatestRunDir(), "log.clef") : null;
    }

    /// <summary>The log of a run newer than the copied one (null until the child has started its run).</summary>
    private static Func<string?> NewRunLog(TinyFlow flow)
    {
        var copied = flow.LatestRunDir();
        return () => LatestLog(flow) is { } log && Path.GetDirectoryName(log) != copied ? log : null;
    }

    private static string[] Args(TinyFlow flow, params string[] more) =>
        ["run", flow.Script, "--artifacts", flow.Artifacts, "--device", "cpu", .. more];

    [Fact]
    public async Task KilledDuringTrainingTheRerunResumesFromTheLastFinishedEpoch()
    {
        // From the shared finished run (epochs 2): only cnn, with another seed, trains (visualize explains with one
        // method: it is not what this tests). Killed after epoch 1, the rerun trains epoch 2 only.
        using var flow = await TinyFlow.CopyOfFinishedRunAsync();
        string[] sets = ["--set", "train.cnn.seed=4", "--set", "visualize.methods=saliency"];
        var killedRunLog = NewRunLog(flow);
        using (var fer = new FerProcess(Args(flow, sets)))
        {
            // The epoch's checkpoint is written before its event is logged, so the kill comes after it.
            Assert.True(fer.WaitForLog(killedRunLog, TimeSpan.FromMinutes(4), "\"Epoch\":1,", "\"ValidAccuracy\"", "\"Model\":\"cnn\""),
                "training never reached epoch 1: " + string.Join('\n', fer.Output.TakeLast(15)));
            fer.KillHard();
        }
        var (code, errors) = await flow.RunAsync(sets);
        Assert.True(code == 0, errors);
        var statuses = flow.CacheStatuses();
        Assert.Equal("hit", statuses["split"]);
        Assert.Equal("miss", statuses["train.cnn"]);
        Assert.Equal("hit", statuses["train.dnn"]);
        var resumed = flow.LatestEvents().Where(e => e.TryGetProperty("ResumedFromEpoch", out _)).ToList();
        Assert.Single(resumed);
        Assert.True(resumed[0].GetProperty("ResumedFromEpoch").GetInt32() >= 1);
        var epochs = flow.LatestEvents().Where(e => e.TryGetProperty("Epoch", out _) && e.GetProperty("Model").GetString() == "cnn")
            .Select(e => e.GetProperty("Epoch").GetInt32()).ToList();
        Assert.Equal([2], epochs.Distinct());
    }

    [Fact]
    public async Task KilledDuringVisualizeTheRerunRedoesOnlyVisualize()
    {
        using var flow = await TinyFlow.CopyOfFinishedRunAsync();
        var killedRunLog = NewRunLog(flow);
        using (var fer = new FerProcess(Args(flow, "--set", "visualize.ascent_steps=100000", "--set", "visualize.max_filters=64")))
        {
            Assert.True(fer.WaitForLog(killedRunLog, TimeSpan.FromMinutes(2), "Stage {Stage} started", "\"Stage\":\"visualize\""),
                string.Join('\n', fer.Output.TakeLast(15)));
            Thread.Sleep(1500);
            fer.KillHard();
        }
        // Settings whose visualize entry was never made (the copy holds the default's): only visualize computes.
        var (code, errors) = await flow.RunAsync("--set", "visualize.methods=saliency");
        Assert.True(code == 0, errors);
        var statuses = flow.CacheStatuses();
        Assert.Equal("hit", statuses["train.cnn"]);
        Assert.Equal("hit", statuses["predict"]);
        Assert.Equal("miss", statuses["visualize"]);
        // The killed run left only hidden temporary folders, which the rerun swept away.
        Assert.DoesNotContain(Directory.EnumerateDirectories(Path.Combine(flow.Artifacts, "cache"), ".tmp-*", SearchOption.AllDirectories), _ => true);
    }

    [Fact]
    public async Task ASecondRunWorksBesideTheFirstAndAKilledRunIsSeenInterrupted()
    {
        using var flow = await TinyFlow.CopyOfFinishedRunAsync();
        var holderLog = NewRunLog(flow);
        using var fer = new FerProcess(Args(flow, "--set", "train.cnn.epochs=30"));
        Assert.True(fer.WaitForLog(holderLog, TimeSpan.FromMinutes(2), "Stage {Stage} started"), string.Join('\n', fer.Output));
        var holder = Path.GetFileName(Path.GetDirectoryName(holderLog()!))!;
        // Runs share the artifacts folder: this one finds every stage of its flow cached and finishes meanwhile.
        var (code, errors) = await flow.RunAsync();
        Assert.True(code == 0, errors);
        Assert.Equal("hit", flow.CacheStatuses()["train.cnn"]);
        Assert.Equal(RunStatus.Running, RunCatalog.List(flow.Artifacts).Single(r => r.RunId == holder).Status);
        fer.KillHard();
        // kill -9 released the run's lock: its run.json still says running, and fer runs says what happened.
        Assert.Equal(RunStatus.Interrupted, RunCatalog.List(flow.Artifacts).Single(r => r.RunId == holder).Status);
    }

    [Fact]
    public async Task ADamagedCachedParquetIsRecomputedWithAWarning()
    {
        using var flow = await TinyFlow.CopyOfFinishedRunAsync();
        var split = Directory.EnumerateDirectories(Path.Combine(flow.Artifacts, "cache", "split")).Single();
        var file = Path.Combine(split, "valid.parquet");
        var bytes = File.ReadAllBytes(file);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(file, bytes);
        var (code, errors) = await flow.RunAsync("--set", "visualize.methods=saliency"); // (one method: explaining is not what this tests)
        Assert.True(code == 0, errors);
        Assert.Equal("miss", flow.CacheStatuses()["split"]);
        Assert.Contains(flow.LatestEvents(), e => e.TryGetProperty("@l", out var level) && level.GetString() == "Warning"
            && e.TryGetProperty("Problem", out var problem) && problem.GetString()!.Contains("valid.parquet"));
        Assert.Equal(CacheStatus.Hit, new StageCache(Path.Combine(flow.Artifacts, "cache")).Lookup("split",
            Directory.EnumerateDirectories(Path.Combine(flow.Artifacts, "cache", "split")).Select(d => StageManifest.TryRead(d)!.Fingerprint).Single()).Status);
    }
}

[Collection(EndToEndCollection.Name)]
public class ReadOnlyArtifactsTests
{
    private static void Attributes(string flag, string path)
    {
        var chattr = System.Diagnostics.Process.Start("chattr", [flag, path])!;
        chattr.WaitForExit();
        Assert.True(chattr.ExitCode == 0, $"chattr {flag} {path} failed");
    }

    [Fact]
    public async Task AnUnwritableCacheGivesAClearErrorAndEarlierEntriesStayIntact()
    {
        using var flow = await TinyFlow.CopyOfFinishedRunAsync(extraStages: ""); // no report, so every stage can be a hit
        var cache = new Fer.Flow.Cache.StageCache(Path.Combine(flow.Artifacts, "cache"));
        var splitDir = Path.Combine(cache.Root, "split");
        var before = Directory.EnumerateDirectories(splitDir).Single();
        // Immutable (chattr +i) binds root too, unlike chmod: nothing can be created in split/ any more.
        Attributes("+i", splitDir);
        try
        {
            var (code, errors) = await flow.RunAsync("--set", "split.valid_fraction=0.3");
            Assert.Equal(1, code);
            Assert.Contains("stage split", errors);
            Assert.Contains("read-only or the disk full", errors);
        }
        finally
        {
            Attributes("-i", splitDir);
        }
        var manifest = Fer.Flow.Cache.StageManifest.TryRead(before)!;
        Assert.Equal(Fer.Flow.Cache.CacheStatus.Hit, cache.Lookup("split", manifest.Fingerprint).Status);
        Assert.Equal(0, (await flow.RunAsync()).Code);
        Assert.All(flow.CacheStatuses().Values, s => Assert.Equal("hit", s));
    }
}
