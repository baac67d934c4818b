using System.Diagnostics;
using System.Text.Json;
using Fer.Flow.Cache;
using Fer.Flow.Cli;
using Fer.Flow.Logging;
using Fer.Flow.Pipeline;
using Serilog;

namespace Fer.Flow.Cluster;

/// <summary>
/// The files of one node's job in its run folder: jobs/NODE.sh (the batch script), NODE.out (Slurm's output), NODE.clef
/// (its log events, each with Node, Host and SlurmJobId) and NODE.json (its record: the node's report and how it ended).
/// </summary>
public sealed record SlurmJob(string Node)
{
    public const string Folder = "jobs";

    public static SlurmJob Of(string node) => new(node);

    public string Dir(string runDir) => Path.Combine(runDir, Folder);
    public string ScriptPath(string runDir) => Path.Combine(Dir(runDir), Node + ".sh");
    public string OutputPath(string runDir) => Path.Combine(Dir(runDir), Node + ".out");
    public string LogPath(string runDir) => Path.Combine(Dir(runDir), Node + ".clef");
    public string RecordPath(string runDir) => Path.Combine(Dir(runDir), Node + ".json");

    /// <summary>What every event of the job carries: its node, host and Slurm job id (array jobs: ID_TASK).</summary>
    public IReadOnlyDictionary<string, string> Properties() => new Dictionary<string, string>
    {
        ["Node"] = Node,
        ["Host"] = Environment.MachineName,
        ["SlurmJobId"] = CurrentJobId() ?? "none",
    };

    public static string? CurrentJobId() =>
        Environment.GetEnvironmentVariable("SLURM_ARRAY_JOB_ID") is { Length: > 0 } array && Environment.GetEnvironmentVariable("SLURM_ARRAY_TASK_ID") is { Length: > 0 } task
            ? $"{array}_{task}" : Environment.GetEnvironmentVariable("SLURM_JOB_ID");
}

/// <summary>
/// Runs a flow on Slurm: each node not cached is a job (`fer run FLOW --only NODE --job-of RUN`) submitted with sbatch,
/// depending (afterok) on the jobs of its inputs, so members train in parallel where the cluster has room. The artifacts
/// folder is the shared file system: jobs take the cache's per-entry locks. This process, the coordinator, polls squeue,
/// logs each job's queue wait and run time, and on a failed job cancels the rest and names the node, job id and output.
/// Ctrl-C cancels the run's jobs. A sweep on Slurm is one job array, each task running one trial on its node.
/// </summary>
public sealed class SlurmExecutor(FlowRequest request, FlowDefinition flow, SetOptions sets, FlowPlan plan, TextWriter stderr)
{
    /// <summary>How often squeue is asked (FER_SLURM_POLL_SECONDS overrides; tests use less).</summary>
    internal static TimeSpan PollInterval =>
        double.TryParse(Environment.GetEnvironmentVariable("FER_SLURM_POLL_SECONDS"), System.Globalization.NumberStyles.Float,
            System.Globalization.CultureInfo.InvariantCulture, out var s) && s is > 0 and <= 60 ? TimeSpan.FromSeconds(s) : TimeSpan.FromSeconds(2);

