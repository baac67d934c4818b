using System.Text.Json;
using System.Text.Json.Serialization;

namespace Fer.Flow.Pipeline;

/// <summary>How a run stands: in run.json and every listing, as its lower-case name.</summary>
[JsonConverter(typeof(LowerCaseEnumConverter<RunStatus>))]
public enum RunStatus { Running, Finished, Failed, Cancelled, Interrupted, Unknown }

/// <summary>What a node's run did with the cache: served its entry, computed a new one, or computed the volatile report.</summary>
[JsonConverter(typeof(LowerCaseEnumConverter<StageOutcome>))]
public enum StageOutcome { Hit, Miss, Volatile }

/// <summary>Enums in run.json, listings and logs as their lower-case names ("finished", "hit").</summary>
public sealed class LowerCaseEnumConverter<T>() : JsonStringEnumConverter<T>(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false) where T : struct, Enum;

public static class StatusText
{
    public static string Text(this RunStatus status) => JsonNamingPolicy.SnakeCaseLower.ConvertName(status.ToString());
    public static string Text(this StageOutcome outcome) => JsonNamingPolicy.SnakeCaseLower.ConvertName(outcome.ToString());
}

/// <summary>
/// The name a metrics record is stored under in run.json (its type's name unless the type says otherwise), so readers
/// pick entries by type and a renamed C# type keeps reading the runs written before.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class MetricsNameAttribute(string name) : Attribute
{
    public string Name { get; } = name;

    public static string Of(Type metrics) =>
        (metrics.GetCustomAttributes(typeof(MetricsNameAttribute), false).FirstOrDefault() as MetricsNameAttribute)?.Name ?? metrics.Name;
}

/// <summary>What happened to one node in a run, with the typed metrics its output reported.</summary>
public sealed record StageReport(string Stage, string Kind, string Fingerprint, StageOutcome Status, double Seconds, IReadOnlyDictionary<string, long> Rows)
{
    /// <summary>The metrics record's stored name (<see cref="MetricsNameAttribute"/>), so readers pick entries by type.</summary>
    public string? MetricsType { get; init; }
    public JsonElement? Metrics { get; init; }

    /// <summary>The report's metrics, typed: their stored name and their JSON.</summary>
    public static StageReport With(StageReport report, object? metrics) => metrics is null ? report : report with
    {
        MetricsType = MetricsNameAttribute.Of(metrics.GetType()),
        Metrics = JsonSerializer.SerializeToElement(metrics, metrics.GetType(), RunRecord.Json),
    };

    /// <summary>Whether this node reported metrics of type T.</summary>
    public bool Reports<T>() => MetricsType == MetricsNameAttribute.Of(typeof(T));

    /// <summary>The metrics as T, or null when they are of another type or damaged (a hand-edited run.json).</summary>
    public T? MetricsAs<T>() where T : class
    {
        if (!Reports<T>() || Metrics is not { } m) return null;
        try { return m.Deserialize<T>(RunRecord.Json); }
        catch (Exception e) when (e is JsonException or NotSupportedException or InvalidOperationException or ArgumentException) { return null; }
    }
}

/// <summary>runs/&lt;id&gt;/run.json: what a run was asked to do, each node's outcome and metrics, and how it ended.</summary>
public sealed record RunRecord
{
    public required string RunId { get; init; }
    public required string Flow { get; init; }
    public string? Script { get; init; }
    public required string Command { get; init; }
    public SortedDictionary<string, string> Parameters { get; init; } = [];
    public SortedDictionary<string, string> Sets { get; init; } = [];
    /// <summary>Every node's settings in force (canonical text), by node.</summary>
    public SortedDictionary<string, SortedDictionary<string, string>> Settings { get; init; } = [];
    /// <summary>Input files and their SHA-256.</summary>
    public SortedDictionary<string, string> InputHashes { get; init; } = [];
    public string? Device { get; init; }
    public SortedDictionary<string, string> Versions { get; init; } = [];
    public DateTime StartedUtc { get; init; }
    public DateTime? FinishedUtc { get; init; }
    public RunStatus Status { get; init; } = RunStatus.Running;
    public string? Error { get; init; }
    public string? FailedStage { get; init; }
    /// <summary>The sweep this run is a trial of (null for a run on its own).</summary>
    public SweepTrial? Sweep { get; init; }
    public List<StageReport> Stages { get; init; } = [];

    public const string FileName = "run.json";
    /// <summary>Held (flock) by the run's process while it runs: "running" in run.json without a holder means it died.</summary>
    public const string RunningLockFileName = ".running";
    public const string MetricsFileName = "metrics.json";
    /// <summary>A run record holds settings and metrics: a few hundred kB for the largest flows.</summary>
    public const long MaxBytes = 64 << 20;

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Every node's metrics of type T, by node name.</summary>
    public IEnumerable<(string Node, T Metrics)> MetricsOf<T>() where T : class =>
        Stages.Select(s => (s.Stage, M: s.MetricsAs<T>())).Where(x => x.M is not null).Select(x => (x.Stage, x.M!));

    /// <summary>The Slurm job this process ran as (a node's job, or a sweep trial's array task: ID_TASK), if any.</summary>
    public string? SlurmJob { get; init; }
    /// <summary>How the run was executed: null on this machine, "slurm" when each node was a Slurm job.</summary>
    public string? Executor { get; init; }

    public void Write(string runDir) => WriteTo(Path.Combine(runDir, FileName));

    /// <summary>Writes the record to a file of its own (a cluster job's record of its node), through a temporary name.</summary>
    public void WriteTo(string path)
    {
        var tmp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(this, Json));
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>metrics.json: every finished node's metrics by node name, for readers that want only the numbers.</summary>
    public static void WriteMetrics(string runDir, IEnumerable<StageReport> stages)
    {
        var metrics = new SortedDictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var s in stages) if (s.Metrics is { } m) metrics[s.Stage] = m;
        var metricsPath = Path.Combine(runDir, MetricsFileName);
        File.WriteAllText(metricsPath + ".tmp", JsonSerializer.Serialize(metrics, Json));
        File.Move(metricsPath + ".tmp", metricsPath, overwrite: true);
    }

    public static RunRecord? TryRead(string runDir) => TryReadFile(Path.Combine(runDir, FileName));

    public static RunRecord? TryReadFile(string path)
    {
        if (Fer.Core.Storage.FileStat.Of(path).Kind != Fer.Core.Storage.FileKind.Regular) return null;
        try
        {
            var record = JsonSerializer.Deserialize<RunRecord>(Fer.Core.Storage.BoundedFile.ReadAllText(path, MaxBytes, "run record"), Json);
            // JSON nulls override the initialisers: a damaged record is read as none rather than trusted.
            if (record is null || record.RunId is null || record.Flow is null || record.Command is null || record.Parameters is null
                || record.Sets is null || record.Settings is null || record.InputHashes is null || record.Versions is null
                || record.Stages is null || record.Stages.Any(s => s is null || s.Stage is null || s.Rows is null))
                return null;
            return record;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException or NotSupportedException or InvalidOperationException or InvalidDataException) { return null; }
    }
}
