using System.Text.Json.Nodes;
using Fer.Flow.Cache;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.Hardening;

/// <summary>Rules 3 and 4: what is read from the cache is checked before it is trusted; an input's identity is its content.</summary>
public class CacheTrustTests
{
    private static readonly string Fp = Hashing.Sha256Hex("entry");

    private static string Commit(StageCache cache)
    {
        var pending = cache.Begin("s", Fp);
        File.WriteAllText(Path.Combine(pending.Dir, "data.bin"), "hello");
        return cache.Commit(pending, new StageManifest
        {
            Stage = "s", Fingerprint = Fp, CodeIdentity = "fake-1", Parameters = new() { ["k"] = "v" }, Upstream = [],
            Rows = new() { ["rows"] = 3 },
        });
    }

    public static TheoryData<string> Damages() =>
    [
        "files=null", "file-entry=null", "rows=null", "inputs=null", "input-entry=null", "parameters=null",
        "name=../../outside.txt", "name=/etc/hostname", "name=/dev/zero", "name=a/./b", "link=/dev/zero", "fifo",
    ];

    /// <summary>Each damaged manifest is a corrupt entry (recomputed), found at once: no NullReferenceException, no
    /// file read outside the entry, no hang on /dev/zero or a FIFO.</summary>
    [Theory]
    [MemberData(nameof(Damages))]
    public async Task ADamagedManifestIsACorruptEntryNeverACrashOrAHang(string damage)
    {
        using var dir = new TempDir();
        var cache = new StageCache(dir["cache"]);
        var entry = Commit(cache);
        Assert.Equal(CacheStatus.Hit, cache.Lookup("s", Fp).Status);
        var manifestPath = Path.Combine(entry, StageManifest.FileName);
        var json = JsonNode.Parse(File.ReadAllText(manifestPath))!.AsObject();
        var (what, value) = damage.Contains('=') ? (damage[..damage.IndexOf('=')], damage[(damage.IndexOf('=') + 1)..]) : (damage, "");
        switch (what)
        {
            case "files": json["files"] = null; break;
            case "file-entry": json["files"]!["data.bin"] = null; break;
            case "rows": json["rows"] = null; break;
            case "inputs": json["inputs"] = null; break;
            case "input-entry": json["inputs"] = new JsonArray((JsonNode?)null); break;
            case "parameters": json["parameters"] = null; break;
            case "name":
                json["files"] = new JsonObject { [value] = new JsonObject { ["bytes"] = 0, ["sha256"] = Hashing.Sha256Hex("") } };
                File.WriteAllText(dir["outside.txt"], "");
                break;
            case "link":
                File.Delete(Path.Combine(entry, "data.bin"));
                File.CreateSymbolicLink(Path.Combine(entry, "data.bin"), value);
                json["files"]!["data.bin"]!["bytes"] = 0;
                break;
            case "fifo":
                File.Delete(Path.Combine(entry, "data.bin"));
                Assert.Equal(0, Shell.Run("mkfifo", Path.Combine(entry, "data.bin")).Code);
                json["files"]!["data.bin"]!["bytes"] = 0;
                break;
        }
        File.WriteAllText(manifestPath, json.ToJsonString());
        var lookup = await Shell.WithinSeconds(20, Task.Run(() => cache.Lookup("s", Fp)));
        Assert.Equal(CacheStatus.Corrupt, lookup.Status);
        Assert.NotNull(lookup.Problem);
    }

    [Fact]
    public void AnInputEditedAndTouchedBackIsHashedAgain()
    {
        using var dir = new TempDir();
        var file = dir["train.csv"];
        File.WriteAllText(file, "label,feature\n0,1 2 3 4\n");
        File.WriteAllText(dir["reference"], "");
        Shell.Run("touch", "-r", file, dir["reference"]);
        var first = new InputFileHasher(dir["cache"]).Hash(file);
        Thread.Sleep(20);
        File.WriteAllText(file, "label,feature\n1,1 2 3 4\n"); // one byte, same size
        Shell.Run("touch", "-r", dir["reference"], file);      // the mtime put back to the nanosecond (touch -d)
        var hasher = new InputFileHasher(dir["cache"]);         // a later run, reading the memo from disk
        var second = hasher.Hash(file);
        Assert.Equal(first.Bytes, second.Bytes);
        Assert.Equal(first.ModifiedUtc, second.ModifiedUtc);
        Assert.Equal(Hashing.FileSha256Hex(file), second.Sha256);
        Assert.NotEqual(first.Sha256, second.Sha256);
        Assert.False(hasher.Unchanged(first));
        Assert.True(hasher.Unchanged(second));
    }

    [Theory]
    [InlineData("{\"/x\": null}")]
    [InlineData("{\"/x\": {\"Bytes\": 1, \"ModifiedUtc\": \"2020-01-01T00:00:00Z\", \"Sha256\": null}}")]
    [InlineData("[1, 2]")]
    [InlineData("\u0000\u0001garbage")]
    public void ADamagedHashMemoOnlyCostsRehashing(string memo)
    {
        using var dir = new TempDir();
        var file = dir["train.csv"];
        File.WriteAllText(file, "label,feature\n0,1 2 3 4\n");
        Directory.CreateDirectory(dir["cache"]);
        File.WriteAllText(dir["cache/input-hashes.json"], memo.Replace("/x", file));
        Assert.Equal(Hashing.FileSha256Hex(file), new InputFileHasher(dir["cache"]).Hash(file).Sha256);
    }

    [Fact]
    public async Task TheHasherRefusesAFifoADeviceAndADirectoryByName()
    {
        using var dir = new TempDir();
        var fifo = dir["f.csv"];
        Assert.Equal(0, Shell.Run("mkfifo", fifo).Code);
        var hasher = new InputFileHasher(dir["cache"]);
        var e = await Shell.WithinSeconds(20, Task.Run(() => Assert.Throws<Fer.Core.Storage.NotARegularFileException>(() => hasher.Hash(fifo))));
        Assert.Equal($"{fifo}: is a FIFO (named pipe), not a regular file", e.Message);
        Assert.Contains("character device", Assert.Throws<Fer.Core.Storage.NotARegularFileException>(() => hasher.Hash("/dev/zero")).Message);
        Assert.Contains("is a directory", Assert.Throws<Fer.Core.Storage.NotARegularFileException>(() => hasher.Hash(dir.Path)).Message);
    }

    /// <summary>Checkpoints of settings no longer planned (left by a kill) are swept at the start of the next run.</summary>
    [Fact]
    public void CheckpointsOfOtherFingerprintsAreRemovedAndThePlannedOneKept()
    {
        using var dir = new TempDir();
        var cache = new StageCache(dir["cache"]);
        var old = cache.CheckpointDir("train.cnn", Hashing.Sha256Hex("old"));
        var keep = cache.CheckpointDir("train.cnn", Fp);
        Directory.CreateDirectory(Path.Combine(old, "epoch-0001"));
        Directory.CreateDirectory(Path.Combine(keep, "epoch-0001"));
        Assert.Equal(1, cache.RemoveCheckpoints("train.cnn", keepFingerprint: Fp));
        Assert.False(Directory.Exists(old));
        Assert.True(Directory.Exists(keep));
    }
}
