using System.Diagnostics;
using System.Text.Json;
using Fer.Core.Data;
using Fer.Core.Storage;
using Fer.Flow.Cache;
using Fer.Flow.Logging;
using Fer.Flow.Pipeline;
using Fer.Flow.Scripting;
using Serilog;

namespace Fer.Flow.Cli;

/// <summary>A request to run (or list the stages of) a flow, as the command line gives it.</summary>
public sealed record FlowRequest(string FlowPath, string Artifacts = "artifacts", IReadOnlyList<string>? Sets = null,
    RunMode Mode = RunMode.Default, string? Target = null, string Device = "auto", double WaitSeconds = 0, bool Console = true, int Parallel = 1)
{
    /// <summary>--sweep key=v1,v2 axes (added to, or replacing, those the script sweeps).</summary>
    public IReadOnlyList<string> Sweeps { get; init; } = [];
    /// <summary>Set when this run is one trial of a sweep (then it sweeps nothing itself).</summary>
    public SweepTrial? Trial { get; init; }
    /// <summary>Set in a sweep's array task: the sweep's trials file; the task's index (SLURM_ARRAY_TASK_ID) picks the trial.</summary>
    public string? TrialOf { get; init; }
    /// <summary>Set in a cluster job: the run (made by its coordinator) whose node <see cref="Target"/> this process computes.</summary>
    public string? JobOf { get; init; }
    /// <summary>local (this process) or slurm (each node a Slurm job, see <see cref="Cluster.SlurmExecutor"/>).</summary>
    public string Executor { get; init; } = "local";
    public Cluster.SlurmResources Slurm { get; init; } = new();
}

public static class ExitCodes
{
    public const int Ok = 0, Failed = 1, BadInput = 2, Busy = 3, Cancelled = 130, Terminated = 143;
}