    /// <summary>Why FER_SLURM_POLL_SECONDS, when set, is not a poll interval (null when it is or is unset).</summary>
    internal static string? PollIntervalProblem() =>
        Environment.GetEnvironmentVariable("FER_SLURM_POLL_SECONDS") is not { Length: > 0 } text
        || double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var s) && s is > 0 and <= 60
            ? null
            : $"FER_SLURM_POLL_SECONDS={Fer.Core.Storage.SafeText.Terminal(text.Length > 40 ? text[..40] + "..." : text)}: give seconds above 0 and at most 60 (or unset it: 2 s)";

    /// <summary>A job Slurm stops reporting (aged out of squeue) with no record of its end is lost after this long.</summary>
    private static readonly TimeSpan LostAfter = TimeSpan.FromSeconds(30);

    public async Task<int> RunAsync(CancellationToken ct)
    {
        if (CheckCluster(request, stderr) is { } bad) return bad;
        if (request.Mode != RunMode.Default)
        {
            stderr.WriteLine("error: --executor slurm runs the whole flow (what is cached is not submitted); --from and --only run on this machine");
            return ExitCodes.BadInput;
        }
        var artifacts = Path.GetFullPath(request.Artifacts);
        var runId = FlowCommand.NewRunId();
        var runDir = Path.Combine(artifacts, "runs", runId);
        ArtifactsLock artifactsLock;
        try { artifactsLock = ArtifactsLock.Acquire(artifacts, $"fer run {Path.GetFileName(request.FlowPath)} (slurm)", TimeSpan.FromSeconds(request.WaitSeconds)); }
        catch (ArtifactsBusyException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.Busy; }
        catch (ArtifactsUnusableException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.BadInput; }
        using var _ = artifactsLock;
        FileStream runningLock;
        try
        {
            Directory.CreateDirectory(Path.Combine(runDir, SlurmJob.Folder));
            runningLock = new FileStream(Path.Combine(runDir, RunRecord.RunningLockFileName), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: cannot write the run folder {runDir}: {e.Message} (is the artifacts folder read-only or the disk full?)");
            return ExitCodes.Failed;
        }
        using var __ = runningLock;
        var cache = new StageCache(Path.Combine(artifacts, "cache"));
        var log = RunLog.Create(runDir, runId, flow.Name, request.Console,
            properties: new Dictionary<string, string> { ["Node"] = "coordinator", ["Host"] = Environment.MachineName });
        var record = FlowCommand.NewRecord(request, runId, flow, sets, plan);
        var client = new SlurmClient();
        var jobs = new List<Submitted>();
        var clock = Stopwatch.StartNew();
        try
        {
            record.Write(runDir);
            log.Information("Run {RunId} of flow {Flow} on Slurm: {Nodes} stages, resources {Resources}", runId, flow.Name, plan.Nodes.Count,
                string.Join(" ", request.Slurm.Arguments()));
            jobs = Submit(client, cache, runDir, runId, log);
            var failed = await WaitAsync(client, jobs, runDir, log, ct);
            record = record with { Stages = Reports(cache, runDir, jobs), FinishedUtc = DateTime.UtcNow };
            if (failed is not null)
            {
                var message = $"stage {failed.Node} failed on Slurm (job {failed.JobId}, {failed.Last?.State ?? "lost"}{(failed.Last?.Reason is { Length: > 0 } r && r != "None" ? ", " + r : "")}); its output: {SlurmJob.Of(failed.Node).OutputPath(runDir)}";
                record = record with { Status = RunStatus.Failed, Error = message, FailedStage = failed.Node };
                log.Error("Run {RunId} failed in stage {FailedStage}: {Error}", runId, failed.Node, message);
                stderr.WriteLine($"error: {message}");
                return ExitCodes.Failed;
            }
            record = record with { Status = RunStatus.Finished };
            log.Information("Run {RunId} finished on Slurm in {Seconds:0.0} s: {Jobs} jobs, {Cached} stages cached; outputs in {RunDir}",
                runId, clock.Elapsed.TotalSeconds, jobs.Count, plan.Nodes.Count - jobs.Count, runDir);
            return ExitCodes.Ok;
        }
        catch (OperationCanceledException)
        {
            var open = jobs.Where(j => !j.Done).Select(j => j.JobId).ToList();
            Cancel(client, jobs, log);
            record = record with { Status = RunStatus.Cancelled, Error = "cancelled", FinishedUtc = DateTime.UtcNow, Stages = Reports(cache, runDir, jobs) };
            stderr.WriteLine(open.Count == 0 ? "error: cancelled" : $"error: cancelled; the run's unfinished Slurm jobs ({string.Join(", ", open)}) were cancelled");
            return ExitCodes.Cancelled;
        }
        catch (SlurmException e)
        {
            Cancel(client, jobs, log);
            record = record with { Status = RunStatus.Failed, Error = e.Message, FinishedUtc = DateTime.UtcNow };
            log.Error(e, "Run {RunId} failed: {Error}", runId, e.Message);
            stderr.WriteLine($"error: {e.Message}");
            return ExitCodes.Failed;
        }
        finally
        {
            try { record.Write(runDir); RunRecord.WriteMetrics(runDir, record.Stages); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { stderr.WriteLine($"error: cannot write the record of run {runId}: {e.Message}"); }
            await log.DisposeAsync();
            MergeLogs(runDir);
        }
    }

    /// <summary>sbatch on PATH and the partition asked for known to the cluster; else one line and exit 2.</summary>
    internal static int? CheckCluster(FlowRequest request, TextWriter stderr)
    {
        if (PollIntervalProblem() is { } poll) { stderr.WriteLine($"error: {poll}"); return ExitCodes.BadInput; }
        if (SlurmClient.Missing() is { } why) { stderr.WriteLine($"error: {why}"); return ExitCodes.BadInput; }
        if (request.Slurm.Partition is not { } partition) return null;
        IReadOnlyList<string> partitions;
        try { partitions = new SlurmClient().Partitions(); }
        catch (SlurmException e) { stderr.WriteLine($"error: cannot ask Slurm for its partitions: {e.Message}"); return ExitCodes.BadInput; }
        if (partitions.Contains(partition)) return null;
        stderr.WriteLine($"error: --slurm-partition {partition}: the cluster has no such partition; its partitions: {string.Join(", ", partitions)}");
        return ExitCodes.BadInput;
    }

    /// <summary>A submitted job: its node, id, the jobs it waits for and the last state seen.</summary>
    private sealed class Submitted(string node, string jobId)
    {
        public string Node { get; } = node;
        public string JobId { get; } = jobId;
        public SlurmJobState? Last { get; set; }
        public bool Started { get; set; }
        public DateTime? MissingSince { get; set; }
        public bool Done => Last?.Finished == true;
    }

    /// <summary>One job per node not cached (the report, volatile, always), in dependency order.</summary>
    private List<Submitted> Submit(SlurmClient client, StageCache cache, string runDir, string runId, ILogger log)
    {
        var jobs = new List<Submitted>();
        var byNode = new Dictionary<string, Submitted>(StringComparer.Ordinal);
        foreach (var node in plan.Nodes)
        {
            if (!node.Stage.Volatile && cache.Lookup(node.Name, node.Fingerprint, verifyFiles: false).Status == CacheStatus.Hit)
            {
                log.Information("Stage {Stage} is cached ({Fingerprint}): not submitted", node.Name, Hashing.Short(node.Fingerprint));
                continue;
            }
            var job = SlurmJob.Of(node.Name);
            var script = job.ScriptPath(runDir);
            var arguments = FlowCommand.Arguments(request with
            {
                FlowPath = Path.GetFullPath(request.FlowPath), Artifacts = Path.GetFullPath(request.Artifacts), Mode = RunMode.Node,
                Target = node.Name, JobOf = runId, Executor = "local", Sweeps = [], Trial = null, Parallel = 1, WaitSeconds = 600,
            });
            WriteScript(script, arguments);
            var waitFor = node.Producers.Where(byNode.ContainsKey).Select(p => byNode[p].JobId).ToList();
            var sbatch = new List<string>
            {
                $"--job-name=fer-{node.Name}", $"--output={job.OutputPath(runDir)}", $"--chdir={Environment.CurrentDirectory}",
                "--kill-on-invalid-dep=yes",
            };
            if (waitFor.Count > 0) sbatch.Add($"--dependency=afterok:{string.Join(":", waitFor)}");
            sbatch.AddRange(request.Slurm.Arguments());
            sbatch.AddRange(node.Spec.SlurmArguments);
            var id = client.Submit(script, sbatch);
            var submitted = new Submitted(node.Name, id);
            jobs.Add(submitted);
            byNode[node.Name] = submitted;
            log.Information("Submitted stage {Stage} as Slurm job {SlurmJobId}{Dependency}", node.Name, id,
                waitFor.Count > 0 ? $" after job {string.Join(", ", waitFor)}" : "");
        }
        return jobs;
    }

    /// <summary>The shell script of a job: the fer command that computes its node (this very fer, by absolute path).</summary>
    internal static void WriteScript(string path, IReadOnlyList<string> ferArguments, string? preamble = null)
    {
        var command = string.Join(' ', FerCommand().Concat(ferArguments).Select(FlowCommand.Quote));
        var text = $"#!/bin/sh\n# Written by fer for Slurm: the command computes one node (or one sweep trial).\n{preamble}exec {command}\n";
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
    }

    /// <summary>This fer: its apphost beside fer.dll, else `dotnet fer.dll`.</summary>
    private static IEnumerable<string> FerCommand()
    {
        var dll = typeof(FlowCommand).Assembly.Location;
        var apphost = Path.Combine(Path.GetDirectoryName(dll)!, Path.GetFileNameWithoutExtension(dll));
        if (File.Exists(apphost)) return [apphost];
        var host = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        return [host, dll];
    }

    /// <summary>Polls until every job has finished or one failed (then the others are cancelled); the failed job, or null.</summary>
    private static async Task<Submitted?> WaitAsync(SlurmClient client, List<Submitted> jobs, string runDir, ILogger log, CancellationToken ct)
    {
        while (jobs.Any(j => !j.Done))
        {
            await Task.Delay(PollInterval, ct);
            var states = client.Query(jobs.Where(j => !j.Done).Select(j => j.JobId)).ToDictionary(s => s.Id, StringComparer.Ordinal);
            foreach (var job in jobs.Where(j => !j.Done))
            {
                if (!states.TryGetValue(job.JobId, out var state))
                {
                    // Aged out of squeue before we saw its end: its record says how it ended.
                    job.MissingSince ??= DateTime.UtcNow;
                    if (RunRecord.TryReadFile(SlurmJob.Of(job.Node).RecordPath(runDir)) is { Status: RunStatus.Finished or RunStatus.Failed or RunStatus.Cancelled } r)
                        state = new SlurmJobState(job.JobId, r.Status == RunStatus.Finished ? "COMPLETED" : "FAILED", "", "", null, r.StartedUtc, r.FinishedUtc);
                    else if (DateTime.UtcNow - job.MissingSince > LostAfter)
                        state = new SlurmJobState(job.JobId, "LOST", "Slurm no longer knows the job", "", null, null, null);
                    else continue;
                }
                job.Last = state;
                if (!job.Started && state.Started is { } started && state.State != "PENDING")
                {
                    job.Started = true;
                    log.Information("Slurm job {SlurmJobId} of stage {Stage} started on {Host} after {QueueSeconds:0.0} s in the queue",
                        job.JobId, job.Node, state.Node, state.Submitted is { } s ? (started - s).TotalSeconds : 0);
                }
                if (!state.Finished && state.State != "LOST") continue;
                log.Information("Slurm job {SlurmJobId} ran stage {Stage} on {Host}: {JobState}, {QueueSeconds:0.0} s in the queue, {Seconds:0.0} s running",
                    job.JobId, job.Node, state.Node, state.State,
                    state.Started is { } a && state.Submitted is { } b ? (a - b).TotalSeconds : 0,
                    state.Ended is { } e && state.Started is { } f ? (e - f).TotalSeconds : 0);
                if (!state.Succeeded)
                {
                    Cancel(client, jobs, log);
                    return job;
                }
            }
        }
        return null;
    }

    private static void Cancel(SlurmClient client, List<Submitted> jobs, ILogger log)
    {
        var open = jobs.Where(j => !j.Done).Select(j => j.JobId).ToList();
        if (open.Count == 0) return;
        try
        {
            client.Cancel(open);
            log.Warning("Cancelled Slurm jobs {SlurmJobIds}", string.Join(", ", open));
        }
        catch (SlurmException e) { log.Error("Could not cancel Slurm jobs {SlurmJobIds}: {Error}", string.Join(", ", open), e.Message); }
    }

    /// <summary>Each node's report: from its job's record, or, for a node that was cached, from its entry.</summary>
    private List<StageReport> Reports(StageCache cache, string runDir, List<Submitted> jobs)
    {
        var submitted = jobs.Select(j => j.Node).ToHashSet(StringComparer.Ordinal);
        var reports = new List<StageReport>();
        foreach (var node in plan.Nodes)
        {
            if (submitted.Contains(node.Name))
            {
                if (RunRecord.TryReadFile(SlurmJob.Of(node.Name).RecordPath(runDir)) is { } job)
                    reports.AddRange(job.Stages.Where(s => s.Stage == node.Name));
                continue;
            }
            var lookup = cache.Lookup(node.Name, node.Fingerprint, verifyFiles: false);
            if (lookup.Status != CacheStatus.Hit) continue;
            object? output = null;
            try { output = OutputStore.Read(node.Stage.OutputType, lookup.Dir); }
            catch (Exception e) when (e is InvalidDataException or IOException) { }
            FlowRunner.PublishInto(lookup.Dir, runDir); // as a local run's cache hits are
            reports.Add(StageReport.With(new StageReport(node.Name, node.Kind, node.Fingerprint, StageOutcome.Hit, 0, lookup.Manifest!.Rows),
                (output as IHasMetrics)?.Metrics));
        }
        return reports;
    }

    /// <summary>One CLEF log per run: the coordinator's events and every job's, in time order (written whole, then renamed).</summary>
    internal static void MergeLogs(string runDir)
    {
        var files = new[] { Path.Combine(runDir, RunLog.FileName) }
            .Concat(Directory.Exists(Path.Combine(runDir, SlurmJob.Folder)) ? Directory.EnumerateFiles(Path.Combine(runDir, SlurmJob.Folder), "*.clef") : []);
        var lines = new List<(DateTimeOffset At, int Order, string Line)>();
        int order = 0;
        foreach (var file in files.Where(File.Exists))
            foreach (var line in File.ReadLines(file))
            {
                if (line.Length == 0) continue;
                DateTimeOffset at = DateTimeOffset.MinValue;
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    if (doc.RootElement.TryGetProperty("@t", out var t) && t.TryGetDateTimeOffset(out var parsed)) at = parsed;
                }
                catch (JsonException) { }
                lines.Add((at, order++, line));
            }
        var path = Path.Combine(runDir, RunLog.FileName);
        var tmp = path + ".merge.tmp";
        File.WriteAllLines(tmp, lines.OrderBy(l => l.At).ThenBy(l => l.Order).Select(l => l.Line));
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>
    /// A sweep on Slurm: one job array of a task per trial, each running its trial (a whole flow, on its node) with
    /// --trial-of the sweep file and the task's index. Trials are planned first, as locally.
    /// </summary>
    public static async Task<int> RunSweepAsync(FlowRequest request, Sweep sweep, TextWriter stderr, CancellationToken ct)
    {
        if (CheckCluster(request, stderr) is { } bad) return bad;
        var artifacts = Path.GetFullPath(request.Artifacts);
        var local = request with { Executor = "local", FlowPath = Path.GetFullPath(request.FlowPath), Artifacts = artifacts };
        var trials = FlowCommand.SweepRequests(local, sweep);
        if (FlowCommand.PlanTrials(trials, stderr) is { } invalid) return invalid;
        var id = trials[0].Trial!.Id;
        var sweepDir = Path.Combine(artifacts, "sweeps", id);
        Directory.CreateDirectory(sweepDir);
        var file = Path.Combine(sweepDir, "trials.json");
        File.WriteAllText(file + ".tmp", JsonSerializer.Serialize(trials.Select(t => new SweepTrialRequest(t.Sets ?? [], t.Trial!)).ToList(), RunRecord.Json));
        File.Move(file + ".tmp", file, overwrite: true);
        var script = Path.Combine(sweepDir, "trial.sh");
        WriteScript(script, FlowCommand.Arguments(local with { Sweeps = [] }).Concat(["--trial-of", file]).ToList());
        var client = new SlurmClient();
        string arrayId;
        try
        {
            arrayId = client.Submit(script, [$"--job-name=fer-{id}", $"--array=0-{trials.Count - 1}", $"--output={Path.Combine(sweepDir, "trial-%a.out")}",
                $"--chdir={Environment.CurrentDirectory}", .. request.Slurm.Arguments()]);
        }
        catch (SlurmException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.Failed; }
        var tasks = Enumerable.Range(0, trials.Count).Select(i => $"{arrayId}_{i}").ToList();
        var finished = new Dictionary<string, SlurmJobState>(StringComparer.Ordinal);
        try
        {
            while (finished.Count < tasks.Count)
            {
                await Task.Delay(PollInterval, ct);
                // squeue lists a pending array as one line (ID_[0-3]); tasks appear as they start.
                foreach (var s in client.Query([arrayId]).Where(s => s.Finished && tasks.Contains(s.Id))) finished[s.Id] = s;
                if (finished.Values.FirstOrDefault(s => !s.Succeeded) is { } failed)
                {
                    client.Cancel([arrayId]);
                    int index = int.Parse(failed.Id[(failed.Id.IndexOf('_') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
                    var t = trials[index].Trial!;
                    stderr.WriteLine($"error: sweep {id} trial {t.Trial} of {t.Trials} ({string.Join(", ", t.Values.Select(kv => $"{kv.Key}={kv.Value}"))}) failed on Slurm " +
                                     $"(job {failed.Id}, {failed.State}); its output: {Path.Combine(sweepDir, $"trial-{index}.out")}");
                    return ExitCodes.Failed;
                }
            }
        }
        catch (OperationCanceledException)
        {
            try { client.Cancel([arrayId]); } catch (SlurmException) { }
            stderr.WriteLine($"error: cancelled; the sweep's job array {arrayId} was cancelled");
            return ExitCodes.Cancelled;
        }
        catch (SlurmException e) { stderr.WriteLine($"error: {e.Message}"); return ExitCodes.Failed; }
        if (request.Console) Console.WriteLine($"sweep {id}: {trials.Count} trials finished as job array {arrayId}; fer compare {id} --out sweep.html shows them side by side");
        return ExitCodes.Ok;
    }
}

/// <summary>One trial of a sweep as its array task reads it: the --set values and the trial it is.</summary>
public sealed record SweepTrialRequest(IReadOnlyList<string> Sets, SweepTrial Trial);
