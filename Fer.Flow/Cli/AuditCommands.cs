using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Fer.Core.Storage;
using Fer.Flow.Audit;
using Fer.Flow.Cache;
using Fer.Flow.Logging;
using Fer.Flow.Pipeline;
using Serilog.Events;

namespace Fer.Flow.Cli;

/// <summary>`fer runs` and `fer logs`: audit what ran, with which data and parameters, and what failed where.</summary>
public static class AuditCommands
{
    public static Command Runs(Option<string> artifactsOption)
    {
        var producedOption = new Option<string?>("--produced") { Description = "Show the run whose predictions.csv is this file (by content)" };
        var jsonOption = new Option<bool>("--json") { Description = "The list as JSON" };
        var command = new Command("runs", "List runs: id, flow, start, duration, status, ensemble validation accuracy");
        command.Options.Add(artifactsOption);
        command.Options.Add(producedOption);
        command.Options.Add(jsonOption);
        command.SetAction(parse => ListRuns(parse.GetValue(artifactsOption)!, parse.GetValue(producedOption), Console.Out, Console.Error, parse.GetValue(jsonOption)));
        command.Subcommands.Add(RunsDiffCommand.Create(artifactsOption));
        return command;
    }

    public static Command Logs(Option<string> artifactsOption)
    {
        var runArgument = new Argument<string?>("run") { Description = "Run id (or a unique prefix), or latest", DefaultValueFactory = _ => "latest" };
        var stageOption = new Option<string?>("--stage") { Description = "Only events of this stage" };
        var levelOption = new Option<string?>("--level") { Description = "Minimum level: debug, information, warning, error" };
        var grepOption = new Option<string?>("--grep") { Description = "Only events whose message or properties contain this text" };
        var whereOption = new Option<string?>("--where") { Description = "Only events matching this Serilog expression, e.g. \"Stage = 'ingest' and @l = 'Warning'\"" };
        var jsonOption = new Option<bool>("--json") { Description = "Print the raw compact JSON lines (with --summary: the summary as JSON)" };
        var summaryOption = new Option<bool>("--summary") { Description = "Per stage duration, cache status and rows; per model epochs and best validation accuracy" };
        var command = new Command("logs", "Show a run's log events, filtered");
        command.Arguments.Add(runArgument);
        foreach (var o in new Option[] { artifactsOption, stageOption, levelOption, grepOption, whereOption, jsonOption, summaryOption }) command.Options.Add(o);
        command.SetAction(parse => ShowLogs(new LogQuery(parse.GetValue(artifactsOption)!, parse.GetValue(runArgument), parse.GetValue(stageOption),
            parse.GetValue(levelOption), parse.GetValue(grepOption), parse.GetValue(jsonOption), parse.GetValue(summaryOption))
            { Where = parse.GetValue(whereOption) }, Console.Out, Console.Error));
        return command;
    }

