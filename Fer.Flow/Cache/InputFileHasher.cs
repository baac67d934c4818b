using System.Collections.Concurrent;
using System.Text.Json;
using Fer.Core.Storage;

namespace Fer.Flow.Cache;

/// <summary>
/// Content hashes of input files, remembered in <c>cache/input-hashes.json</c> by path and by what the file
/// system says of the content: device, inode, size, modification time and status-change time (ctime). Editing a
/// file and putting its mtime back with touch still changes its ctime, so the file is hashed again (as git and
/// DVC do). Only regular files are hashed: a FIFO, a device, a directory or a link loop is refused by name.
/// </summary>
public sealed class InputFileHasher(string cacheRoot)
{
    private sealed record Known(long Bytes, DateTime ModifiedUtc, string Sha256)
    {
        public ulong Device { get; init; }
        public ulong Inode { get; init; }
        public long MtimeNs { get; init; }
        public long CtimeNs { get; init; }

        public bool Matches(FileStat s) =>
            Sha256 is { Length: 64 } && Bytes == s.Size && Device == s.Device && Inode == s.Inode && MtimeNs == s.MtimeNs && CtimeNs == s.CtimeNs;
    }

    private readonly string _storePath = Path.Combine(cacheRoot, "input-hashes.json");
    private readonly ConcurrentDictionary<string, Known> _known = Load(Path.Combine(cacheRoot, "input-hashes.json"));

    /// <summary>The file's size, time and SHA-256. Throws <see cref="NotARegularFileException"/> for anything but a
    /// regular file (before opening it, so a FIFO or /dev/zero never blocks or runs forever).</summary>
    public ManifestInput Hash(string path)
    {
        var full = Path.GetFullPath(path);
        var stat = FileStat.RequireRegular(full);
        var modified = File.GetLastWriteTimeUtc(full);
        if (_known.TryGetValue(full, out var k) && k.Matches(stat))
            return new ManifestInput(full, k.Bytes, k.ModifiedUtc, k.Sha256);
        var sha = Hashing.FileSha256Hex(full);
        var after = FileStat.Of(full);
        if (after != stat)
            throw new IOException($"{full}: the file changed while it was being hashed");
        _known[full] = new Known(stat.Size, modified, sha) { Device = stat.Device, Inode = stat.Inode, MtimeNs = stat.MtimeNs, CtimeNs = stat.CtimeNs };
        Save();
        return new ManifestInput(full, stat.Size, modified, sha);
    }

    /// <summary>True when the file still has the content it had when <paramref name="before"/> was taken.</summary>
    public bool Unchanged(ManifestInput before)
    {
        var stat = FileStat.Of(before.Path);
        if (stat.Kind != FileKind.Regular || stat.Size != before.Bytes) return false;
        if (_known.TryGetValue(before.Path, out var k) && k.Sha256 == before.Sha256 && k.Matches(stat)) return true;
        return Hashing.FileSha256Hex(before.Path) == before.Sha256;
    }

    private static ConcurrentDictionary<string, Known> Load(string path)
    {
        try
        {
            if (File.Exists(path))
            {
                var read = JsonSerializer.Deserialize<Dictionary<string, Known?>>(File.ReadAllText(path)) ?? [];
                // A null or incomplete entry is damage: it is forgotten, and the file hashed again.
                return new ConcurrentDictionary<string, Known>(read.Where(kv => kv.Value is { Sha256: { Length: 64 } })
                    .Select(kv => KeyValuePair.Create(kv.Key, kv.Value!)));
            }
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException) { } // a damaged hash memo only costs re-hashing
        return new ConcurrentDictionary<string, Known>();
    }

    private void Save()
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(_storePath)!);
            var tmp = _storePath + $".{Guid.NewGuid():N}.tmp";
            File.WriteAllText(tmp, JsonSerializer.Serialize(new SortedDictionary<string, Known>(_known)));
            File.Move(tmp, _storePath, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // the memo is an optimisation only
    }
}
