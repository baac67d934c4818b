namespace Fer.Flow.Pipeline;

/// <summary>How a command holds the artifacts folder: runs share it (each cache entry has its own lock while it is
/// computed); what removes entries (clean-up) holds it alone.</summary>
public enum ArtifactsAccess { Shared, Exclusive }

/// <summary>
/// The artifacts folder's lock file, held shared by every run (several runs, a sweep's trials, a cluster's jobs, work
/// in one folder at once) and exclusively by clean-up, so nothing removes entries under a running command. It is an
/// flock, released by the OS if the process dies, so a kill -9 never leaves a stale lock. A command that cannot get
/// its access waits up to a limit, then refuses clearly. Only lock contention is "busy": a folder that cannot be
/// written (read-only, disk full, not a folder) says so.
/// </summary>
public sealed class ArtifactsLock : IDisposable
{
    private readonly FileStream _stream;
    private ArtifactsLock(FileStream stream) => _stream = stream;

    public const string FileName = ".lock", HolderFileName = ".lock.holder";

    public static ArtifactsLock Acquire(string artifactsDir, string holder, TimeSpan wait, ArtifactsAccess access = ArtifactsAccess.Shared)
    {
        var full = Path.GetFullPath(artifactsDir);
        if (File.Exists(full)) throw new ArtifactsUnusableException($"artifacts folder {full} is a file, not a folder");
        try { Directory.CreateDirectory(full); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArtifactsUnusableException($"cannot create the artifacts folder {full}: {e.Message}");
        }
        var path = Path.Combine(full, FileName);
        var infoPath = Path.Combine(full, HolderFileName);
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            FileStream stream;
            try
            {
                // .NET takes flock(LOCK_EX) for FileShare.None and flock(LOCK_SH) otherwise.
                stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite,
                    access == ArtifactsAccess.Exclusive ? FileShare.None : FileShare.ReadWrite);
            }
            catch (IOException e) when (IsContention(e))
            {
                if (DateTime.UtcNow < deadline) { Thread.Sleep(250); continue; }
                string who;
                try { who = File.Exists(infoPath) ? File.ReadAllText(infoPath) : "another process"; }
                catch (Exception r) when (r is IOException or UnauthorizedAccessException) { who = "another process"; }
                throw new ArtifactsBusyException($"{full} is in use by {who}; wait for it to finish (or pass --wait SECONDS)");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ArtifactsUnusableException($"cannot lock the artifacts folder {full}: {e.Message}{Hint(e)}");
            }
            try { File.WriteAllText(infoPath, $"{holder} (pid {Environment.ProcessId}, since {DateTime.UtcNow:O})"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stream.Dispose();
                throw new ArtifactsUnusableException($"cannot write in the artifacts folder {full}: {e.Message}{Hint(e)}");
            }
            return new ArtifactsLock(stream);
        }
    }

    /// <summary>
    /// A reader's share of the folder (`fer predict` and `fer export` while they read weights from the cache): the lock
    /// file opened for reading, shared, so clean-up cannot remove what they read. Nothing is written, so a read-only
    /// artifacts folder still serves; where there is no lock file, no clean-up ever ran there and none is needed.
    /// Waits up to <paramref name="wait"/> while clean-up holds the folder, then throws <see cref="ArtifactsBusyException"/>.
    /// </summary>
    public static IDisposable? ShareForReading(string artifactsDir, TimeSpan wait)
    {
        var path = Path.Combine(Path.GetFullPath(artifactsDir), FileName);
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            try { return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite); }
            catch (IOException e) when (IsContention(e))
            {
                if (DateTime.UtcNow < deadline) { Thread.Sleep(250); continue; }
                throw new ArtifactsBusyException($"{Path.GetDirectoryName(path)} is in use by fer gc; try again when it has finished");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
        }
    }

    /// <summary>True when opening failed because another process holds the lock (flock's EWOULDBLOCK), not for
    /// a read-only file system, a full disk or missing rights.</summary>
    internal static bool IsContention(IOException e)
    {
        if (e is FileNotFoundException or DirectoryNotFoundException or PathTooLongException) return false;
        int errno = e.HResult & 0xFFFF;
        if (OperatingSystem.IsLinux()) return errno == 11; // EAGAIN == EWOULDBLOCK
        if (OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD()) return errno == 35;
        return e.HResult == unchecked((int)0x80070020); // Windows ERROR_SHARING_VIOLATION
    }

    private static string Hint(Exception e) =>
        e.Message.Contains("Read-only", StringComparison.OrdinalIgnoreCase) ? " (the folder is read-only: pass --artifacts with a writable folder)"
        : e.Message.Contains("space", StringComparison.OrdinalIgnoreCase) ? " (the disk is full)"
        : e is UnauthorizedAccessException ? " (no permission to write there)" : "";

    public void Dispose() => _stream.Dispose();
}

public sealed class ArtifactsBusyException(string message) : Exception(message);

/// <summary>The artifacts folder cannot be used at all (read-only, full, a file): a user error, not contention.</summary>
public sealed class ArtifactsUnusableException(string message) : Exception(message);
