using System.Diagnostics;
using System.Threading.Tasks.Dataflow;
using Fer.Flow.Cache;
using Serilog;

namespace Fer.Flow.Pipeline;

public enum RunMode { Default, From, Only }

/// <summary>A stage failed: names the stage, keeps the cause.</summary>
public sealed class StageFailedException(string stage, Exception cause)
    : Exception($"stage {stage} failed: {cause.Message}", cause)
{
    public string Stage { get; } = stage;
}

/// <summary>A stage needed a cached upstream entry that does not exist (with --only).</summary>
public sealed class MissingUpstreamException(string message) : Exception(message);

/// <summary>What happened to one stage in a run.</summary>
public sealed record StageReport(string Stage, string Fingerprint, string Status, double Seconds, IReadOnlyDictionary<string, long> Rows);

/// <summary>
/// Runs a planned flow as a chain of TPL Dataflow blocks, one per stage, linked with completion propagation:
/// each block takes the outputs so far, reuses or computes its stage and passes them on. A fault in a block
/// faults the rest of the chain and surfaces as <see cref="StageFailedException"/>; cancellation stops
/// at the next check, and nothing half-written is committed to the cache.
/// </summary>
public sealed class FlowRunner(RunContext run)
{
    public IReadOnlyList<StageReport> Reports => run.Completed;

    public async Task<IReadOnlyDictionary<string, StageOutput>> RunAsync(
        IReadOnlyList<PlannedStage> plan, RunMode mode = RunMode.Default, string? target = null)
    {
        int targetIndex = -1;
        if (mode != RunMode.Default)
        {
            targetIndex = plan.ToList().FindIndex(p => p.Name == target);
            if (targetIndex < 0)
                throw new FlowDefinitionException(
                    $"--{(mode == RunMode.From ? "from" : "only")} {target}: flow {run.Flow.Name} has no stage '{target}'; its stages: {string.Join(" ", plan.Select(p => p.Name))}");
        }

        // Decide per stage: compute-if-needed, force, load-only (must be cached) or skip.
        var actions = new List<(PlannedStage Stage, StageAction Action)>();
        var needed = mode == RunMode.Only ? UpstreamClosure(plan, plan[targetIndex]) : null;
        for (int i = 0; i < plan.Count; i++)
        {
            var action = mode switch
            {
                RunMode.Default => StageAction.Reuse,
                RunMode.From => i >= targetIndex ? StageAction.Force : StageAction.Reuse,
                _ => i == targetIndex ? StageAction.Force : needed!.Contains(plan[i].Name) ? StageAction.LoadOnly : StageAction.Skip,
            };
            if (action != StageAction.Skip) actions.Add((plan[i], action));
        }

        if (mode == RunMode.Only)
        {
            var missing = actions.Where(a => a.Action == StageAction.LoadOnly)
                .Where(a => run.Cache.Lookup(a.Stage.Name, a.Stage.Fingerprint).Status != CacheStatus.Hit)
                .Select(a => a.Stage.Name).ToList();
            if (missing.Count > 0)
                throw new MissingUpstreamException(
                    $"--only {target} needs the cached output of {string.Join(", ", missing.Select(m => "stage " + m))}, which {(missing.Count == 1 ? "is" : "are")} missing for these settings; " +
                    $"make {(missing.Count == 1 ? "it" : "them")} first with: fer run {Path.GetFileName(run.Flow.ScriptPath ?? run.Flow.Name)} (same --set values), or use --from {missing[0]}");
        }

        var options = new ExecutionDataflowBlockOptions { CancellationToken = run.CancellationToken, BoundedCapacity = 1 };
        var link = new DataflowLinkOptions { PropagateCompletion = true };
        var blocks = actions.Select(a => new TransformBlock<Outputs, Outputs>(
            outputs => ExecuteAsync(a.Stage, a.Action, outputs), options)).ToList();
        Outputs? final = null;
        var sink = new ActionBlock<Outputs>(o => final = o, new ExecutionDataflowBlockOptions { CancellationToken = run.CancellationToken });
        for (int i = 0; i < blocks.Count; i++)
            blocks[i].LinkTo(i + 1 < blocks.Count ? blocks[i + 1] : sink, link);
        if (blocks.Count == 0) return new Dictionary<string, StageOutput>();

        await blocks[0].SendAsync(new Outputs(), run.CancellationToken);
        blocks[0].Complete();
        try
        {
            await sink.Completion;
        }
        catch (AggregateException ae) when (ae.Flatten().InnerExceptions.Count == 1)
        {
            // Faults propagate down the chain wrapped once per block: surface the original.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ae.Flatten().InnerExceptions[0]).Throw();
        }
        run.CancellationToken.ThrowIfCancellationRequested();
        return final ?? throw new InvalidOperationException("the flow ended without output");
    }

