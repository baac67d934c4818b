using System.Diagnostics;
using System.Text.Json;
using System.Threading.Tasks.Dataflow;
using Fer.Flow.Cache;
using Serilog;

namespace Fer.Flow.Pipeline;

/// <summary>
/// Which nodes a run computes: every stale one (Default), a node and everything after it afresh (From), a node afresh
/// from its cached inputs (Only), or a node from its cached inputs, reused when cached (Node: a cluster job's).
/// </summary>
public enum RunMode { Default, From, Only, Node }

/// <summary>A stage failed: names the stage, keeps the cause.</summary>
public sealed class StageFailedException(string stage, Exception cause)
    : Exception($"stage {stage} failed: {cause.Message}", cause)
{
    public string Stage { get; } = stage;
}

/// <summary>The run was cancelled (Ctrl-C, SIGTERM); names the stage that was computing then, if any.</summary>
public sealed class RunCancelledException(string? stage, CancellationToken token)
    : OperationCanceledException(stage is null ? "cancelled" : $"cancelled in stage {stage}", token)
{
    public string? Stage { get; } = stage;
}

/// <summary>A stage needed a cached upstream entry that does not exist (with --only).</summary>
public sealed class MissingUpstreamException(string message) : Exception(message);

/// <summary>A node's finished output as its consumers receive it.</summary>
public sealed record NodeResult(string Node, string Fingerprint, string Dir, object Output, bool CacheHit);

/// <summary>
/// Runs a planned flow as a TPL Dataflow network with one branch per node: each node's result is broadcast
/// through a <see cref="WriteOnceBlock{T}"/> to the <see cref="BatchBlock{T}"/> of each consumer, which fires
/// once every producer has delivered (the ensemble joins all members this way), so independent nodes (two
/// members, predict and visualize) can run side by side, at most <see cref="RunContext.Parallel"/> at once.
/// A fault stops the network and surfaces as <see cref="StageFailedException"/>; cancellation stops at the next
/// check, and nothing half-written is committed to the cache.
/// </summary>
public sealed class FlowRunner(RunContext run)
{
    public IReadOnlyList<StageReport> Reports => run.Completed;

    /// <summary>The first stage a cancellation interrupted while it computed (null when it came between stages).</summary>
    private string? _interrupted;

    private enum NodeAction { Reuse, Force, LoadOnly }

