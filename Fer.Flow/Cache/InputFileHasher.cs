using System.Collections.Concurrent;
using System.Text.Json;

namespace Fer.Flow.Cache;

/// <summary>
/// Content hashes of input files, remembered in <c>cache/input-hashes.json</c> by path, size and modification time,
/// so a large CSV is re-hashed only when it changed (like make, but by content).
/// </summary>
public sealed class InputFileHasher(string cacheRoot)
{
    private sealed record Known(long Bytes, DateTime ModifiedUtc, string Sha256);

    private readonly string _storePath = Path.Combine(cacheRoot, "input-hashes.json");
    private readonly ConcurrentDictionary<string, Known> _known = Load(Path.Combine(cacheRoot, "input-hashes.json"));

    public ManifestInput Hash(string path)
    {
        var full = Path.GetFullPath(path);
        var info = new FileInfo(full);
        if (!info.Exists) throw new FileNotFoundException($"{full}: file not found", full);
        if (_known.TryGetValue(full, out var k) && k.Bytes == info.Length && k.ModifiedUtc == info.LastWriteTimeUtc)
            return new ManifestInput(full, k.Bytes, k.ModifiedUtc, k.Sha256);
        var sha = Hashing.FileSha256Hex(full);
        var after = new FileInfo(full);
        if (after.Length != info.Length || after.LastWriteTimeUtc != info.LastWriteTimeUtc)
            throw new IOException($"{full}: the file changed while it was being hashed");
        _known[full] = new Known(info.Length, info.LastWriteTimeUtc, sha);
        Save();
        return new ManifestInput(full, info.Length, info.LastWriteTimeUtc, sha);
    }

    /// <summary>True when the file still has the content it had when <paramref name="before"/> was taken.</summary>
    public bool Unchanged(ManifestInput before)
    {
        var info = new FileInfo(before.Path);
        if (!info.Exists || info.Length != before.Bytes) return false;
        if (info.LastWriteTimeUtc == before.ModifiedUtc) return true;
        return Hashing.FileSha256Hex(before.Path) == before.Sha256;
    }

    private static ConcurrentDictionary<string, Known> Load(string path)
    {
        try
        {
            if (File.Exists(path))
                return new ConcurrentDictionary<string, Known>(
                    JsonSerializer.Deserialize<Dictionary<string, Known>>(File.ReadAllText(path)) ?? []);
        }
        catch (JsonException) { } // a damaged hash memo only costs re-hashing
        return new ConcurrentDictionary<string, Known>();
    }

    private void Save()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(_storePath)!);
        var tmp = _storePath + $".{Guid.NewGuid():N}.tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(new SortedDictionary<string, Known>(_known)));
        File.Move(tmp, _storePath, overwrite: true);
    }
}