    public static int ListRuns(string artifacts, string? produced, TextWriter stdout, TextWriter stderr, bool json = false)
    {
        if (FlowCommand.ArtifactsProblem(artifacts) is { } bad) { stderr.WriteLine($"error: {bad}"); return ExitCodes.BadInput; }
        var runs = RunCatalog.List(artifacts);
        if (produced is not null)
        {
            var kind = Fer.Core.Storage.FileStat.Of(produced).Kind;
            if (kind != Fer.Core.Storage.FileKind.Regular) { stderr.WriteLine($"error: {produced}: {Fer.Core.Storage.FileStat.Describe(kind)}"); return ExitCodes.BadInput; }
            var sha = Hashing.FileSha256Hex(produced);
            var match = runs.LastOrDefault(r => Path.Combine(r.Dir, "predictions.csv") is var p
                && Fer.Core.Storage.FileStat.Of(p).Kind == Fer.Core.Storage.FileKind.Regular && Hashing.FileSha256Hex(p) == sha);
            if (match is null) { stderr.WriteLine($"error: no run in {artifacts} produced {produced}"); return ExitCodes.Failed; }
            Describe(match, stdout);
            return ExitCodes.Ok;
        }
        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(runs.Select(r => new
            {
                run = r.RunId, flow = r.Flow, started_utc = r.StartedUtc, duration_seconds = r.Duration?.TotalSeconds, status = r.Status.Text(),
                ensemble_valid_accuracy = r.EnsembleValidAccuracy,
                sweep = r.Record?.Sweep is { } s ? new { id = s.Id, trial = s.Trial, trials = s.Trials, values = s.Values } : null,
            }), JsonOut));
            return ExitCodes.Ok;
        }
        // A sweep's trials as one group: together, in trial order, where its first trial started.
        bool sweeps = runs.Any(r => r.Record?.Sweep is not null);
        var table = sweeps
            ? ConsoleTables.Create(stdout, "!run", "flow", "!started (UTC)", ">duration", "status", ">valid acc", "sweep", "trial")
            : ConsoleTables.Create(stdout, "!run", "flow", "!started (UTC)", ">duration", "status", ">valid acc");
        var ordered = runs.Select((r, i) => (r, i)).GroupBy(x => x.r.Record?.Sweep?.Id ?? $"\0{x.i}")
            .OrderBy(g => g.Min(x => x.i)).SelectMany(g => g.OrderBy(x => x.r.Record?.Sweep?.Trial ?? 0).Select(x => x.r));
        foreach (var r in ordered)
        {
            string[] cells = [r.RunId, r.Flow, r.StartedUtc?.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "?",
                r.Duration is { } d ? $"{d.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)}s" : "-", r.Status.Text(),
                r.EnsembleValidAccuracy is { } a ? a.ToString("0.0000", CultureInfo.InvariantCulture) : "-"];
            if (sweeps)
                cells = [.. cells, r.Record?.Sweep?.Id ?? "", r.Record?.Sweep is { } s ? $"{s.Trial}/{s.Trials} {string.Join(" ", s.Values.Select(kv => $"{kv.Key}={kv.Value}"))}" : ""];
            table.AddTextRow(cells);
        }
        ConsoleTables.Write(stdout, table);
        return ExitCodes.Ok;
    }

    /// <summary>Everything needed to say which data and parameters made a run's outputs.</summary>
    public static void Describe(RunSummary r, TextWriter stdout)
    {
        stdout.WriteLine(SafeText.Terminal($"run       {r.RunId} ({r.Status.Text()})"));
        stdout.WriteLine(SafeText.Terminal($"folder    {r.Dir}"));
        if (r.Record is { } rec)
        {
            stdout.WriteLine(SafeText.Terminal($"command   {rec.Command}"));
            stdout.WriteLine(SafeText.Terminal($"script    {rec.Script}"));
            stdout.WriteLine(SafeText.Terminal($"started   {rec.StartedUtc:O}; device {rec.Device}; versions {string.Join(", ", rec.Versions.Select(kv => $"{kv.Key} {kv.Value}"))}"));
            stdout.WriteLine(SafeText.Terminal($"params    {string.Join(", ", rec.Parameters.Select(kv => $"{kv.Key}={kv.Value}"))}"));
            if (rec.Sets.Count > 0) stdout.WriteLine(SafeText.Terminal($"sets      {string.Join(", ", rec.Sets.Select(kv => $"{kv.Key}={kv.Value}"))}"));
            if (rec.Error is not null) stdout.WriteLine(SafeText.Terminal($"error     {rec.FailedStage}: {rec.Error}"));
        }
        if (r.Record?.MetricsOf<Fer.Flow.Stages.DataMetrics>().Select(m => m.Metrics).FirstOrDefault() is { } data)
            stdout.WriteLine(SafeText.Terminal($"data      {data.Source} {string.Join(", ", data.Files.Select(f => $"{f.Path} sha256 {f.Sha256}"))}"));
    }

    /// <summary>Limits on a --where expression (what a person types is far shorter and flatter).</summary>
    public const int MaxWhereChars = 1000, MaxWhereNesting = 32;

    private static int NestingDepth(string expression)
    {
        int depth = 0, deepest = 0;
        foreach (var c in expression)
        {
            if (c is '(' or '[' or '{') deepest = Math.Max(deepest, ++depth);
            else if (c is ')' or ']' or '}') depth = Math.Max(0, depth - 1);
        }
        return deepest;
    }

    public sealed record LogQuery(string Artifacts, string? Run, string? Stage, string? Level, string? Grep, bool Json, bool Summary)
    {
        /// <summary>A Serilog.Expressions filter (the language of Serilog's own filters: properties, @l, @m, @x, like, ci).</summary>
        public string? Where { get; init; }
    }

    public static int ShowLogs(LogQuery q, TextWriter stdout, TextWriter stderr)
    {
        RunSummary run;
        LogEventLevel minLevel;
        Serilog.Expressions.CompiledExpression? where = null;
        try
        {
            if (string.IsNullOrWhiteSpace(q.Artifacts)) throw new ArgumentException("--artifacts: give a folder (it is empty)");
            // Serilog.Expressions parses recursively: a very long or deeply nested expression would overflow the stack.
            if (q.Where is { Length: > MaxWhereChars }) throw new ArgumentException($"--where: {q.Where.Length} characters, at most {MaxWhereChars}");
            if (q.Where is not null && NestingDepth(q.Where) > MaxWhereNesting)
                throw new ArgumentException($"--where: brackets nested {NestingDepth(q.Where)} deep, at most {MaxWhereNesting}");
            if (q.Where is not null && !Serilog.Expressions.SerilogExpression.TryCompile(q.Where, out where, out var whereError))
                throw new ArgumentException($"--where {q.Where}: {whereError}");
            run = RunCatalog.Resolve(q.Artifacts, q.Run);
            minLevel = q.Level is null ? LogEventLevel.Verbose : ClefEvent.ParseLevel(q.Level);
        }
        catch (Exception e) when (e is FlowDefinitionException or ArgumentException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
        var path = Path.Combine(run.Dir, RunLog.FileName);
        var kind = Fer.Core.Storage.FileStat.Of(path).Kind;
        if (kind == Fer.Core.Storage.FileKind.Missing) { stderr.WriteLine($"error: {path}: no log"); return ExitCodes.Failed; }
        if (kind != Fer.Core.Storage.FileKind.Regular) { stderr.WriteLine($"error: {path}: {Fer.Core.Storage.FileStat.Describe(kind)}"); return ExitCodes.BadInput; }
        ClefLog log;
        try { log = ClefLog.Read(path); }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
        if (log.FirstMalformed is { } bad)
            stderr.WriteLine($"note: skipped {log.MalformedLines} line{(log.MalformedLines == 1 ? "" : "s")} of {path} that {(log.MalformedLines == 1 ? "is" : "are")} not CLEF events (first: line {bad.Line}, {bad.Problem})");
        if (q.Summary) { Summarize(run, log, stdout, q.Json); return ExitCodes.Ok; }

        var events = Filter(log.Events, q.Stage, minLevel, q.Grep);
        if (where is not null) events = events.Where(e => Serilog.Expressions.ExpressionResult.IsTrue(where(e.ToLogEvent())));
        foreach (var e in events)
        {
            if (q.Json) { stdout.WriteLine(e.Json); continue; }
            var stage = e.Property("Stage");
            stdout.WriteLine(SafeText.Terminal($"{e.Timestamp.UtcDateTime:HH:mm:ss.fff} {Abbrev(e.Level)} {(stage is null ? "" : $"[{stage}] ")}{e.Render()}"));
            if (e.Exception is not null) stdout.WriteLine(e.Exception);
        }
        if (log.Truncated) stderr.WriteLine($"note: the log of {run.RunId} ends in a partial line: the run was interrupted");
        return ExitCodes.Ok;
    }

    public static IEnumerable<ClefEvent> Filter(IEnumerable<ClefEvent> events, string? stage, LogEventLevel minLevel, string? grep) =>
        events.Where(e => e.Level >= minLevel
                          && (stage is null || e.Property("Stage") == stage)
                          && (grep is null || e.Json.Contains(grep, StringComparison.OrdinalIgnoreCase) || e.Render().Contains(grep, StringComparison.OrdinalIgnoreCase)));

    /// <summary>Per node and per model, from the run record (run.json), not from the log's message templates.</summary>
    private static void Summarize(RunSummary run, ClefLog log, TextWriter stdout, bool json)
    {
        var record = run.Record;
        var models = record?.MetricsOf<Fer.Flow.Stages.MemberMetrics>().ToList() ?? [];
        // A cluster run's jobs, from the coordinator's event at each job's end.
        var jobs = log.Events.Where(e => e.Property("JobState") is not null && e.Property("SlurmJobId") is not null)
            .Select(e => (Stage: e.Property("Stage") ?? "?", Job: e.Property("SlurmJobId")!, Host: e.Property("Host") ?? "?", State: e.Property("JobState")!,
                Queue: e.Number("QueueSeconds") ?? 0, Seconds: e.Number("Seconds") ?? 0)).ToList();
        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(new
            {
                run = run.RunId, flow = run.Flow, status = run.Status.Text(), log_cut_off = log.Truncated,
                stages = record?.Stages.Select(s => new { stage = s.Stage, seconds = s.Seconds, cache = s.Status.Text(), rows = s.Rows }),
                models = models.Select(x => new { model = x.Node, epochs = x.Metrics.EpochsRun, best_epoch = x.Metrics.BestEpoch, best_valid_accuracy = x.Metrics.BestValidAccuracy }),
                jobs = jobs.Count == 0 ? null : jobs.Select(j => new { stage = j.Stage, slurm_job_id = j.Job, host = j.Host, state = j.State, queue_seconds = j.Queue, seconds = j.Seconds }),
                error = record?.Error, failed_stage = record?.FailedStage,
            }, JsonOut));
            return;
        }
        stdout.WriteLine($"run {run.RunId}: flow {run.Flow}, {run.Status.Text()}{(log.Truncated ? " (log cut off)" : "")}");
        if (record is null) { stdout.WriteLine("(no run.json: nothing to summarise)"); return; }
        var stages = ConsoleTables.Create(stdout, "stage", ">seconds", "cache", "rows");
        foreach (var s in record.Stages)
            stages.AddTextRow(s.Stage, s.Seconds.ToString("0.00", CultureInfo.InvariantCulture), s.Status.Text(), string.Join(", ", s.Rows.Select(kv => $"{kv.Key}={kv.Value}")));
        ConsoleTables.Write(stdout, stages);
        if (record.Error is not null) stdout.WriteLine($"error in {record.FailedStage ?? "run"}: {record.Error}");
        if (jobs.Count > 0)
        {
            var jobTable = ConsoleTables.Create(stdout, "stage", "slurm job", "host", "state", ">queue s", ">run s");
            foreach (var j in jobs)
                jobTable.AddTextRow(j.Stage, j.Job, j.Host, j.State, j.Queue.ToString("0.0", CultureInfo.InvariantCulture), j.Seconds.ToString("0.0", CultureInfo.InvariantCulture));
            ConsoleTables.Write(stdout, jobTable);
        }
        if (models.Count == 0) return;
        var table = ConsoleTables.Create(stdout, "model", ">epochs", ">best", ">best valid acc");
        foreach (var (node, m) in models)
            table.AddTextRow(node, m.EpochsRun.ToString(CultureInfo.InvariantCulture), m.BestEpoch.ToString(CultureInfo.InvariantCulture),
                m.BestValidAccuracy.ToString("0.0000", CultureInfo.InvariantCulture));
        ConsoleTables.Write(stdout, table);
    }

    /// <summary>JSON for people and tools: indented, snake_case, and "+" or "é" written as themselves.</summary>
    internal static readonly JsonSerializerOptions JsonOut = new(RunRecord.Json)
    {
        WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private static string Abbrev(LogEventLevel l) => l switch
    {
        LogEventLevel.Verbose => "VRB", LogEventLevel.Debug => "DBG", LogEventLevel.Information => "INF",
        LogEventLevel.Warning => "WRN", LogEventLevel.Error => "ERR", _ => "FTL",
    };
}
