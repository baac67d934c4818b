using Fer.Flow.Cache;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.Pipeline;

public class FlowRunnerTests
{
    [Fact]
    public async Task SecondRunReusesEveryStage()
    {
        using var flow = new FakeFlow();
        var first = await flow.RunAsync();
        Assert.All(first.Reports, r => Assert.Equal(StageOutcome.Miss, r.Status));
        var second = await flow.RunAsync();
        Assert.All(second.Reports, r => Assert.Equal(StageOutcome.Hit, r.Status));
        Assert.All(flow.Stages, s => Assert.Equal(1, s.Runs));
    }

    /// <summary>Runs sharing an artifacts folder (a sweep's trials, cluster jobs) compute each entry once: the other waits for it.</summary>
    [Fact]
    public async Task TwoRunsAtOnceComputeEachEntryOnceAndBothFinish()
    {
        using var flow = new FakeFlow();
        foreach (var stage in flow.Stages) stage.Delay = TimeSpan.FromMilliseconds(300);
        var runners = await Task.WhenAll(Task.Run(() => flow.RunAsync()), Task.Run(() => flow.RunAsync()));
        Assert.All(flow.Stages, s => Assert.Equal(1, s.Runs));
        Assert.All(runners, r => Assert.Equal(["a", "b", "c"], r.Reports.Select(x => x.Stage).Order()));
        Assert.Equal(3, runners.Sum(r => r.Reports.Count(x => x.Status == StageOutcome.Miss)));
        Assert.Contains(flow.Sink.Rendered, m => m.Contains("is being computed by another process; waiting for it"));
    }

    [Fact]
    public async Task ChangingASettingRecomputesThatStageAndWhatFollowsOnly()
    {
        using var flow = new FakeFlow();
        await flow.RunAsync();
        var runner = await flow.RunAsync(overrides: new() { ["b.n"] = "7" });
        Assert.Equal(["hit", "miss", "miss"], runner.Reports.Select(r => r.Status.Text()));
        Assert.Equal([1, 2, 2], flow.Stages.Select(s => s.Runs));
    }

    [Fact]
    public async Task FingerprintsDependOnSettingsUpstreamAndCodeIdentity()
    {
        using var flow = new FakeFlow();
        var (_, _, plan1) = flow.Prepare();
        var (_, _, plan2) = flow.Prepare(overrides: new() { ["a.f"] = "0.25" });
        Assert.All(plan1.Nodes.Zip(plan2.Nodes), p => Assert.NotEqual(p.First.Fingerprint, p.Second.Fingerprint));
        flow.Stages[2].CodeIdentity = "fake-2";
        var (_, _, plan3) = flow.Prepare();
        Assert.Equal(plan1.Nodes[1].Fingerprint, plan3.Nodes[1].Fingerprint);
        Assert.NotEqual(plan1.Nodes[2].Fingerprint, plan3.Nodes[2].Fingerprint);
    }

    [Fact]
    public async Task FromRecomputesTheStageAndAllAfterIt()
    {
        using var flow = new FakeFlow();
        await flow.RunAsync();
        var runner = await flow.RunAsync(RunMode.From, "b");
        Assert.Equal(["hit", "miss", "miss"], runner.Reports.Select(r => r.Status.Text()));
    }

    [Fact]
    public async Task OnlyRunsOneStageFromCachedInputsAndNamesAMissingOne()
    {
        using var flow = new FakeFlow();
        var missing = await Assert.ThrowsAsync<MissingUpstreamException>(() => flow.RunAsync(RunMode.Only, "c"));
        Assert.Contains("stage a, stage b", missing.Message);
        Assert.Contains("--from a", missing.Message);
        Assert.All(flow.Stages, s => Assert.Equal(0, s.Runs));

        await flow.RunAsync();
        var runner = await flow.RunAsync(RunMode.Only, "c");
        Assert.Equal(["a", "b", "c"], runner.Reports.Select(r => r.Stage));
        Assert.Equal([1, 1, 2], flow.Stages.Select(s => s.Runs));
    }

    [Fact]
    public async Task AFailingStageIsNamedAndLeavesNoCacheEntry()
    {
        using var flow = new FakeFlow();
        flow.Stages[1].Fail = new InvalidOperationException("boom");
        var (runner, context, plan) = flow.Prepare();
        var e = await Assert.ThrowsAsync<StageFailedException>(() => runner.RunAsync(plan));
        Assert.Equal("b", e.Stage);
        Assert.Contains("boom", e.Message);
        Assert.Equal(CacheStatus.Hit, context.Cache.Lookup("a", plan.Nodes[0].Fingerprint).Status);
        Assert.NotEqual(CacheStatus.Hit, context.Cache.Lookup("b", plan.Nodes[1].Fingerprint).Status);
        Assert.Equal(0, flow.Stages[2].Runs);
        Assert.Empty(Directory.EnumerateDirectories(Path.Combine(context.Cache.Root, "b")));
        Assert.Contains(flow.Sink.Events, ev => ev.Level == Serilog.Events.LogEventLevel.Error && ev.Properties["Stage"].ToString() == "\"b\"");
    }