/// <summary>The `run` and `stages` commands, callable in-process (tests do).</summary>
public static class FlowCommand
{
    public static async Task<int> RunAsync(FlowRequest request, TextWriter stderr, CancellationToken ct = default)
    {
        if (CheckOptions(request) is { } bad) { stderr.WriteLine($"error: {bad}"); return ExitCodes.BadInput; }
        if (request.TrialOf is { } trialsFile)
        {
            if (TrialOf(trialsFile, stderr) is not { } chosen) return ExitCodes.BadInput;
            request = request with { Sets = chosen.Sets, Trial = chosen.Trial, TrialOf = null, Sweeps = [] };
        }
        var artifacts = Path.GetFullPath(request.Artifacts);
        FlowDefinition flow;
        SetOptions sets;
        FlowPlan plan;
        var cache = new StageCache(Path.Combine(artifacts, "cache"));
        var hasher = new InputFileHasher(cache.Root);
        try
        {
            // Input files are checked (regular files only) and hashed here, at plan time: before the lock is taken.
            sets = SetOptions.Parse(request.Sets ?? []);
            flow = FlowScriptHost.Load(request.FlowPath, sets.Flow);
            // Every setting is bound and checked, and the graph built, before anything runs or the lock is taken.
            plan = FlowPlanner.Plan(flow, sets.Stages, hasher);
            if (request.Mode != RunMode.Default) plan.Select(request.Target ?? "", request.Mode == RunMode.From ? "--from" : "--only");
            if (request.Trial is null && Sweep.Combine(flow.Sweeps, [.. request.Sweeps.Select(Sweep.ParseAxis)]) is { IsEmpty: false } sweep)
                return request.Executor == "slurm" ? await Cluster.SlurmExecutor.RunSweepAsync(request, sweep, stderr, ct) : await RunSweepAsync(request, sweep, stderr, ct);
            if (request.Executor == "slurm" && request.JobOf is null)
                return await new Cluster.SlurmExecutor(request, flow, sets, plan, stderr).RunAsync(ct);
        }
        catch (Exception e) when (e is FlowDefinitionException or FerDataException or FileNotFoundException or NotARegularFileException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }

        ArtifactsLock artifactsLock;
        try { artifactsLock = ArtifactsLock.Acquire(artifacts, $"fer run {Path.GetFileName(request.FlowPath)}", TimeSpan.FromSeconds(request.WaitSeconds)); }
        catch (ArtifactsBusyException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.Busy; }
        catch (ArtifactsUnusableException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.BadInput; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: cannot use artifacts folder {artifacts}: {e.Message}");
            return ExitCodes.Failed;
        }
        using var _ = artifactsLock;

        // A cluster job works in its coordinator's run folder: its log and record go to jobs/NODE.*, the rest is the coordinator's.
        var job = request.JobOf is not null ? Cluster.SlurmJob.Of(request.Target ?? "") : null;
        var runId = request.JobOf ?? NewRunId();
        var runDir = Path.Combine(artifacts, "runs", runId);
        if (job is not null && !Directory.Exists(runDir))
        {
            stderr.WriteLine($"error: --job-of {runId}: no run folder {runDir}");
            return ExitCodes.BadInput;
        }
        try { Directory.CreateDirectory(job is null ? runDir : job.Dir(runDir)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: cannot create the run folder {runDir}: {e.Message} (is the artifacts folder read-only or the disk full?)");
            return ExitCodes.Failed;
        }
        FileStream? runningLock = null;
        if (job is null)
        {
            try { runningLock = new FileStream(Path.Combine(runDir, RunRecord.RunningLockFileName), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"error: cannot write in the run folder {runDir}: {e.Message}");
                return ExitCodes.Failed;
            }
        }
        using var __ = runningLock;
        var log = job is null ? RunLog.Create(runDir, runId, flow.Name, request.Console)
            : RunLog.Create(runDir, runId, flow.Name, request.Console, file: job.LogPath(runDir), properties: job.Properties());
        void WriteRecord(RunRecord r)
        {
            if (job is null) r.Write(runDir);
            else r.WriteTo(job.RecordPath(runDir));
        }

        var clock = Stopwatch.StartNew();
        var record = NewRecord(request, runId, flow, sets, plan);
        var parameters = record.Parameters;

        FlowRunner? runner = null;
        try
        {
            // Inside the try: a disk already full fails here, with one line and the run recorded as failed.
            WriteRecord(record);
            var swept = cache.SweepAbandoned();
            if (swept > 0) log.Warning("Removed {Count} unfinished cache entries left by an interrupted run", swept);
            // Checkpoints of a node's earlier settings were abandoned by a kill: only the planned fingerprint's may resume.
            var checkpoints = plan.Nodes.Sum(n => cache.RemoveCheckpoints(n.Name, keepFingerprint: n.Fingerprint));
            if (checkpoints > 0) log.Information("Removed {Count} training checkpoints of earlier settings", checkpoints);
            var device = DeviceChoice.Resolve(request.Device);
            record = record with { Device = device.ToString() };
            log.Information("Run {RunId} of flow {Flow} ({Script}) started: mode {Mode}{Target}, device {Device}, seed {Seed}, parameters {Parameters}, sets {Sets}, versions Fer {FerVersion}, TorchSharp {TorchSharpVersion}, libtorch {LibTorchVersion}",
                runId, flow.Name, flow.ScriptPath, request.Mode.ToString().ToLowerInvariant(), request.Target is null ? "" : " " + request.Target, device.ToString(),
                parameters.GetValueOrDefault("seed", "none"), SettingsSchema.Pairs(parameters), SettingsSchema.Pairs(record.Sets), Versions.Fer, Versions.TorchSharp, Versions.LibTorch);
            WriteRecord(record);

            var context = new RunContext
            {
                RunId = runId, RunDir = runDir, ArtifactsDir = artifacts, Flow = flow, Cache = cache, InputHasher = hasher,
                Device = device, Log = log, CancellationToken = ct, Parallel = request.Parallel, WritesRunMetrics = job is null,
                Progress = !request.Console ? ProgressDisplay.Silent()
                    : System.Console.IsOutputRedirected ? ProgressDisplay.Plain(System.Console.Out) : ProgressDisplay.Live(),
            };
            runner = new FlowRunner(context);
            await runner.RunAsync(plan, request.Mode, request.Target);
            record = record with { Status = RunStatus.Finished, FinishedUtc = DateTime.UtcNow, Stages = [.. runner.Reports] };
            log.Information("Run {RunId} finished in {Seconds:0.0} s; outputs in {RunDir}", runId, clock.Elapsed.TotalSeconds, runDir);
            return ExitCodes.Ok;
        }
        catch (Exception e)
        {
            var (code, status, message) = Classify(e);
            var stage = (e as StageFailedException)?.Stage ?? (e as RunCancelledException)?.Stage;
            record = record with
            {
                Status = status, Error = message, FailedStage = stage, FinishedUtc = DateTime.UtcNow,
                Stages = runner is null ? [] : [.. runner.Reports],
            };
            log.Error(e, "Run {RunId} {Status} after {Seconds:0.0} s in stage {FailedStage}: {Error}", runId, status.Text(), clock.Elapsed.TotalSeconds, stage ?? "(none)", message);
            stderr.WriteLine($"error: {message}");
            return code;
        }
        finally
        {
            try { WriteRecord(record); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { stderr.WriteLine($"error: cannot write the record of run {runId}: {e.Message}"); }
            await log.DisposeAsync();
        }
    }

    /// <summary>A new run's record: what it was asked to do (it is written before anything runs).</summary>
    internal static RunRecord NewRecord(FlowRequest request, string runId, FlowDefinition flow, SetOptions sets, FlowPlan plan) => new()
    {
        RunId = runId, Flow = flow.Name, Script = flow.ScriptPath,
        Command = CommandLine(request),
        Parameters = new SortedDictionary<string, string>(flow.Parameters.ToDictionary(kv => kv.Key, kv => SettingsSchema.Canonical(kv.Value)), StringComparer.Ordinal),
        Sets = new SortedDictionary<string, string>(sets.Flow.Concat(sets.Stages).ToDictionary(), StringComparer.Ordinal),
        Settings = new(plan.Nodes.ToDictionary(n => n.Name, n => SettingsBinder.Canonical(n.Settings)), StringComparer.Ordinal),
        InputHashes = new(plan.Nodes.SelectMany(n => n.InputFiles).DistinctBy(i => i.Path).ToDictionary(i => i.Path, i => i.Sha256), StringComparer.Ordinal),
        StartedUtc = DateTime.UtcNow,
        Sweep = request.Trial,
        Executor = request.Executor == "local" ? null : request.Executor,
        SlurmJob = Cluster.SlurmJob.CurrentJobId(),
        Versions = new() { ["fer"] = Versions.Fer, ["torchsharp"] = Versions.TorchSharp, ["libtorch"] = Versions.LibTorch },
    };

    internal static string NewRunId() => $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>Exit code, run status and the one message the user sees.</summary>
    internal static (int Code, RunStatus Status, string Message) Classify(Exception e)
    {
        var root = e is StageFailedException { InnerException: { } inner } ? inner : e;
        var where = e is StageFailedException sf ? $"stage {sf.Stage}: " : "";
        return root switch
        {
            RunCancelledException c => (ExitCodes.Cancelled, RunStatus.Cancelled, c.Message),
            OperationCanceledException => (ExitCodes.Cancelled, RunStatus.Cancelled, "cancelled"),
            FerDataException d => (ExitCodes.BadInput, RunStatus.Failed, where + d.Message),
            FlowDefinitionException or MissingUpstreamException => (ExitCodes.BadInput, RunStatus.Failed, where + root.Message),
            FileNotFoundException f => (ExitCodes.BadInput, RunStatus.Failed, where + f.Message),
            NotARegularFileException f => (ExitCodes.BadInput, RunStatus.Failed, where + f.Message),
            _ => (ExitCodes.Failed, RunStatus.Failed, where + root.Message),
        };
    }

    /// <summary>What is wrong with an --artifacts value, or null; every command that takes the option checks it.</summary>
    internal static string? ArtifactsProblem(string? artifacts) =>
        string.IsNullOrWhiteSpace(artifacts) ? "--artifacts: give a folder (it is empty)"
        : artifacts.Contains('\0') ? "--artifacts: the folder name holds a NUL character"
        : null;

    /// <summary>What is wrong with the options themselves (checked before anything is read), or null.</summary>
    /// <summary>
    /// A sweep's trials, one after another on one artifacts folder (what they share is computed once). Every trial is
    /// planned first, so a swept key naming no setting or a value of the wrong type is one line before anything runs.
    /// The sweep stops at the first trial that fails.
    /// </summary>
    private static async Task<int> RunSweepAsync(FlowRequest request, Sweep sweep, TextWriter stderr, CancellationToken ct)
    {
        var trials = SweepRequests(request, sweep);
        if (PlanTrials(trials, stderr) is { } invalid) return invalid;
        foreach (var trial in trials)
        {
            var t = trial.Trial!;
            int code = await RunAsync(trial, stderr, ct);
            if (code != ExitCodes.Ok)
            {
                stderr.WriteLine($"error: sweep {t.Id} stopped at trial {t.Trial} of {t.Trials} ({Values(t)})");
                return code;
            }
        }
        if (request.Console) System.Console.WriteLine($"sweep {trials[0].Trial!.Id}: {trials.Count} trials finished; fer compare {trials[0].Trial!.Id} --out sweep.html shows them side by side");
        return ExitCodes.Ok;
    }

    /// <summary>The trial an array task runs: the sweep file's entry at SLURM_ARRAY_TASK_ID; null after one line when there is none.</summary>
    private static Cluster.SweepTrialRequest? TrialOf(string file, TextWriter stderr)
    {
        var index = Environment.GetEnvironmentVariable("SLURM_ARRAY_TASK_ID");
        if (!int.TryParse(index, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var i))
        {
            stderr.WriteLine($"error: --trial-of {file}: SLURM_ARRAY_TASK_ID is '{index}', not a task index (the option is for a sweep's Slurm array tasks)");
            return null;
        }
        try
        {
            if (Fer.Core.Storage.FileStat.Of(file).Kind != Fer.Core.Storage.FileKind.Regular || new FileInfo(file).Length > 16 << 20)
                throw new InvalidDataException("not a regular file of at most 16 MB");
            var trials = JsonSerializer.Deserialize<List<Cluster.SweepTrialRequest>>(File.ReadAllText(file), RunRecord.Json);
            if (trials is null || i >= trials.Count || trials[i] is not { Sets: not null, Trial: not null } trial)
                throw new InvalidDataException($"has no trial {i}");
            return trial;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or InvalidDataException)
        {
            stderr.WriteLine($"error: --trial-of {file}: {e.Message}");
            return null;
        }
    }

    /// <summary>Plans every trial: null when all plan, else exit 2 after one line naming the trial and the problem.</summary>
    internal static int? PlanTrials(IReadOnlyList<FlowRequest> trials, TextWriter stderr)
    {
        var hasher = new InputFileHasher(Path.Combine(Path.GetFullPath(trials[0].Artifacts), "cache"));
        foreach (var trial in trials)
        {
            var t = trial.Trial!;
            try
            {
                var sets = SetOptions.Parse(trial.Sets ?? []);
                FlowPlanner.Plan(FlowScriptHost.Load(trial.FlowPath, sets.Flow), sets.Stages, hasher);
            }
            catch (Exception e) when (e is FlowDefinitionException or FerDataException or FileNotFoundException or NotARegularFileException)
            {
                var message = e.Message.StartsWith("--set ", StringComparison.Ordinal) ? "--sweep " + e.Message[6..] : e.Message;
                stderr.WriteLine($"error: sweep trial {t.Trial} of {t.Trials} ({Values(t)}): {message}");
                return ExitCodes.BadInput;
            }
        }
        return null;
    }

    /// <summary>One run request per trial of the sweep: the request's --set values, then the trial's.</summary>
    internal static IReadOnlyList<FlowRequest> SweepRequests(FlowRequest request, Sweep sweep, string? id = null)
    {
        var trials = sweep.Trials();
        id ??= Sweep.NewId();
        return [.. trials.Select((values, i) => request with
        {
            Sets = [.. request.Sets ?? [], .. values.Select(v => $"{v.Key}={v.Value}")],
            Sweeps = [],
            Trial = new SweepTrial(id, i + 1, trials.Count, new SortedDictionary<string, string>(values.ToDictionary(v => v.Key, v => v.Value), StringComparer.Ordinal)),
        })];
    }

    private static string Values(SweepTrial t) => string.Join(", ", t.Values.Select(kv => $"{kv.Key}={kv.Value}"));

    /// <summary>What is wrong with a --wait value, or null; every command that waits for the artifacts folder checks it.</summary>
    internal static string? WaitProblem(double seconds) =>
        double.IsFinite(seconds) && seconds >= 0 && seconds <= MaxWaitSeconds ? null
            : $"--wait {seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}: give seconds from 0 to {MaxWaitSeconds}";

    internal static string? CheckOptions(FlowRequest r)
    {
        if (ArtifactsProblem(r.Artifacts) is { } artifacts) return artifacts;
        if (WaitProblem(r.WaitSeconds) is { } wait) return wait;
        if (r.Parallel < 1) return $"--parallel {r.Parallel}: give 1 or more nodes at once";
        if (DeviceChoice.Problem(r.Device) is { } device) return device;
        if (string.IsNullOrWhiteSpace(r.FlowPath)) return "give a flow script, e.g. flows/quickstart.fsx";
        return null;
    }

    /// <summary>A week: long enough for any run to finish, short enough for TimeSpan.</summary>
    public const double MaxWaitSeconds = 7 * 24 * 3600;

    public static int ListStages(FlowRequest request, TextWriter stdout, TextWriter stderr, bool json = false)
    {
        if (CheckOptions(request) is { } bad) { stderr.WriteLine($"error: {bad}"); return ExitCodes.BadInput; }
        try
        {
            var sets = SetOptions.Parse(request.Sets ?? []);
            var flow = FlowScriptHost.Load(request.FlowPath, sets.Flow);
            var cache = new StageCache(Path.Combine(Path.GetFullPath(request.Artifacts), "cache"));
            var plan = FlowPlanner.Plan(flow, sets.Stages, new InputFileHasher(cache.Root));
            var rows = plan.Nodes.Select(p => (p.Name, p.Kind, p.Fingerprint, p.Producers, Status: p.Stage.Volatile ? "volatile" : cache.Lookup(p.Name, p.Fingerprint).Status switch
            {
                CacheStatus.Hit => "cached", CacheStatus.Stale => "stale", CacheStatus.Corrupt => "damaged", _ => "missing",
            })).ToList();
            if (json)
            {
                stdout.WriteLine(System.Text.Json.JsonSerializer.Serialize(rows.Select(r => new
                    { stage = r.Name, kind = r.Kind, fingerprint = r.Fingerprint, status = r.Status, inputs = r.Producers }), AuditCommands.JsonOut));
                return ExitCodes.Ok;
            }
            var table = ConsoleTables.Create(stdout, "stage", "kind", "fingerprint", "status", "inputs");
            foreach (var r in rows) table.AddTextRow(r.Name, r.Kind, Hashing.Short(r.Fingerprint), r.Status, string.Join(", ", r.Producers));
            ConsoleTables.Write(stdout, table);
            return ExitCodes.Ok;
        }
        catch (Exception e) when (e is FlowDefinitionException or FerDataException or FileNotFoundException or NotARegularFileException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
    }

    /// <summary>The command as typed, so pasting it reruns the same run (values with spaces or quotes are quoted).</summary>
    private static string CommandLine(FlowRequest r) =>
        // Relative paths (the flow, --artifacts, files in --set) mean what they meant in this folder: go there first.
        $"cd {Quote(Environment.CurrentDirectory)} && " + string.Join(' ', new[] { "fer" }.Concat(Arguments(r)).Select(Quote));

    /// <summary>The arguments of `fer` that make this request (a cluster job's command line is made from them too).</summary>
    internal static List<string> Arguments(FlowRequest r)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var parts = new List<string> { "run", r.FlowPath };
        foreach (var s in r.Sets ?? []) parts.AddRange(["--set", s]);
        if (r.Mode is RunMode.From or RunMode.Only) parts.AddRange([r.Mode == RunMode.From ? "--from" : "--only", r.Target ?? ""]);
        if (r.JobOf is { } run) parts.AddRange(["--only", r.Target ?? "", "--job-of", run]);
        parts.AddRange(["--device", r.Device, "--artifacts", r.Artifacts]);
        if (r.WaitSeconds > 0) parts.AddRange(["--wait", r.WaitSeconds.ToString(inv)]);
        if (r.Parallel != 1) parts.AddRange(["--parallel", r.Parallel.ToString(inv)]);
        foreach (var s in r.Sweeps) parts.AddRange(["--sweep", s]);
        if (r.Executor != "local")
        {
            parts.AddRange(["--executor", r.Executor]);
            if (r.Slurm.Partition is { } p) parts.AddRange(["--slurm-partition", p]);
            if (r.Slurm.Gres is { } g) parts.AddRange(["--slurm-gres", g]);
            if (r.Slurm.Time is { } t) parts.AddRange(["--slurm-time", t]);
            if (r.Slurm.Cpus is { } c) parts.AddRange(["--slurm-cpus", c.ToString(inv)]);
            foreach (var a in r.Slurm.Extra) parts.AddRange(["--slurm-arg", a]);
        }
        return parts;
    }

    internal static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? arg : "'" + arg.Replace("'", "'\\''") + "'";
}
