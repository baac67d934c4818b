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
    /// <summary>The identity of the code that made the entry (see <see cref="Pipeline.IStageDefinition.CodeIdentity"/>).</summary>
    public required string CodeIdentity { get; init; }
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

    /// <summary>A manifest lists an entry's files: far below this even for a visualize entry with every figure.</summary>
    public const long MaxBytes = 16 << 20;

    public static StageManifest? TryRead(string entryDir)
    {
        var path = Path.Combine(entryDir, FileName);
        if (Fer.Core.Storage.FileStat.Of(path).Kind != Fer.Core.Storage.FileKind.Regular) return null;
        try
        {
            var manifest = JsonSerializer.Deserialize<StageManifest>(Fer.Core.Storage.BoundedFile.ReadAllText(path, MaxBytes, "manifest"), Json);
            return manifest is not null && Problem(manifest) is null ? manifest : null;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException or InvalidOperationException or InvalidDataException) { return null; }
    }

    /// <summary>What makes a manifest read from disk unusable (null fields or entries, names leaving the entry), or null.</summary>
    public static string? Problem(StageManifest m)
    {
        // JSON null overrides the initialisers: a damaged manifest must not reach code that trusts these.
        if (m.Stage is null || m.Fingerprint is null || m.CodeIdentity is null) return "stage, fingerprint or code identity missing";
        if (m.Parameters is null || m.Upstream is null || m.Inputs is null || m.Files is null || m.Rows is null) return "a field is null";
        if (m.Inputs.Any(i => i is null || i.Path is null || i.Sha256 is null)) return "an input entry is null";
        if (m.Parameters.Values.Any(v => v is null) || m.Upstream.Values.Any(v => v is null)) return "a parameter is null";
        foreach (var (name, file) in m.Files)
        {
            if (file is null || file.Sha256 is null) return $"file entry {name} is null";
            if (!IsEntryRelative(name)) return $"file name {name} leaves the entry";
        }
        return null;
    }

    /// <summary>A relative path that stays inside its folder: no root, no '..', no empty or '.' parts, no backslash.</summary>
    public static bool IsEntryRelative(string name) =>
        name.Length > 0 && !Path.IsPathRooted(name) && !name.Contains('\\') && !name.Contains('\0')
        && name.Split('/').All(part => part.Length > 0 && part != "." && part != "..");
}
