using Fer.Flow.Cache;

namespace Fer.Flow.Tests.Cache;

public class StageCacheTests
{
    private static string Commit(StageCache cache, string stage, string fp, string content)
    {
        var pending = cache.Begin(stage, fp);
        File.WriteAllText(Path.Combine(pending.Dir, "data.bin"), content);
        return cache.Commit(pending, new StageManifest
        {
            Stage = stage, Fingerprint = fp, CodeIdentity = "fake-1", Parameters = new() { ["k"] = "v" }, Upstream = [],
        });
    }

    private static readonly string Fp1 = Hashing.Sha256Hex("one"), Fp2 = Hashing.Sha256Hex("two");

    [Fact]
    public void CommittedEntryIsAHitWithFileHashesInItsManifest()
    {
        using var dir = new TempDir();
        var cache = new StageCache(dir["cache"]);
        Assert.Equal(CacheStatus.Missing, cache.Lookup("s", Fp1).Status);
        var entry = Commit(cache, "s", Fp1, "hello");
        var hit = cache.Lookup("s", Fp1);
        Assert.Equal(CacheStatus.Hit, hit.Status);
        Assert.Equal(entry, hit.Dir);
        Assert.Equal(Hashing.Sha256Hex("hello"), hit.Manifest!.Files["data.bin"].Sha256);
        Assert.Equal(5, hit.Manifest.Files["data.bin"].Bytes);
        Assert.Equal(CacheStatus.Stale, cache.Lookup("s", Fp2).Status);
    }

    [Fact]
    public void FlippedByteOrTruncatedFileIsDetectedAsCorrupt()
    {
        using var dir = new TempDir();
        var cache = new StageCache(dir["cache"]);
        var entry = Commit(cache, "s", Fp1, "hello world");
        var path = Path.Combine(entry, "data.bin");
        var bytes = File.ReadAllBytes(path);
        bytes[3] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        var flipped = cache.Lookup("s", Fp1);
        Assert.Equal(CacheStatus.Corrupt, flipped.Status);
        Assert.Contains("SHA-256", flipped.Problem);

        File.WriteAllBytes(path, bytes[..4]);
        var truncated = cache.Lookup("s", Fp1);
        Assert.Equal(CacheStatus.Corrupt, truncated.Status);
        Assert.Contains("bytes", truncated.Problem);
    }

    [Fact]
    public void UnfinishedEntryIsNeverAHitAndIsSweptAway()
    {
        using var dir = new TempDir();
        var cache = new StageCache(dir["cache"]);
        var pending = cache.Begin("s", Fp1);
        File.WriteAllText(Path.Combine(pending.Dir, "data.bin"), "half");
        Assert.NotEqual(CacheStatus.Hit, cache.Lookup("s", Fp1).Status);

        // A planted entry without manifest (as a crash between rename steps could never leave, but a user might) is corrupt.
        Directory.CreateDirectory(cache.EntryDir("s", Fp2));
        File.WriteAllText(Path.Combine(cache.EntryDir("s", Fp2), "data.bin"), "x");
        Assert.Equal(CacheStatus.Corrupt, cache.Lookup("s", Fp2).Status);

        Assert.Equal(1, cache.SweepAbandoned());
        Assert.False(Directory.Exists(pending.Dir));
    }

    /// <summary>Another process's entry in the making (its lock held) and its training checkpoints are not abandoned.</summary>
    [Fact]
    public async Task AnEntryBeingComputedElsewhereKeepsItsTemporaryFolderAndCheckpoints()
    {
        using var dir = new TempDir();
        var cache = new StageCache(dir["cache"]);
        Task<IDisposable> second;
        bool told = false;
        using (await cache.LockEntryAsync("s", Fp1, () => { }, CancellationToken.None))
        {
            var pending = cache.Begin("s", Fp1);
            var checkpoint = cache.CheckpointDir("s", Fp1);
            Directory.CreateDirectory(checkpoint);
            Assert.True(cache.IsBeingComputed("s", Hashing.Short(Fp1)));
            Assert.Equal(0, cache.SweepAbandoned());
            Assert.Equal(0, cache.RemoveCheckpoints("s", keepFingerprint: Fp2));
            Assert.True(Directory.Exists(pending.Dir) && Directory.Exists(checkpoint));
            // A second taker waits (and says so once) until the first lets go.
            second = cache.LockEntryAsync("s", Fp1, () => told = true, CancellationToken.None);
            await Task.Delay(500);
            Assert.False(second.IsCompleted);
            Assert.True(told);
            cache.Abandon(pending);
        }
        (await second.WaitAsync(TimeSpan.FromSeconds(10))).Dispose();
        Assert.False(cache.IsBeingComputed("s", Hashing.Short(Fp1)));
        Assert.Equal(1, cache.RemoveCheckpoints("s", keepFingerprint: Fp2));
    }

    [Fact]
    public void InputHasherRemembersHashesAndNoticesChanges()
    {
        using var dir = new TempDir();
        var file = dir["input.csv"];
        File.WriteAllText(file, "a,b\n1,2\n");
        var hasher = new InputFileHasher(dir["cache"]);
        var before = hasher.Hash(file);
        Assert.Equal(Hashing.Sha256Hex("a,b\n1,2\n"), before.Sha256);
        Assert.True(hasher.Unchanged(before));
        Assert.Equal(before, new InputFileHasher(dir["cache"]).Hash(file));
        File.WriteAllText(file, "a,b\n1,3\n");
        File.SetLastWriteTimeUtc(file, before.ModifiedUtc.AddSeconds(5));
        Assert.False(hasher.Unchanged(before));
        Assert.NotEqual(before.Sha256, hasher.Hash(file).Sha256);
    }
}
