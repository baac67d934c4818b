namespace Fer.Flow.Pipeline;

/// <summary>
/// One run at a time per artifacts folder: an exclusively opened lock file (released by the OS if the process
/// dies, so a kill -9 never leaves a stale lock). A second run waits up to a limit, then refuses clearly.
/// </summary>
public sealed class ArtifactsLock : IDisposable
{
    private readonly FileStream _stream;
    private ArtifactsLock(FileStream stream) => _stream = stream;

    public static ArtifactsLock Acquire(string artifactsDir, string holder, TimeSpan wait)
    {
        Directory.CreateDirectory(artifactsDir);
        var path = Path.Combine(artifactsDir, ".lock");
        var infoPath = Path.Combine(artifactsDir, ".lock.holder");
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            try
            {
                var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                File.WriteAllText(infoPath, $"{holder} (pid {Environment.ProcessId}, since {DateTime.UtcNow:O})");
                return new ArtifactsLock(stream);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(250);
            }
            catch (IOException)
            {
                var who = File.Exists(infoPath) ? File.ReadAllText(infoPath) : "another process";
                throw new ArtifactsBusyException(
                    $"{Path.GetFullPath(artifactsDir)} is in use by {who}; wait for it to finish (or pass --wait SECONDS)");
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}

public sealed class ArtifactsBusyException(string message) : Exception(message);
