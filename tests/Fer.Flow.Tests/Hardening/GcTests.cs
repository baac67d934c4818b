using Fer.Flow.Cache;
using Fer.Flow.Cli;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.Hardening;

/// <summary>`fer gc`: what no kept run used goes; what a kept run used, or a running command holds, stays.</summary>
public class GcTests
{
    /// <summary>Three runs of the fake flow with different settings of a: each has entries of its own and shares none with the others' a.</summary>
    private static async Task<(FakeFlow Flow, List<string> RunIds)> ThreeRuns()
    {
        var flow = new FakeFlow();
        var ids = new List<string>();
        foreach (var n in new[] { 1, 2, 3 })
        {
            var (runner, context, plan) = flow.Prepare(overrides: new() { ["a.n"] = n.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            await runner.RunAsync(plan);
            var id = $"20261207-00000{n}-aaaaaa";
            var dir = Path.Combine(flow.Dir.Path, "runs", id);
            Directory.CreateDirectory(dir);
            new RunRecord { RunId = id, Flow = "fake", Command = "c", Status = RunStatus.Finished, Stages = [.. runner.Reports] }.Write(dir);
            ids.Add(id);
        }
        return (flow, ids);
    }

    private static int Entries(FakeFlow flow) =>
        Directory.EnumerateDirectories(Path.Combine(flow.Dir.Path, "cache")).Sum(s => Directory.EnumerateDirectories(s).Count(d => !Path.GetFileName(d).StartsWith('.')));

    [Fact]
    public async Task GcKeepsWhatTheLastAndNamedRunsUsedAndSaysWhatItFrees()
    {
        var (flow, ids) = await ThreeRuns();
        using var _ = flow;
        Assert.Equal(9, Entries(flow)); // a, b and c for each of the three settings of a

        var output = new StringWriter();
        Assert.Equal(0, GcCommand.Run(new GcCommand.GcRequest(flow.Dir.Path, KeepLast: 1, DryRun: true), output, TextWriter.Null));
        Assert.Equal(6, output.ToString().Split('\n').Count(l => l.StartsWith("would remove", StringComparison.Ordinal)));
        Assert.Contains("would free", output.ToString());
        Assert.Equal(9, Entries(flow)); // a dry run removes nothing

        output = new StringWriter();
        Assert.Equal(0, GcCommand.Run(new GcCommand.GcRequest(flow.Dir.Path, KeepLast: 1, Keep: [ids[0]]), output, TextWriter.Null));
        Assert.Contains("in 3 of 9 cache entries; kept what 2 of 3 runs used", output.ToString());
        Assert.Equal(6, Entries(flow));
        // The kept runs' entries are whole: a rerun with their settings hits every stage.
        var cache = new StageCache(Path.Combine(flow.Dir.Path, "cache"));
        foreach (var id in new[] { ids[0], ids[2] })
            Assert.All(RunRecord.TryRead(Path.Combine(flow.Dir.Path, "runs", id))!.Stages, s => Assert.Equal(CacheStatus.Hit, cache.Lookup(s.Stage, s.Fingerprint).Status));
        Assert.All(RunRecord.TryRead(Path.Combine(flow.Dir.Path, "runs", ids[1]))!.Stages.Where(s => s.Stage == "a"),
            s => Assert.NotEqual(CacheStatus.Hit, cache.Lookup(s.Stage, s.Fingerprint).Status)); // removed: the middle run was not kept
    }

    [Fact]
    public async Task GcNeverRemovesWhileACommandHoldsTheFolder()
    {
        var (flow, _) = await ThreeRuns();
        using var __ = flow;
        using (ArtifactsLock.Acquire(flow.Dir.Path, "fer run fake.fsx", TimeSpan.Zero)) // a run in progress holds it shared
        {
            var errors = new StringWriter();
            Assert.Equal(ExitCodes.Busy, GcCommand.Run(new GcCommand.GcRequest(flow.Dir.Path, KeepLast: 0), TextWriter.Null, errors));
            Assert.Contains("in use by fer run fake.fsx", errors.ToString());
        }
        Assert.Equal(9, Entries(flow));
        var bad = new StringWriter();
        Assert.Equal(ExitCodes.BadInput, GcCommand.Run(new GcCommand.GcRequest(flow.Dir.Path, Keep: ["nope"]), TextWriter.Null, bad));
        Assert.Contains("no run 'nope'", bad.ToString());
    }

    /// <summary>`fer predict` and `fer export` read weights under a share of the folder: gc waits for them, they for gc.</summary>
    [Fact]
    public void GcAndAReaderOfWeightsWaitForEachOther()
    {
        using var dir = new TempDir();
        Assert.Null(ArtifactsLock.ShareForReading(dir.Path, TimeSpan.Zero)); // no lock file: no clean-up ever ran here
        ArtifactsLock.Acquire(dir.Path, "setup", TimeSpan.Zero).Dispose();
        using (ArtifactsLock.ShareForReading(dir.Path, TimeSpan.Zero))
            Assert.Equal(ExitCodes.Busy, GcCommand.Run(new GcCommand.GcRequest(dir.Path), TextWriter.Null, TextWriter.Null));
        using (ArtifactsLock.Acquire(dir.Path, "fer gc", TimeSpan.Zero, ArtifactsAccess.Exclusive))
            Assert.Contains("in use by fer gc", Assert.Throws<ArtifactsBusyException>(() => ArtifactsLock.ShareForReading(dir.Path, TimeSpan.Zero)).Message);
    }
}
