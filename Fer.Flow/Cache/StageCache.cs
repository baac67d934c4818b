using System.Text.Json;

namespace Fer.Flow.Cache;

public enum CacheStatus { Hit, Missing, Stale, Corrupt }

/// <summary>The outcome of looking an entry up. Stale: no entry for this fingerprint but one for another.</summary>
public sealed record CacheLookup(CacheStatus Status, string Dir, StageManifest? Manifest, string? Problem);

/// <summary>An entry being written: files go into <see cref="Dir"/>, a hidden temporary folder.</summary>
public sealed record PendingEntry(string Stage, string Fingerprint, string Dir, string FinalDir);

/// <summary>
/// Content-addressed stage outputs under <c>root/&lt;stage&gt;/&lt;fingerprint&gt;/</c>. An entry is written into a
/// hidden temporary folder, its manifest (with every file's SHA-256) written last, and the folder renamed into
/// place, so a killed run never leaves something that looks complete. A hit re-verifies every file's size and
/// hash, so a truncated or bit-flipped file is detected and the entry recomputed instead of read.
/// </summary>
public sealed class StageCache(string root)
{
    public string Root { get; } = Path.GetFullPath(root);

    public string EntryDir(string stage, string fingerprint) => Path.Combine(Root, stage, Hashing.Short(fingerprint));

    public CacheLookup Lookup(string stage, string fingerprint, bool verifyFiles = true)
    {
        var dir = EntryDir(stage, fingerprint);
        if (!Directory.Exists(dir))
            return new CacheLookup(OtherEntries(stage, fingerprint).Any() ? CacheStatus.Stale : CacheStatus.Missing, dir, null, null);
        var manifest = StageManifest.TryRead(dir);
        if (manifest is null)
            return new CacheLookup(CacheStatus.Corrupt, dir, null, "manifest.json is missing or unreadable");
        if (manifest.Fingerprint != fingerprint)
            return new CacheLookup(CacheStatus.Corrupt, dir, manifest, "manifest fingerprint does not match its folder");
        if (verifyFiles)
        {
            foreach (var (name, expected) in manifest.Files)
            {
                var path = Path.GetFullPath(Path.Combine(dir, name));
                if (!path.StartsWith(Path.GetFullPath(dir) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                    return new CacheLookup(CacheStatus.Corrupt, dir, manifest, $"file name {name} leaves the entry");
                // Only regular files are hashed: a link to /dev/zero or a FIFO in an entry would never finish.
                var kind = Fer.Core.Storage.FileStat.Of(path).Kind;
                if (kind == Fer.Core.Storage.FileKind.Missing)
                    return new CacheLookup(CacheStatus.Corrupt, dir, manifest, $"{name} is missing");
                if (kind != Fer.Core.Storage.FileKind.Regular)
                    return new CacheLookup(CacheStatus.Corrupt, dir, manifest, $"{name} {Fer.Core.Storage.FileStat.Describe(kind)}");
                var bytes = new FileInfo(path).Length;
                if (bytes != expected.Bytes)
                    return new CacheLookup(CacheStatus.Corrupt, dir, manifest, $"{name} has {bytes} bytes, manifest says {expected.Bytes}");
                if (Hashing.FileSha256Hex(path) != expected.Sha256)
                    return new CacheLookup(CacheStatus.Corrupt, dir, manifest, $"{name} does not match its SHA-256 in the manifest");
            }
        }
        return new CacheLookup(CacheStatus.Hit, dir, manifest, null);
    }

    /// <summary>Committed entries of a stage under other fingerprints.</summary>
    public IEnumerable<string> OtherEntries(string stage, string fingerprint)
    {
        var stageDir = Path.Combine(Root, stage);
        if (!Directory.Exists(stageDir)) return [];
        var mine = Hashing.Short(fingerprint);
        return Directory.EnumerateDirectories(stageDir)
            .Where(d => Path.GetFileName(d) is var n && !n.StartsWith('.') && n != mine);
    }

    public PendingEntry Begin(string stage, string fingerprint)
    {
        var final = EntryDir(stage, fingerprint);
        var temp = Path.Combine(Root, stage, $".tmp-{Hashing.Short(fingerprint)}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        return new PendingEntry(stage, fingerprint, temp, final);
    }

    /// <summary>Hashes the pending entry's files, writes the manifest last and renames the folder into place.</summary>
    public string Commit(PendingEntry pending, StageManifest manifest)
    {
        var files = new SortedDictionary<string, ManifestFile>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFiles(pending.Dir, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(pending.Dir, path).Replace('\\', '/');
            if (rel == StageManifest.FileName) continue;
            files[rel] = new ManifestFile(new FileInfo(path).Length, Hashing.FileSha256Hex(path));
        }
        var complete = manifest with { Files = files, Fingerprint = pending.Fingerprint, Stage = pending.Stage };
        var manifestPath = Path.Combine(pending.Dir, StageManifest.FileName);
        File.WriteAllText(manifestPath + ".tmp", JsonSerializer.Serialize(complete, StageManifest.Json));
        File.Move(manifestPath + ".tmp", manifestPath, overwrite: true);

        if (Directory.Exists(pending.FinalDir))
        {
            // A corrupt or concurrently written entry sits where ours goes: replace it (ours was verified complete).
            var aside = pending.FinalDir + $".old-{Guid.NewGuid():N}";
            Directory.Move(pending.FinalDir, aside);
            Directory.Move(pending.Dir, pending.FinalDir);
            TryDelete(aside);
        }
        else
        {
            Directory.Move(pending.Dir, pending.FinalDir);
        }
        return pending.FinalDir;
    }

    public void Abandon(PendingEntry pending) => TryDelete(pending.Dir);

    /// <summary>Removes an entry found corrupt so that it is recomputed.</summary>
    public void Evict(string stage, string fingerprint) => TryDelete(EntryDir(stage, fingerprint));

    /// <summary>Deletes temporary folders left by killed runs (call only while holding the artifacts lock).</summary>
    public int SweepAbandoned()
    {
        if (!Directory.Exists(Root)) return 0;
        int n = 0;
        foreach (var stageDir in Directory.EnumerateDirectories(Root))
            foreach (var d in Directory.EnumerateDirectories(stageDir, ".tmp-*").Concat(Directory.EnumerateDirectories(stageDir, "*.old-*")))
            { TryDelete(d); n++; }
        return n;
    }

    private static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Training checkpoints: a folder per node and fingerprint beside the entries, outliving a killed process.</summary>
public static class CheckpointFolders
{
    public static string CheckpointDir(this StageCache cache, string node, string fingerprint) =>
        Path.Combine(cache.Root, node, $".checkpoint-{Hashing.Short(fingerprint)}");

    /// <summary>Removes a node's checkpoints once it is cached, and those of its earlier settings (abandoned by a kill).</summary>
    public static int RemoveCheckpoints(this StageCache cache, string node, string? keepFingerprint = null)
    {
        var dir = Path.Combine(cache.Root, node);
        if (!Directory.Exists(dir)) return 0;
        var keep = keepFingerprint is null ? null : $".checkpoint-{Hashing.Short(keepFingerprint)}";
        int n = 0;
        foreach (var d in Directory.EnumerateDirectories(dir, ".checkpoint-*"))
        {
            if (Path.GetFileName(d) == keep) continue;
            try { Directory.Delete(d, recursive: true); n++; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return n;
    }
}
