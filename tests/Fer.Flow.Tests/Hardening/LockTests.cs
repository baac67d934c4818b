using Fer.Flow.Audit;
using Fer.Flow.Cli;
using Fer.Flow.Pipeline;

namespace Fer.Flow.Tests.Hardening;

/// <summary>Rules 7 and 10: only contention is "busy"; `fer runs` never takes the lock it tests.</summary>
public class LockTests
{
    [Fact]
    public void RunsShareTheFolderCleanUpHoldsItAloneAndTheLockIsSeenWithoutBeingTaken()
    {
        using var dir = new TempDir();
        Assert.False(RunCatalog.IsLocked(dir.Path));
        using (ArtifactsLock.Acquire(dir.Path, "first", TimeSpan.Zero))
        {
            using (ArtifactsLock.Acquire(dir.Path, "second", TimeSpan.Zero)) { } // runs share it
            var e = Assert.Throws<ArtifactsBusyException>(() => ArtifactsLock.Acquire(dir.Path, "clean-up", TimeSpan.Zero, ArtifactsAccess.Exclusive));
            Assert.Contains("in use by", e.Message);
            Assert.True(RunCatalog.IsLocked(dir.Path));
        }
        Assert.False(RunCatalog.IsLocked(dir.Path));
        using (ArtifactsLock.Acquire(dir.Path, "clean-up", TimeSpan.Zero, ArtifactsAccess.Exclusive))
            Assert.Contains("in use by clean-up", Assert.Throws<ArtifactsBusyException>(() => ArtifactsLock.Acquire(dir.Path, "run", TimeSpan.Zero)).Message);
    }

    /// <summary>IsLocked used to open the lock file exclusively: a run starting at that instant with --wait 0 was
    /// refused as busy. Probing in a tight loop while runs take and release the lock must never refuse one.</summary>
    [Fact]
    public async Task ProbingTheLockNeverMakesARunBusy()
    {
        using var dir = new TempDir();
        using (ArtifactsLock.Acquire(dir.Path, "setup", TimeSpan.Zero)) { }
        using var stop = new CancellationTokenSource();
        long probes = 0;
        var prober = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested) { RunCatalog.IsLocked(dir.Path); Interlocked.Increment(ref probes); }
        });
        // The prober runs on the thread pool, which a busy test run may start late: overlap the two for sure, at
        // least 3,000 acquisitions and until the prober has run 100 times (bounded, so a stuck prober still fails).
        SpinWait.SpinUntil(() => Interlocked.Read(ref probes) > 0, TimeSpan.FromSeconds(30));
        int busy = 0;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        for (int i = 0; i < 3000 || (Interlocked.Read(ref probes) <= 100 && DateTime.UtcNow < deadline); i++)
        {
            try { ArtifactsLock.Acquire(dir.Path, "run", TimeSpan.Zero).Dispose(); }
            catch (ArtifactsBusyException) { busy++; }
        }
        stop.Cancel();
        await prober;
        Assert.True(probes > 100, $"only {probes} probes ran");
        Assert.Equal(0, busy);
    }

    [Fact]
    public void ProcLocksLinesAreMatchedByDeviceAndInode()
    {
        string[] lines =
        [
            "1: FLOCK  ADVISORY  WRITE 4321 fe:00:11665566 0 EOF",
            "2: POSIX  ADVISORY  READ 99 00:2f:77 0 EOF",
            "2: -> FLOCK  ADVISORY  WRITE 100 00:2f:88 0 EOF",
        ];
        Assert.True(RunCatalog.HeldIn(lines, (0xfeUL << 32) | 0, 11665566));
        Assert.True(RunCatalog.HeldIn(lines, (0UL << 32) | 0x2f, 77));
        Assert.False(RunCatalog.HeldIn(lines, (0UL << 32) | 0x2f, 88)); // a waiter does not hold it
        Assert.False(RunCatalog.HeldIn(lines, (0xfdUL << 32) | 0, 11665566));
    }

    /// <summary>A folder that cannot hold the lock (read-only, full, a file) is not "busy" (exit 3) but its own error.</summary>
    [Fact]
    public void AnUnusableArtifactsFolderIsNotReportedAsBusy()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["a/.lock"]); // the lock file cannot be opened: not contention
        var e = Assert.Throws<ArtifactsUnusableException>(() => ArtifactsLock.Acquire(dir["a"], "run", TimeSpan.Zero));
        Assert.DoesNotContain("in use", e.Message);
        File.WriteAllText(dir["file"], "");
        Assert.Contains("is a file, not a folder", Assert.Throws<ArtifactsUnusableException>(() => ArtifactsLock.Acquire(dir["file"], "run", TimeSpan.Zero)).Message);
        // EROFS (30) and ENOSPC (28), as .NET reports them on Linux, are not contention; EWOULDBLOCK (11) is.
        Assert.False(ArtifactsLock.IsContention(new IOException("Read-only file system", 30)));
        Assert.False(ArtifactsLock.IsContention(new IOException("No space left on device", 28)));
        Assert.True(ArtifactsLock.IsContention(new IOException("locked", 11)));
    }

    [Fact]
    public async Task ARunOnAFileAsArtifactsFolderIsExitTwoWithOneLine()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["artifacts"], "");
        var errors = new StringWriter();
        var code = await FlowCommand.RunAsync(new FlowRequest(Repo.Flow("quickstart.fsx"), dir["artifacts"], ["count=20"], Device: "cpu", Console: false), errors);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("is a file, not a folder", errors.ToString());
        Assert.Single(errors.ToString().Trim().Split('\n'));
    }
}