    private enum StageAction { Reuse, Force, LoadOnly, Skip }

    private sealed class Outputs : Dictionary<string, StageOutput>
    {
        public Outputs() : base(StringComparer.Ordinal) { }
        public Outputs(Outputs other) : base(other, StringComparer.Ordinal) { }
    }

    private static HashSet<string> UpstreamClosure(IReadOnlyList<PlannedStage> plan, PlannedStage target)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>(target.UpstreamFingerprints.Keys);
        while (stack.Count > 0)
        {
            var name = stack.Pop();
            if (!result.Add(name)) continue;
            foreach (var u in plan.First(p => p.Name == name).UpstreamFingerprints.Keys) stack.Push(u);
        }
        return result;
    }

    private async Task<Outputs> ExecuteAsync(PlannedStage planned, StageAction action, Outputs upstream)
    {
        var log = run.Log.ForContext("Stage", planned.Name);
        var clock = Stopwatch.StartNew();
        log.Information("Stage {Stage} started ({Action}), fingerprint {Fingerprint}", planned.Name, action.ToString().ToLowerInvariant(), Hashing.Short(planned.Fingerprint));
        try
        {
            var output = planned.Stage.Volatile
                ? await ComputeVolatileAsync(planned, upstream, log)
                : await ReuseOrComputeAsync(planned, action, upstream, log);
            Publish(output);
            if (planned.Stage.Volatile) TryDeleteDir(output.Dir);
            var status = planned.Stage.Volatile ? "volatile" : output.CacheHit ? "hit" : "miss";
            log.Information("Stage {Stage} finished in {Seconds:0.00} s: cache {CacheStatus}, fingerprint {Fingerprint}, rows {Rows}",
                planned.Name, clock.Elapsed.TotalSeconds, status, Hashing.Short(planned.Fingerprint), StageParameter.Pairs(output.Manifest.Rows));
            lock (run.Completed) run.Completed.Add(new StageReport(planned.Name, planned.Fingerprint, status, clock.Elapsed.TotalSeconds, output.Manifest.Rows));
            return new Outputs(upstream) { [planned.Name] = output };
        }
        catch (OperationCanceledException) when (run.CancellationToken.IsCancellationRequested)
        {
            log.Warning("Stage {Stage} cancelled after {Seconds:0.00} s; nothing of it was cached", planned.Name, clock.Elapsed.TotalSeconds);
            throw;
        }
        catch (Exception ex) when (ex is not StageFailedException and not MissingUpstreamException)
        {
            var parameters = planned.Settings.Canonical();
            log.Error(ex, "Stage {Stage} failed after {Seconds:0.00} s with settings {Settings}: {Error}",
                planned.Name, clock.Elapsed.TotalSeconds, StageParameter.Pairs(parameters), ex.Message);
            throw new StageFailedException(planned.Name, ex);
        }
    }

    /// <summary>The cached entry when it is valid and may be used, else a fresh computation.</summary>
    private async Task<StageOutput> ReuseOrComputeAsync(PlannedStage planned, StageAction action, Outputs upstream, ILogger log)
    {
        var lookup = run.Cache.Lookup(planned.Name, planned.Fingerprint);
        if (lookup.Status == CacheStatus.Corrupt)
        {
            log.Warning("Cache entry {Dir} of stage {Stage} is damaged ({Problem}); it will be recomputed", lookup.Dir, planned.Name, lookup.Problem);
            run.Cache.Evict(planned.Name, planned.Fingerprint);
        }
        if (action == StageAction.LoadOnly && lookup.Status != CacheStatus.Hit)
            throw new MissingUpstreamException(
                $"stage {planned.Name} has no cached output for fingerprint {Hashing.Short(planned.Fingerprint)} ({(lookup.Problem ?? lookup.Status.ToString().ToLowerInvariant())}); " +
                $"make it first with: fer run {Path.GetFileName(run.Flow.ScriptPath ?? run.Flow.Name)} (same --set values), or use --from {planned.Name}");
        return action != StageAction.Force && lookup.Status == CacheStatus.Hit
            ? new StageOutput(planned.Name, planned.Fingerprint, lookup.Dir, lookup.Manifest!, CacheHit: true)
            : await ComputeAsync(planned, upstream, log);
    }

    private async Task<StageOutput> ComputeAsync(PlannedStage planned, Outputs upstream, ILogger log)
    {
        PendingEntry pending;
        try { pending = run.Cache.Begin(planned.Name, planned.Fingerprint); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot write a cache entry under {Path.Combine(run.Cache.Root, planned.Name)} ({e.Message}); " +
                                  "is the artifacts folder read-only or the disk full? Earlier cache entries are untouched", e);
        }
        var clock = Stopwatch.StartNew();
        var context = new StageContext
        {
            Run = run,
            Stage = planned.Name,
            Fingerprint = planned.Fingerprint,
            Settings = planned.Settings,
            Members = planned.Members,
            Upstream = planned.UpstreamFingerprints.Keys.ToDictionary(u => u, u => upstream[u]),
            OutputDir = pending.Dir,
            Log = log,
        };
        context.Inputs.AddRange(planned.Inputs);
        try
        {
            await planned.Stage.RunAsync(context);
            run.CancellationToken.ThrowIfCancellationRequested();
            // An input that changed while the stage ran must not yield an entry claiming its old content.
            foreach (var input in context.Inputs)
                if (!run.InputHasher.Unchanged(input))
                    throw new IOException($"{input.Path} changed while stage {planned.Name} was reading it; nothing was cached, run again");
            var manifest = new StageManifest
            {
                Stage = planned.Name,
                Fingerprint = planned.Fingerprint,
                CodeVersion = planned.Stage.CodeVersion,
                Parameters = planned.Settings.Canonical(),
                Upstream = planned.UpstreamFingerprints,
                Inputs = context.Inputs,
                Rows = context.Rows,
                Seconds = clock.Elapsed.TotalSeconds,
                CreatedUtc = DateTime.UtcNow,
                RunId = run.RunId,
            };
            var dir = run.Cache.Commit(pending, manifest);
            return new StageOutput(planned.Name, planned.Fingerprint, dir, StageManifest.TryRead(dir)!, CacheHit: false);
        }
        catch
        {
            run.Cache.Abandon(pending);
            throw;
        }
    }

    /// <summary>A stage that describes the run itself: computed in a scratch folder of the run, published, never cached.</summary>
    private async Task<StageOutput> ComputeVolatileAsync(PlannedStage planned, Outputs upstream, ILogger log)
    {
        var scratch = Path.Combine(run.RunDir, $".{planned.Name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(scratch);
        try
        {
            var context = new StageContext
            {
                Run = run, Stage = planned.Name, Fingerprint = planned.Fingerprint, Settings = planned.Settings, Members = planned.Members,
                Upstream = planned.UpstreamFingerprints.Keys.ToDictionary(u => u, u => upstream[u]), OutputDir = scratch, Log = log,
            };
            await planned.Stage.RunAsync(context);
            var manifest = new StageManifest
            {
                Stage = planned.Name, Fingerprint = planned.Fingerprint, CodeVersion = planned.Stage.CodeVersion,
                Parameters = planned.Settings.Canonical(), Upstream = planned.UpstreamFingerprints, Rows = context.Rows,
                CreatedUtc = DateTime.UtcNow, RunId = run.RunId,
            };
            var output = new StageOutput(planned.Name, planned.Fingerprint, scratch, manifest, CacheHit: false);
            return output;
        }
        catch
        {
            TryDeleteDir(scratch);
            throw;
        }
    }

    private static void TryDeleteDir(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, true); } catch (IOException) { }
    }

    private void Publish(StageOutput output)
    {
        var publish = output.PathOf("publish");
        if (!Directory.Exists(publish)) return;
        foreach (var file in Directory.EnumerateFiles(publish, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(publish, file);
            var dest = Path.Combine(run.RunDir, rel);
            if (rel == "metrics.json")
            {
                RunMetrics.Merge(Path.Combine(run.RunDir, "metrics.json"), file);
                continue;
            }
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            var tmp = dest + ".tmp";
            File.Copy(file, tmp, overwrite: true);
            File.Move(tmp, dest, overwrite: true);
        }
    }
}
