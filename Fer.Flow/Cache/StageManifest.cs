using System.Text.Json;
using System.Text.Json.Serialization;

namespace Fer.Flow.Cache;

public sealed record ManifestFile(long Bytes, string Sha256);

public sealed record ManifestInput(string Path, long Bytes, DateTime ModifiedUtc, string Sha256);

/// <summary>What a cache entry holds and how it was made. Written last, so an entry with a manifest is complete.</summary>
public sealed record StageManifest
{
    public required string Stage { get; init; }
    public required string Fingerprint { get; init; }
    public required int CodeVersion { get; init; }
    public required SortedDictionary<string, string> Parameters { get; init; }
    public required SortedDictionary<string, string> Upstream { get; init; }
    public List<ManifestInput> Inputs { get; init; } = [];
    public SortedDictionary<string, ManifestFile> Files { get; init; } = [];
    public SortedDictionary<string, long> Rows { get; init; } = [];
    public double Seconds { get; init; }
    public DateTime CreatedUtc { get; init; }
    public string? RunId { get; init; }

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public const string FileName = "manifest.json";

    public static StageManifest? TryRead(string entryDir)
    {
        var path = Path.Combine(entryDir, FileName);
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<StageManifest>(File.ReadAllText(path), Json); }
        catch (JsonException) { return null; }
    }
}
