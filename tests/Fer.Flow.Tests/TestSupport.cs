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

public sealed record FakeSettings
{
    [System.ComponentModel.DataAnnotations.Range(0.0, 1000.0)] public long N { get; init; } = 1;
    [System.ComponentModel.DataAnnotations.Range(0.0, 1.0)] public double F { get; init; } = 0.5;
    public string File { get; init; } = "";
}

/// <summary>What a fake stage makes: a text file naming the stage, its setting and its inputs' texts.</summary>
public abstract record FakeOutput(DataFile Out) : IHasMetrics
{
    public required FakeMetrics Metrics { get; init; }
    object IHasMetrics.Metrics => Metrics;
}

public sealed record FakeMetrics(string Stage, long N);

public sealed record OutA(DataFile Out) : FakeOutput(Out);
public sealed record OutB(DataFile Out) : FakeOutput(Out);
public sealed record OutC(DataFile Out) : FakeOutput(Out);
public sealed record OutD(DataFile Out) : FakeOutput(Out);

/// <summary>A configurable stage for testing the engine: counts runs, writes a file, can fail; typed by its output.</summary>
public sealed class FakeStage(string kind, Type output, params InputPort[] inputs) : IStageDefinition
{
    public string Kind { get; } = kind;
    /// <summary>Stands for the stage's code: a test changes it to simulate an edit.</summary>
    public string CodeIdentity { get; set; } = "fake-1";
    public Type SettingsType => typeof(FakeSettings);
    public Type OutputType { get; } = output;
    public IReadOnlyList<InputPort> Inputs { get; } = inputs;
    public int Runs;
    public Exception? Fail;
    public Action<StageContext>? OnRun;
    public TimeSpan Delay = TimeSpan.Zero;
    /// <summary>Counts nodes computing at once, shared by the stages a test gives it to.</summary>
    public ConcurrencyProbe? Probe;

    public IReadOnlyList<string> InputFiles(object s) => ((FakeSettings)s).File is { Length: > 0 } f ? [f] : [];

    public async Task<object> RunAsync(StageContext ctx, object settings)
    {
        var s = (FakeSettings)settings;
        Interlocked.Increment(ref Runs);
        Probe?.Enter();
        try
        {
            if (Delay > TimeSpan.Zero) await Task.Delay(Delay);
            OnRun?.Invoke(ctx);
            if (Fail is not null) throw Fail;
            var upstreamText = string.Join("|", ctx.Upstream.Select(u => System.IO.File.ReadAllText(((FakeOutput)u.Output).Out.Path)));
            var path = ctx.OutputPath("out.txt");
            await System.IO.File.WriteAllTextAsync(path, $"{ctx.Node}({s.N})<{upstreamText}>");
            await System.IO.File.WriteAllTextAsync(ctx.Figure($"{ctx.Node}.txt").Path, ctx.Node);
            ctx.Rows["rows"] = 3;
            var output = (FakeOutput)Activator.CreateInstance(OutputType, new DataFile(path))!;
            return output with { Metrics = new FakeMetrics(ctx.Node, s.N) };
        }
        finally { Probe?.Leave(); }
    }
}

public sealed class ConcurrencyProbe
{
    private int _running;
    public int MostAtOnce { get; private set; }
    public void Enter() { lock (this) MostAtOnce = Math.Max(MostAtOnce, ++_running); }
    public void Leave() { lock (this) _running--; }
}

public sealed class FakeFlow : IDisposable
{
    public FakeFlow()
    {
        Stages = [new FakeStage("a", typeof(OutA)), new FakeStage("b", typeof(OutB), InputPort.One<OutA>()), new FakeStage("c", typeof(OutC), InputPort.One<OutB>())];
        Catalog = new StageCatalog(Stages);
    }

    public TempDir Dir { get; } = new();
    public FakeStage[] Stages { get; }
    public StageCatalog Catalog { get; }
    public CollectingSink Sink { get; } = new();

    public FlowDefinition Definition(Dictionary<string, object>? aSettings = null)
    {
        var a = new NodeSpec("a", Stages[0]);
        foreach (var kv in aSettings ?? []) a.Settings[kv.Key] = kv.Value;
        return new FlowDefinition("fake", [a, new NodeSpec("b", Stages[1]), new NodeSpec("c", Stages[2])]) { Catalog = Catalog };
    }

    public (FlowRunner Runner, RunContext Context, FlowPlan Plan) Prepare(
        FlowDefinition? flow = null, Dictionary<string, string>? overrides = null, CancellationToken ct = default, int parallel = 1)
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
            Device = torch.CPU, Log = log, CancellationToken = ct, Parallel = parallel,
        };
        var plan = FlowPlanner.Plan(flow, overrides ?? [], hasher);
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
