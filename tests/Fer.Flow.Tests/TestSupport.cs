using Fer.Flow.Cache;
using Fer.Flow.Pipeline;
using Serilog;
using Serilog.Core;
using Serilog.Events;
using TorchSharp;

namespace Fer.Flow.Tests;

/// <summary>A temporary folder deleted after the test.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "fer-test-" + Guid.NewGuid().ToString("N")[..10]);
    public string this[string relative] => System.IO.Path.Combine(Path, relative);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}

/// <summary>Collects log events in memory so tests can assert on them.</summary>
public sealed class CollectingSink : ILogEventSink
{
    public List<LogEvent> Events { get; } = [];
    public void Emit(LogEvent e) { lock (Events) Events.Add(e); }
    public IEnumerable<string> Rendered => Events.Select(e => e.RenderMessage());
}

public static class Repo
{
    /// <summary>The repository root (the folder holding Fer.sln), found from the test binary's folder.</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "Fer.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Fer.sln not found above " + AppContext.BaseDirectory);
    }

    public static string Flow(string name) => System.IO.Path.Combine(Root, "flows", name);
}

/// <summary>A configurable stage for testing the runner: counts runs, writes a file, can fail.</summary>
public sealed class FakeStage(string name, params string[] upstream) : IStage
{
    public string Name { get; } = name;
    public int CodeVersion { get; set; } = 1;
    public IReadOnlyList<string> Upstream { get; } = upstream;
    public IReadOnlyList<StageParameter> Parameters { get; } =
    [
        StageParameter.Int("n", 1, "a number"),
        StageParameter.Float("f", 0.5, "a fraction"),
        StageParameter.String("file", "", "an input file"),
    ];
    public IReadOnlyList<StageParameter> MemberParameters { get; } = [StageParameter.Int("epochs", 1, "epochs")];
    public int Runs;
    public Exception? Fail;
    public Action<StageContext>? OnRun;

    public IReadOnlyList<string> InputFiles(StageSettings s) => s.String("file") is { Length: > 0 } f ? [f] : [];

    public Task RunAsync(StageContext ctx)
    {
        Interlocked.Increment(ref Runs);
        OnRun?.Invoke(ctx);
        if (Fail is not null) throw Fail;
        var upstreamText = string.Join("|", Upstream.Select(u => File.ReadAllText(ctx.Input(u).PathOf("out.txt"))));
        File.WriteAllText(ctx.OutputPath("out.txt"), $"{Name}({ctx.Settings.Int("n")})<{upstreamText}>");
        RunMetrics.WriteFragment(Path.Combine(ctx.PublishDir, "metrics.json"), new { stages = new Dictionary<string, int> { [Name] = (int)ctx.Settings.Int("n") } });
        File.WriteAllText(ctx.OutputPath($"publish/figures/{Name}.txt"), Name);
        ctx.Rows["rows"] = 3;
        return Task.CompletedTask;
    }
}

public sealed class FakeFlow : IDisposable
{
    public FakeFlow()
    {
        Stages = [new FakeStage("a"), new FakeStage("b", "a"), new FakeStage("c", "b")];
        Catalog = new StageCatalog(Stages);
    }

    public TempDir Dir { get; } = new();
    public FakeStage[] Stages { get; }
    public StageCatalog Catalog { get; }
    public CollectingSink Sink { get; } = new();

    public FlowDefinition Definition(Dictionary<string, object>? aSettings = null)
    {
        var a = new StageSpec("a");
        foreach (var kv in aSettings ?? []) a.Settings[kv.Key] = kv.Value;
        return new FlowDefinition("fake", [a, new StageSpec("b"), new StageSpec("c")]);
    }

    public (FlowRunner Runner, RunContext Context, IReadOnlyList<PlannedStage> Plan) Prepare(
        FlowDefinition? flow = null, Dictionary<string, string>? overrides = null, CancellationToken ct = default)
    {
        flow ??= Definition();
        var cache = new StageCache(Dir["cache"]);
        var hasher = new InputFileHasher(cache.Root);
        var runDir = Dir[$"runs/{Guid.NewGuid():N}"];
        Directory.CreateDirectory(runDir);
        var log = new LoggerConfiguration().MinimumLevel.Debug().WriteTo.Sink(Sink).CreateLogger();
        var context = new RunContext
        {
            RunId = "test", RunDir = runDir, ArtifactsDir = Dir.Path, Flow = flow, Cache = cache, InputHasher = hasher,
            Device = torch.CPU, Log = log, CancellationToken = ct,
        };
        var plan = FlowPlanner.Plan(flow, Catalog, overrides ?? [], hasher);
        return (new FlowRunner(context), context, plan);
    }

    public async Task<FlowRunner> RunAsync(RunMode mode = RunMode.Default, string? target = null, FlowDefinition? flow = null,
        Dictionary<string, string>? overrides = null)
    {
        var (runner, _, plan) = Prepare(flow, overrides);
        await runner.RunAsync(plan, mode, target);
        return runner;
    }

    public void Dispose() => Dir.Dispose();
}
