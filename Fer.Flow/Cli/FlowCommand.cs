using System.Diagnostics;
using Fer.Core.Data;
using Fer.Flow.Cache;
using Fer.Flow.Logging;
using Fer.Flow.Pipeline;
using Fer.Flow.Scripting;
using Serilog;

namespace Fer.Flow.Cli;

/// <summary>A request to run (or list the stages of) a flow, as the command line gives it.</summary>
public sealed record FlowRequest(string FlowPath, string Artifacts = "artifacts", IReadOnlyList<string>? Sets = null,
    RunMode Mode = RunMode.Default, string? Target = null, string Device = "auto", double WaitSeconds = 0, bool Console = true);

public static class ExitCodes
{
    public const int Ok = 0, Failed = 1, BadInput = 2, Busy = 3, Cancelled = 130;
}

/// <summary>The `run` and `stages` commands, callable in-process (tests do).</summary>
public static class FlowCommand
{
    public static async Task<int> RunAsync(FlowRequest request, TextWriter stderr, CancellationToken ct = default)
    {
        var artifacts = Path.GetFullPath(request.Artifacts);
        FlowDefinition flow;
        SetOptions sets;
        try
        {
            sets = SetOptions.Parse(request.Sets ?? []);
            flow = FlowScriptHost.Load(request.FlowPath, sets.Flow);
        }
        catch (FlowDefinitionException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }

        ArtifactsLock artifactsLock;
        try { artifactsLock = ArtifactsLock.Acquire(artifacts, $"fer run {Path.GetFileName(request.FlowPath)}", TimeSpan.FromSeconds(request.WaitSeconds)); }
        catch (ArtifactsBusyException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.Busy; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: cannot use artifacts folder {artifacts}: {e.Message}");
            return ExitCodes.Failed;
        }
        using var _ = artifactsLock;

        var runId = $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..6]}";
        var runDir = Path.Combine(artifacts, "runs", runId);
        try { Directory.CreateDirectory(runDir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: cannot create the run folder {runDir}: {e.Message} (is the artifacts folder read-only or the disk full?)");
            return ExitCodes.Failed;
        }
        var log = RunLog.Create(runDir, runId, flow.Name, request.Console);
        var cache = new StageCache(Path.Combine(artifacts, "cache"));
        var swept = cache.SweepAbandoned();
        if (swept > 0) log.Warning("Removed {Count} unfinished cache entries left by an interrupted run", swept);

        var clock = Stopwatch.StartNew();
        var parameters = new SortedDictionary<string, string>(
            flow.Parameters.ToDictionary(kv => kv.Key, kv => StageParameter.Canonical(kv.Value)), StringComparer.Ordinal);
        var record = new RunRecord
        {
            RunId = runId, Flow = flow.Name, Script = flow.ScriptPath,
            Command = CommandLine(request), Parameters = parameters,
            Sets = new SortedDictionary<string, string>(sets.Flow.Concat(sets.Stages).ToDictionary(), StringComparer.Ordinal),
            StartedUtc = DateTime.UtcNow,
            Versions = new() { ["fer"] = Versions.Fer, ["torchsharp"] = Versions.TorchSharp, ["libtorch"] = Versions.LibTorch },
        };
        record.Write(runDir);

        FlowRunner? runner = null;
        try
        {
            var device = DeviceChoice.Resolve(request.Device);
            record = record with { Device = device.ToString() };
            log.Information("Run {RunId} of flow {Flow} ({Script}) started: mode {Mode}{Target}, device {Device}, seed {Seed}, parameters {Parameters}, sets {Sets}, versions Fer {FerVersion}, TorchSharp {TorchSharpVersion}, libtorch {LibTorchVersion}",
                runId, flow.Name, flow.ScriptPath, request.Mode.ToString().ToLowerInvariant(), request.Target is null ? "" : " " + request.Target, device.ToString(),
                parameters.GetValueOrDefault("seed", "none"), StageParameter.Pairs(parameters), StageParameter.Pairs(record.Sets), Versions.Fer, Versions.TorchSharp, Versions.LibTorch);
            record.Write(runDir);

            var hasher = new InputFileHasher(cache.Root);
            var plan = FlowPlanner.Plan(flow, StageCatalog.Default, sets.Stages, hasher);
            var context = new RunContext
            {
                RunId = runId, RunDir = runDir, ArtifactsDir = artifacts, Flow = flow, Cache = cache, InputHasher = hasher,
                Device = device, Log = log, CancellationToken = ct,
                Interactive = request.Console && !System.Console.IsOutputRedirected,
            };
            runner = new FlowRunner(context);
            await runner.RunAsync(plan, request.Mode, request.Target);
            record = record with { Status = "finished", FinishedUtc = DateTime.UtcNow, Stages = [.. runner.Reports] };
            log.Information("Run {RunId} finished in {Seconds:0.0} s; outputs in {RunDir}", runId, clock.Elapsed.TotalSeconds, runDir);
            return ExitCodes.Ok;
        }
        catch (Exception e)
        {
            var (code, status, message) = Classify(e);
            var stage = (e as StageFailedException)?.Stage;
            record = record with
            {
                Status = status, Error = message, FailedStage = stage, FinishedUtc = DateTime.UtcNow,
                Stages = runner is null ? [] : [.. runner.Reports],
            };
            log.Error("Run {RunId} {Status} after {Seconds:0.0} s in stage {FailedStage}: {Error}", runId, status, clock.Elapsed.TotalSeconds, stage ?? "(none)", message);
            stderr.WriteLine($"error: {message}");
            return code;
        }
        finally
        {
            record.Write(runDir);
            await log.DisposeAsync();
        }
    }

    /// <summary>Exit code, run status and the one message the user sees.</summary>
    internal static (int Code, string Status, string Message) Classify(Exception e)
    {
        var root = e is StageFailedException { InnerException: { } inner } ? inner : e;
        var where = e is StageFailedException sf ? $"stage {sf.Stage}: " : "";
        return root switch
        {
            OperationCanceledException => (ExitCodes.Cancelled, "cancelled", "cancelled"),
            FerDataException d => (ExitCodes.BadInput, "failed", where + d.Message),
            FlowDefinitionException or MissingUpstreamException => (ExitCodes.BadInput, "failed", where + root.Message),
            FileNotFoundException f => (ExitCodes.BadInput, "failed", where + f.Message),
            _ => (ExitCodes.Failed, "failed", where + root.Message),
        };
    }

    public static int ListStages(FlowRequest request, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var sets = SetOptions.Parse(request.Sets ?? []);
            var flow = FlowScriptHost.Load(request.FlowPath, sets.Flow);
            var cache = new StageCache(Path.Combine(Path.GetFullPath(request.Artifacts), "cache"));
            var plan = FlowPlanner.Plan(flow, StageCatalog.Default, sets.Stages, new InputFileHasher(cache.Root));
            stdout.WriteLine($"{"stage",-10} {"fingerprint",-16}  status");
            foreach (var p in plan)
            {
                var status = cache.Lookup(p.Name, p.Fingerprint).Status switch
                {
                    CacheStatus.Hit => "cached", CacheStatus.Stale => "stale", CacheStatus.Corrupt => "damaged", _ => "missing",
                };
                stdout.WriteLine($"{p.Name,-10} {Hashing.Short(p.Fingerprint),-16}  {status}");
            }
            return ExitCodes.Ok;
        }
        catch (Exception e) when (e is FlowDefinitionException or FerDataException or FileNotFoundException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
    }

    private static string CommandLine(FlowRequest r)
    {
        var parts = new List<string> { "fer", "run", r.FlowPath };
        foreach (var s in r.Sets ?? []) parts.AddRange(["--set", s]);
        if (r.Mode != RunMode.Default) parts.AddRange([r.Mode == RunMode.From ? "--from" : "--only", r.Target ?? ""]);
        parts.AddRange(["--device", r.Device]);
        return string.Join(' ', parts);
    }
}
