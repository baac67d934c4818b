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

    /// <summary>The lock file a process holds while it computes an entry (and trains into its checkpoint folder).</summary>
    public string EntryLockPath(string stage, string fingerprint) => Path.Combine(Root, stage, $".lock-{Hashing.Short(fingerprint)}");

    /// <summary>
    /// Takes the entry's lock, waiting while another process (another run, a sweep's trial, a cluster job) holds it:
    /// <paramref name="waiting"/> is called once when it must wait. Only one process computes an entry; the others
    /// find it cached once the lock is theirs. Released by the OS if the holder dies.
    /// </summary>
    public async Task<IDisposable> LockEntryAsync(string stage, string fingerprint, Action waiting, CancellationToken ct)
    {
        var path = EntryLockPath(stage, fingerprint);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        bool told = false;
        while (true)
        {
            if (TryLock(path) is { } held) return held;
            if (!told) { waiting(); told = true; }
            await Task.Delay(200, ct);
        }
    }

    /// <summary>The lock when free now, else null (held by another process).</summary>
    private static FileStream? TryLock(string path)
    {
        try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
        catch (IOException e) when (Fer.Flow.Pipeline.ArtifactsLock.IsContention(e)) { return null; }
    }

    /// <summary>Whether a process computes this entry now (its lock is held).</summary>
    public bool IsBeingComputed(string stage, string shortFingerprint)
    {
        var path = Path.Combine(Root, stage, $".lock-{shortFingerprint}");
        if (!File.Exists(path)) return false;
        try
        {
            using var held = TryLock(path);
            return held is null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return true; }
    }

    /// <summary>Removes an entry found corrupt so that it is recomputed.</summary>
    public void Evict(string stage, string fingerprint) => TryDelete(EntryDir(stage, fingerprint));

    /// <summary>
    /// Deletes temporary folders left by killed runs: those of entries no process is computing now (a live run's
    /// temporary folder is under its entry's lock), and replaced entries set aside.
    /// </summary>
    public int SweepAbandoned()
    {
        if (!Directory.Exists(Root)) return 0;
        int n = 0;
        foreach (var stageDir in Directory.EnumerateDirectories(Root))
        {
            var stage = Path.GetFileName(stageDir);
            foreach (var d in Directory.EnumerateDirectories(stageDir, ".tmp-*"))
            {
                // .tmp-<short fingerprint>-<guid>
                var name = Path.GetFileName(d);
                var shortFingerprint = name.Length > 5 && name.IndexOf('-', 5) is var dash and > 5 ? name[5..dash] : "";
                if (IsBeingComputed(stage, shortFingerprint)) continue;
                TryDelete(d); n++;
            }
            foreach (var d in Directory.EnumerateDirectories(stageDir, "*.old-*").Concat(Directory.EnumerateDirectories(stageDir, ".gc-*"))) { TryDelete(d); n++; }
        }
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
            // Another process may be training those settings now (a sweep's other trial): its entry's lock says so.
            if (Path.GetFileName(d) == keep || cache.IsBeingComputed(node, Path.GetFileName(d)[".checkpoint-".Length..])) continue;
            try { Directory.Delete(d, recursive: true); n++; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return n;
    }
}
