using System.Text.Json;
using System.Text.Json.Serialization;

namespace Fer.Flow.Pipeline;

/// <summary>runs/&lt;id&gt;/run.json: what a run was asked to do and how it ended (rewritten at the end).</summary>
public sealed record RunRecord
{
    public required string RunId { get; init; }
    public required string Flow { get; init; }
    public string? Script { get; init; }
    public required string Command { get; init; }
    public SortedDictionary<string, string> Parameters { get; init; } = [];
    public SortedDictionary<string, string> Sets { get; init; } = [];
    public string? Device { get; init; }
    public SortedDictionary<string, string> Versions { get; init; } = [];
    public DateTime StartedUtc { get; init; }
    public DateTime? FinishedUtc { get; init; }
    /// <summary>running, finished, failed, cancelled</summary>
    public string Status { get; init; } = "running";
    public string? Error { get; init; }
    public string? FailedStage { get; init; }
    public List<StageReport> Stages { get; init; } = [];

    public const string FileName = "run.json";

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public void Write(string runDir)
    {
        var path = Path.Combine(runDir, FileName);
        File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(this, Json));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    public static RunRecord? TryRead(string runDir)
    {
        try { return JsonSerializer.Deserialize<RunRecord>(File.ReadAllText(Path.Combine(runDir, FileName)), Json); }
        catch (Exception e) when (e is IOException or JsonException) { return null; }
    }
}