    [Fact]
    public async Task ADamagedEntryIsRecomputedWithAWarning()
    {
        using var flow = new FakeFlow();
        var (_, context, plan) = flow.Prepare();
        await flow.RunAsync();
        var file = Path.Combine(context.Cache.EntryDir("b", plan.Nodes[1].Fingerprint), "out.txt");
        File.WriteAllText(file, "tampered!");
        var runner = await flow.RunAsync();
        Assert.Equal(["hit", "miss", "hit"], runner.Reports.Select(r => r.Status.Text()));
        Assert.Contains(flow.Sink.Rendered, m => m.Contains("damaged"));
        Assert.Equal("b(1)<a(1)<>>", File.ReadAllText(file));
    }

    [Fact]
    public async Task PublishedFilesAndMetricsReachTheRunFolderEvenOnCacheHits()
    {
        using var flow = new FakeFlow();
        await flow.RunAsync();
        var (runner, context, plan) = flow.Prepare();
        await runner.RunAsync(plan);
        Assert.True(File.Exists(Path.Combine(context.RunDir, "figures", "c.txt")));
        var metrics = File.ReadAllText(Path.Combine(context.RunDir, "metrics.json"));
        var record = (await flow.RunAsync()).Reports;
        Assert.Contains("\"a\": {", metrics);
        Assert.Contains("\"c\": {", metrics);
        Assert.Equal(["a", "b", "c"], record.Select(r => r.MetricsAs<FakeMetrics>()!.Stage));
    }

    [Fact]
    public async Task AnInputFileThatChangesWhileTheStageRunsIsNotCached()
    {
        using var flow = new FakeFlow();
        var input = flow.Dir["input.csv"];
        File.WriteAllText(input, "original");
        flow.Stages[0].OnRun = _ =>
        {
            File.WriteAllText(input, "changed!");
            File.SetLastWriteTimeUtc(input, DateTime.UtcNow.AddMinutes(1));
        };
        var definition = flow.Definition(new() { ["file"] = input });
        var (runner, context, plan) = flow.Prepare(definition);
        var e = await Assert.ThrowsAsync<StageFailedException>(() => runner.RunAsync(plan));
        Assert.Contains("changed while", e.Message);
        Assert.NotEqual(CacheStatus.Hit, context.Cache.Lookup("a", plan.Nodes[0].Fingerprint).Status);
    }

    [Fact]
    public async Task CancellationStopsTheRunWithoutCommittingTheStage()
    {
        using var flow = new FakeFlow();
        using var cts = new CancellationTokenSource();
        flow.Stages[1].OnRun = _ => cts.Cancel();
        var (runner, context, plan) = flow.Prepare(ct: cts.Token);
        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => runner.RunAsync(plan));
        Assert.Equal("b", Assert.IsType<RunCancelledException>(e).Stage); // the stage that was computing, for the run record
        Assert.NotEqual(CacheStatus.Hit, context.Cache.Lookup("b", plan.Nodes[1].Fingerprint).Status);
        Assert.Equal(0, flow.Stages[2].Runs);
    }

    [Fact]
    public void UnknownSettingsStagesAndMembersAreErrorsNamingTheValidOnes()
    {
        using var flow = new FakeFlow();
        var e1 = Assert.Throws<FlowDefinitionException>(() => flow.Prepare(overrides: new() { ["a.nope"] = "1" }));
        Assert.Contains("unknown setting 'nope'", e1.Message);
        Assert.Contains("n, f, file", e1.Message);
        var range = Assert.Throws<FlowDefinitionException>(() => flow.Prepare(overrides: new() { ["a.f"] = "1.5" }));
        Assert.Equal("stage a: f must be a number in [0, 1], got 1.5", range.Message);
        var e2 = Assert.Throws<FlowDefinitionException>(() => flow.Prepare(overrides: new() { ["zz.n"] = "1" }));
        Assert.Contains("no stage 'zz'", e2.Message);
        var e3 = Assert.Throws<FlowDefinitionException>(() => flow.Prepare(overrides: new() { ["a.n"] = "many" }));
        Assert.Contains("expects an integer", e3.Message);
        Assert.Contains("unknown stage 'nope'", Assert.Throws<FlowDefinitionException>(() => flow.Catalog.Get("nope")).Message);
    }
}