    public async Task<IReadOnlyDictionary<string, NodeResult>> RunAsync(FlowPlan plan, RunMode mode = RunMode.Default, string? target = null)
    {
        _plan = plan;
        var actions = Decide(plan, mode, target);
        var results = new Dictionary<string, NodeResult>(StringComparer.Ordinal);
        if (actions.Count == 0) return results;

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(run.CancellationToken);
        using var gate = new SemaphoreSlim(Math.Max(1, run.Parallel));
        var outputs = actions.Keys.ToDictionary(n => n, _ => new WriteOnceBlock<NodeResult>(r => r), StringComparer.Ordinal);
        var workers = new List<Task>();
        var executes = new List<Task>();
        Exception? firstFailure = null;

        // One at a time, nodes start in plan order (not in whichever order their inputs arrived), so a run's
        // sequence of computations, and with it every number, is the same each time.
        Task previous = Task.CompletedTask;
        foreach (var node in plan.Nodes.Where(n => actions.ContainsKey(n.Name)))
        {
            var producers = node.Producers.Where(actions.ContainsKey).ToList();
            var turn = previous;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            previous = done.Task;
            var execute = new TransformBlock<NodeResult[], NodeResult>(async inputs =>
            {
                try
                {
                    if (run.Parallel <= 1) await turn.WaitAsync(stop.Token);
                    await gate.WaitAsync(stop.Token);
                    try { return await ExecuteAsync(node, actions[node.Name], inputs); }
                    finally { gate.Release(); }
                }
                finally { done.TrySetResult(); }
            }, new ExecutionDataflowBlockOptions { CancellationToken = stop.Token });
            execute.LinkTo(outputs[node.Name]);
            executes.Add(execute.Completion);
            if (producers.Count == 0)
            {
                execute.Post([]);
            }
            else
            {
                var join = new BatchBlock<NodeResult>(producers.Count, new GroupingDataflowBlockOptions { CancellationToken = stop.Token });
                join.LinkTo(execute, new DataflowLinkOptions { PropagateCompletion = true });
                foreach (var p in producers) outputs[p].LinkTo(join);
            }
            var output = outputs[node.Name];
            workers.Add(output.ReceiveAsync(stop.Token).ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully) lock (results) results[node.Name] = t.Result;
            }, TaskScheduler.Default));
            _ = execute.Completion.ContinueWith(t =>
            {
                if (t.IsFaulted)
                {
                    Interlocked.CompareExchange(ref firstFailure, t.Exception!.Flatten().InnerExceptions[0], null);
                    stop.Cancel(); // the other branches stop at their next check
                }
            }, TaskScheduler.Default);
        }

        try { await Task.WhenAll(workers); }
        catch (OperationCanceledException) { }
        // Cancelled (Ctrl-C, SIGTERM, a failed branch): the receivers stop at once, but a node still computing (a
        // training step in libtorch) must finish its batch first. A cancelled block completes once its running
        // delegate has returned; returning before that let the process exit under a running native call (SIGSEGV).
        if (stop.IsCancellationRequested)
            await Task.WhenAll(executes.Select(c => c.ContinueWith(_ => { }, TaskScheduler.Default)));
        if (firstFailure is not null && firstFailure is not OperationCanceledException)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(firstFailure).Throw();
        if (run.CancellationToken.IsCancellationRequested) throw new RunCancelledException(_interrupted, run.CancellationToken);
        if (firstFailure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(firstFailure).Throw();
        return results;
    }

    /// <summary>Per node: compute if needed, force, load only (must be cached); nodes left out are skipped.</summary>
    private Dictionary<string, NodeAction> Decide(FlowPlan plan, RunMode mode, string? target)
    {
        var actions = new Dictionary<string, NodeAction>(StringComparer.Ordinal);
        if (mode == RunMode.Default)
        {
            foreach (var n in plan.Nodes) actions[n.Name] = NodeAction.Reuse;
            return actions;
        }
        var option = mode == RunMode.From ? "--from" : "--only";
        var targets = plan.Select(target ?? "", option);
        if (mode == RunMode.From)
        {
            var forced = plan.DownstreamOf(targets);
            foreach (var n in plan.Nodes) actions[n.Name] = forced.Contains(n.Name) ? NodeAction.Force : NodeAction.Reuse;
            return actions;
        }
        var targetNames = targets.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var name in plan.UpstreamOf(targets).Where(n => !targetNames.Contains(n))) actions[name] = NodeAction.LoadOnly;
        foreach (var t in targets) actions[t.Name] = mode == RunMode.Node ? NodeAction.Reuse : NodeAction.Force;
        var missing = plan.Nodes.Where(n => actions.GetValueOrDefault(n.Name) == NodeAction.LoadOnly && !n.Stage.Volatile)
            .Where(n => run.Cache.Lookup(n.Name, n.Fingerprint).Status != CacheStatus.Hit)
            .Select(n => n.Name).ToList();
        if (missing.Count > 0)
            throw new MissingUpstreamException(
                $"--only {target} needs the cached output of {string.Join(", ", missing.Select(m => "stage " + m))}, which {(missing.Count == 1 ? "is" : "are")} missing for these settings; " +
                $"make {(missing.Count == 1 ? "it" : "them")} first with: fer run {Path.GetFileName(run.Flow.ScriptPath ?? run.Flow.Name)} (same --set values), or use --from {missing[0]}");
        return actions;
    }

    private async Task<NodeResult> ExecuteAsync(PlannedNode planned, NodeAction action, NodeResult[] inputs)
    {
        var log = run.Log.ForContext("Stage", planned.Name);
        var clock = Stopwatch.StartNew();
        log.Information("Stage {Stage} started ({Action}), fingerprint {Fingerprint}", planned.Name, action.ToString().ToLowerInvariant(), Hashing.Short(planned.Fingerprint));
        try
        {
            run.CancellationToken.ThrowIfCancellationRequested();
            // Inputs in the planner's order (port order, then producer name), not in the order they arrived.
            var upstream = planned.Producers.Select(p => inputs.First(i => i.Node == p)).Select(i => new Produced<object>(i.Node, i.Output)).ToList();
            var (result, manifest) = planned.Stage.Volatile
                ? await ComputeVolatileAsync(planned, upstream, log)
                : await ReuseOrComputeAsync(planned, action, upstream, log);
            Publish(result.Dir);
            if (planned.Stage.Volatile) TryDeleteDir(result.Dir);
            var status = planned.Stage.Volatile ? StageOutcome.Volatile : result.CacheHit ? StageOutcome.Hit : StageOutcome.Miss;
            log.Information("Stage {Stage} finished in {Seconds:0.00} s: cache {CacheStatus}, fingerprint {Fingerprint}, rows {Rows}",
                planned.Name, clock.Elapsed.TotalSeconds, status.Text(), Hashing.Short(planned.Fingerprint), SettingsSchema.Pairs(manifest.Rows));
            var metrics = (result.Output as IHasMetrics)?.Metrics;
            var report = StageReport.With(new StageReport(planned.Name, planned.Kind, planned.Fingerprint, status, clock.Elapsed.TotalSeconds, manifest.Rows), metrics);
            lock (run.Completed)
            {
                run.Completed.Add(report);
                if (run.WritesRunMetrics) RunRecord.WriteMetrics(run.RunDir, run.Completed);
            }
            return result;
        }
        catch (OperationCanceledException) when (run.CancellationToken.IsCancellationRequested)
        {
            log.Warning("Stage {Stage} cancelled after {Seconds:0.00} s; nothing of it was cached", planned.Name, clock.Elapsed.TotalSeconds);
            Interlocked.CompareExchange(ref _interrupted, planned.Name, null);
            throw;
        }
        catch (OperationCanceledException)
        {
            throw; // another branch failed: this one stopped, the failure is reported there
        }
        catch (Exception ex) when (ex is not StageFailedException and not MissingUpstreamException)
        {
            log.Error(ex, "Stage {Stage} failed after {Seconds:0.00} s with settings {Settings}: {Error}",
                planned.Name, clock.Elapsed.TotalSeconds, SettingsSchema.Pairs(SettingsBinder.Canonical(planned.Settings)), ex.Message);
            throw new StageFailedException(planned.Name, ex);
        }
    }

    /// <summary>
    /// The cached entry when it is valid and may be used, else a fresh computation under the entry's lock: another
    /// process computing the same entry (a concurrent run, a sweep's other trial, a cluster job) is waited for and
    /// its result used.
    /// </summary>
    private async Task<(NodeResult, StageManifest)> ReuseOrComputeAsync(PlannedNode planned, NodeAction action, List<Produced<object>> upstream, ILogger log)
    {
        if (action != NodeAction.Force && Reusable(planned, action, log, underLock: false) is { } cached) return cached;
        IDisposable entryLock;
        try
        {
            entryLock = await run.Cache.LockEntryAsync(planned.Name, planned.Fingerprint,
                () => log.Information("Stage {Stage} is being computed by another process; waiting for it", planned.Name), run.CancellationToken);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Unwritable(planned, e);
        }
        using var _ = entryLock;
        if (action != NodeAction.Force && Reusable(planned, action, log, underLock: true) is { } madeMeanwhile) return madeMeanwhile;
        return await ComputeAsync(planned, upstream, log);
    }

    /// <summary>
    /// The node's valid cache entry and its output, or null. A damaged entry is evicted, only under the entry's lock
    /// (else another process may be replacing it); a load-only node without an entry is an error.
    /// </summary>
    private (NodeResult, StageManifest)? Reusable(PlannedNode planned, NodeAction action, ILogger log, bool underLock)
    {
        var lookup = run.Cache.Lookup(planned.Name, planned.Fingerprint);
        object? output = null;
        if (lookup.Status == CacheStatus.Hit)
        {
            try { output = OutputStore.Read(planned.Stage.OutputType, lookup.Dir); }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                lookup = lookup with { Status = CacheStatus.Corrupt, Problem = e.Message };
            }
        }
        if (lookup.Status == CacheStatus.Corrupt && (underLock || action == NodeAction.LoadOnly))
        {
            log.Warning("Cache entry {Dir} of stage {Stage} is damaged ({Problem}); it will be recomputed", lookup.Dir, planned.Name, lookup.Problem);
            run.Cache.Evict(planned.Name, planned.Fingerprint);
        }
        if (action == NodeAction.LoadOnly && output is null)
            throw new MissingUpstreamException(
                $"stage {planned.Name} has no cached output for fingerprint {Hashing.Short(planned.Fingerprint)} ({(lookup.Problem ?? lookup.Status.ToString().ToLowerInvariant())}); " +
                $"make it first with: fer run {Path.GetFileName(run.Flow.ScriptPath ?? run.Flow.Name)} (same --set values), or use --from {planned.Name}");
        return output is not null ? (new NodeResult(planned.Name, planned.Fingerprint, lookup.Dir, output, CacheHit: true), lookup.Manifest!) : null;
    }

    private StageContext Context(PlannedNode planned, List<Produced<object>> upstream, string outputDir, ILogger log) => new()
    {
        Run = run, Node = planned.Name, Fingerprint = planned.Fingerprint, Upstream = upstream, OutputDir = outputDir,
        CheckpointDir = run.Cache.CheckpointDir(planned.Name, planned.Fingerprint), Log = log,
    };

    private IOException Unwritable(PlannedNode planned, Exception e) =>
        new($"cannot write a cache entry under {Path.Combine(run.Cache.Root, planned.Name)} ({e.Message}); " +
            "is the artifacts folder read-only or the disk full? Earlier cache entries are untouched", e);

    private async Task<(NodeResult, StageManifest)> ComputeAsync(PlannedNode planned, List<Produced<object>> upstream, ILogger log)
    {
        PendingEntry pending;
        try { pending = run.Cache.Begin(planned.Name, planned.Fingerprint); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Unwritable(planned, e);
        }
        var clock = Stopwatch.StartNew();
        var context = Context(planned, upstream, pending.Dir, log);
        context.InputFiles.AddRange(planned.InputFiles);
        try
        {
            var output = await planned.Stage.RunAsync(context, planned.Settings);
            run.CancellationToken.ThrowIfCancellationRequested();
            // An input that changed while the stage ran must not yield an entry claiming its old content.
            foreach (var input in context.InputFiles)
                if (!run.InputHasher.Unchanged(input))
                    throw new IOException($"{input.Path} changed while stage {planned.Name} was reading it; nothing was cached, run again");
            OutputStore.Write(output, pending.Dir);
            var manifest = new StageManifest
            {
                Stage = planned.Name,
                Fingerprint = planned.Fingerprint,
                CodeIdentity = planned.Stage.CodeIdentity,
                Parameters = SettingsBinder.Canonical(planned.Settings),
                Upstream = UpstreamFingerprints(planned),
                Inputs = context.InputFiles,
                Rows = context.Rows,
                Seconds = clock.Elapsed.TotalSeconds,
                CreatedUtc = DateTime.UtcNow,
                RunId = run.RunId,
            };
            var dir = run.Cache.Commit(pending, manifest);
            run.Cache.RemoveCheckpoints(planned.Name);
            return (new NodeResult(planned.Name, planned.Fingerprint, dir, OutputStore.Read(planned.Stage.OutputType, dir), CacheHit: false),
                StageManifest.TryRead(dir)!);
        }
        catch
        {
            run.Cache.Abandon(pending);
            throw;
        }
    }

    /// <summary>A stage that describes the run itself: computed in a scratch folder of the run, published, never cached.</summary>
    private async Task<(NodeResult, StageManifest)> ComputeVolatileAsync(PlannedNode planned, List<Produced<object>> upstream, ILogger log)
    {
        var scratch = Path.Combine(run.RunDir, $".{planned.Name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(scratch);
        try
        {
            var context = Context(planned, upstream, scratch, log);
            var output = await planned.Stage.RunAsync(context, planned.Settings);
            var manifest = new StageManifest
            {
                Stage = planned.Name, Fingerprint = planned.Fingerprint, CodeIdentity = planned.Stage.CodeIdentity,
                Parameters = SettingsBinder.Canonical(planned.Settings), Upstream = UpstreamFingerprints(planned), Rows = context.Rows,
                CreatedUtc = DateTime.UtcNow, RunId = run.RunId,
            };
            return (new NodeResult(planned.Name, planned.Fingerprint, scratch, output, CacheHit: false), manifest);
        }
        catch
        {
            TryDeleteDir(scratch);
            throw;
        }
    }

    private SortedDictionary<string, string> UpstreamFingerprints(PlannedNode planned) =>
        new(planned.Producers.ToDictionary(p => p, p => _plan!.Find(p)!.Fingerprint), StringComparer.Ordinal);

    private FlowPlan? _plan;

    private static void TryDeleteDir(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, true); } catch (IOException) { }
    }

    /// <summary>Copies an entry's publish/ folder into the run folder (each file to a temporary name, then renamed).</summary>
    private void Publish(string entryDir) => PublishInto(entryDir, run.RunDir);

    /// <summary>Copies an entry's publish/ files into a run folder (each through a temporary name), as every node's result does.</summary>
    public static void PublishInto(string entryDir, string runDir)
    {
        var publish = Path.Combine(entryDir, "publish");
        if (!Directory.Exists(publish)) return;
        foreach (var file in Directory.EnumerateFiles(publish, "*", SearchOption.AllDirectories))
        {
            var dest = Path.Combine(runDir, Path.GetRelativePath(publish, file));
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            var tmp = dest + ".tmp";
            File.Copy(file, tmp, overwrite: true);
            File.Move(tmp, dest, overwrite: true);
        }
    }
}
